package probe

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a small in-process SMTP server on 127.0.0.1 whose replies
// the test chooses.
type fakeServer struct {
	t    *testing.T
	ln   net.Listener
	conf serverConf
	wg   sync.WaitGroup

	mu       sync.Mutex
	commands []string // every command received, in order
	conns    int
}

// serverConf chooses the fake server's behaviour. Empty fields get a
// well-behaved closed relay's answers.
type serverConf struct {
	// greeting is the raw greeting ("220 ..." without CRLF; lines separated by \n).
	greeting string
	// ehloExt are extra EHLO keywords.
	ehloExt []string
	// rcpt answers RCPT TO (raw reply, lines separated by \n); from and
	// to are the paths without brackets.
	rcpt func(from, to string) string
	// mail answers MAIL FROM.
	mail func(from string) string
	// fault, when it returns ok, replaces the normal reply to the n-th
	// command of the server's life (counted from 1 over all connections):
	// reply "" means no reply at all, hangup closes the connection after it.
	fault func(n int, cmd string) (reply string, hangup, ok bool)
	// tls enables STARTTLS (or implicit TLS with implicitTLS).
	tls         *tls.Config
	implicitTLS bool
}

func newFakeServer(t *testing.T, conf serverConf) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, conf: conf}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) received() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *fakeServer) serve() {
	defer s.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	var open []net.Conn
	var mu sync.Mutex
	defer func() {
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			// Close what is still open so that the handlers return.
			mu.Lock()
			for _, c := range open {
				c.Close()
			}
			mu.Unlock()
			return
		}
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			s.session(c)
		}()
	}
}

func (s *fakeServer) session(nc net.Conn) {
	if s.conf.implicitTLS {
		tc := tls.Server(nc, s.conf.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		nc = tc
	}
	r := bufio.NewReader(nc)
	w := func(reply string) {
		lines := strings.Split(reply, "\n")
		var b strings.Builder
		for i, l := range lines {
			if i < len(lines)-1 && len(l) >= 3 && (len(l) == 3 || l[3] == ' ') {
				l = l[:3] + "-" + strings.TrimPrefix(l[3:], " ")
			}
			b.WriteString(l + "\r\n")
		}
		nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		nc.Write([]byte(b.String()))
	}
	greeting := s.conf.greeting
	if greeting == "" {
		greeting = "220 mx.test.example ESMTP fake"
	}
	w(greeting)
	from := ""
	inTLS := s.conf.implicitTLS
	for {
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.commands = append(s.commands, line)
		n := len(s.commands)
		s.mu.Unlock()
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		if strings.HasPrefix(strings.ToUpper(line), "MAIL FROM:") || strings.HasPrefix(strings.ToUpper(line), "RCPT TO:") {
			verb = strings.ToUpper(line[:4])
			_, arg, _ = strings.Cut(line, ":")
			arg = strings.TrimSuffix(strings.TrimPrefix(arg, "<"), ">")
		}
		if s.conf.fault != nil {
			if reply, hangup, ok := s.conf.fault(n, line); ok {
				if reply != "" {
					w(reply)
				}
				if hangup {
					return
				}
				if reply == "" {
					// Say nothing until the client gives up.
					r.ReadString('\n')
					return
				}
				continue
			}
		}
		switch verb {
		case "EHLO":
			ext := append([]string{"250 mx.test.example greets you", "PIPELINING", "SIZE 10240000"}, s.conf.ehloExt...)
			if s.conf.tls != nil && !inTLS {
				ext = append(ext, "STARTTLS")
			}
			for i := 1; i < len(ext); i++ {
				ext[i] = "250 " + ext[i]
			}
			w(strings.Join(ext, "\n"))
		case "HELO":
			w("250 mx.test.example")
		case "STARTTLS":
			w("220 2.0.0 Ready to start TLS")
			tc := tls.Server(nc, s.conf.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			nc, r, inTLS = tc, bufio.NewReader(tc), true
		case "MAIL":
			from = arg
			if s.conf.mail != nil {
				w(s.conf.mail(arg))
			} else {
				w("250 2.1.0 Ok")
			}
		case "RCPT":
			if s.conf.rcpt != nil {
				w(s.conf.rcpt(from, arg))
			} else {
				w("554 5.7.1 <" + arg + ">: Relay access denied")
			}
		case "RSET":
			from = ""
			w("250 2.0.0 Ok")
		case "QUIT":
			w("221 2.0.0 Bye")
			return
		case "DATA":
			s.t.Errorf("the probe sent DATA")
			w("554 5.5.1 no")
		default:
			w("502 5.5.2 Error: command not recognized")
		}
	}
}

// testTLSConfig is a server TLS configuration with a fresh self-signed
// certificate.
func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.test.example"},
		DNSNames:     []string{"mx.test.example"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func (s *fakeServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}
