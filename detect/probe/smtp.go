package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what a server may send: the server under test may be hostile.
const (
	// MaxLineBytes is the longest reply line read (RFC 5321 allows 512).
	MaxLineBytes = 2048
	// MaxReplyLines is the most lines of one multi-line reply.
	MaxReplyLines = 64
	// maxShownRunes is how much of a reply line is kept for the output.
	maxShownRunes = 300
)

var (
	// ErrBadReply means the server sent something that is not an SMTP reply.
	ErrBadReply = errors.New("malformed SMTP reply")
	// ErrReplyTooLong means a reply line or a multi-line reply exceeded the limits.
	ErrReplyTooLong = errors.New("SMTP reply too long")
	// ErrClosing means the server replied 421: it is closing the connection.
	ErrClosing = errors.New("server is closing the connection (421)")
)

// Reply is one SMTP reply. Its text is already escaped for display: control
// characters, escape sequences and invalid UTF-8 are shown as Go escapes, and
// long lines are cut.
type Reply struct {
	Code int `json:"code"`
	// Lines are the reply's lines without the code and separator, escaped.
	Lines []string `json:"lines"`
}

// String is the reply as one line: "250 first line / second line".
func (r Reply) String() string {
	if r.Code == 0 {
		return ""
	}
	return strconv.Itoa(r.Code) + " " + strings.Join(r.Lines, " / ")
}

// Positive reports a 2xx reply.
func (r Reply) Positive() bool { return r.Code >= 200 && r.Code < 300 }

// Transient reports a 4xx reply.
func (r Reply) Transient() bool { return r.Code >= 400 && r.Code < 500 }

// Permanent reports a 5xx reply.
func (r Reply) Permanent() bool { return r.Code >= 500 && r.Code < 600 }

// Escape makes server text safe for terminals, logs and chat: printable
// characters are kept, everything else (control characters, ESC, C1 controls,
// invalid UTF-8, bidi overrides) becomes a Go escape, and the result is cut
// to max runes with "…".
func Escape(s string, max int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if n >= max {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unicode.IsPrint(r) || r == ' ':
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
		n++
	}
	return b.String()
}

// readLine reads one CRLF- or LF-terminated line of at most MaxLineBytes.
func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > MaxLineBytes+2 {
			return "", fmt.Errorf("%w: a line is longer than %d bytes", ErrReplyTooLong, MaxLineBytes)
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return "", fmt.Errorf("connection closed by the server: %w", io.EOF)
			}
			return "", fmt.Errorf("connection closed by the server in the middle of a line: %w", io.ErrUnexpectedEOF)
		}
		return "", err
	}
	s := strings.TrimSuffix(string(line), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// ReadReply reads one (possibly multi-line) SMTP reply from r.
func ReadReply(r *bufio.Reader) (Reply, error) {
	var rep Reply
	for i := 0; ; i++ {
		if i == MaxReplyLines {
			return rep, fmt.Errorf("%w: more than %d lines", ErrReplyTooLong, MaxReplyLines)
		}
		line, err := readLine(r)
		if err != nil {
			return rep, err
		}
		if len(line) < 3 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
			return rep, fmt.Errorf("%w: %q", ErrBadReply, Escape(line, 80))
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 {
			return rep, fmt.Errorf("%w: %q", ErrBadReply, Escape(line, 80))
		}
		if rep.Code != 0 && code != rep.Code {
			return rep, fmt.Errorf("%w: code %d in a reply that began with %d", ErrBadReply, code, rep.Code)
		}
		rep.Code = code
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		rep.Lines = append(rep.Lines, Escape(text, maxShownRunes))
		if len(line) == 3 || line[3] == ' ' {
			return rep, nil
		}
	}
}

// conn is one SMTP connection with a deadline per step.
type conn struct {
	nc      net.Conn
	r       *bufio.Reader
	timeout time.Duration
	stop    func() bool // stops the context watcher
}

// dial connects to addr (implicit TLS when tlsConf is not nil), closing the
// connection as soon as ctx is done so that no step outlives a cancellation.
func dial(ctx context.Context, addr, source string, timeout time.Duration, tlsConf *tls.Config) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	if source != "" {
		ip := net.ParseIP(source)
		if ip == nil {
			return nil, fmt.Errorf("source address %q: not an IP address", source)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	if tlsConf != nil {
		tc := tls.Client(nc, tlsConf)
		hctx, cancel := context.WithTimeout(ctx, timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	c := &conn{nc: nc, r: bufio.NewReaderSize(nc, 4096), timeout: timeout}
	c.stop = context.AfterFunc(ctx, func() { nc.Close() })
	return c, nil
}

// close closes the connection (after QUIT when polite is set).
func (c *conn) close(polite bool) {
	if polite {
		_, _ = c.cmd("QUIT")
	}
	c.stop()
	c.nc.Close()
}

// reply reads the next reply within the step timeout.
func (c *conn) reply() (Reply, error) {
	if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return Reply{}, err
	}
	rep, err := ReadReply(c.r)
	if err != nil {
		return rep, stepError(err, c.timeout)
	}
	if rep.Code == 421 {
		return rep, fmt.Errorf("%w: %s", ErrClosing, rep)
	}
	return rep, nil
}

// cmd sends one command line and reads its reply.
func (c *conn) cmd(line string) (Reply, error) {
	if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return Reply{}, err
	}
	if _, err := io.WriteString(c.nc, line+"\r\n"); err != nil {
		return Reply{}, stepError(err, c.timeout)
	}
	return c.reply()
}

// startTLS upgrades the connection after a 220 reply to STARTTLS.
func (c *conn) startTLS(ctx context.Context, conf *tls.Config) error {
	tc := tls.Client(c.nc, conf)
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return fmt.Errorf("STARTTLS handshake: %w", err)
	}
	c.stop()
	c.nc = tc
	c.r = bufio.NewReaderSize(tc, 4096)
	c.stop = context.AfterFunc(ctx, func() { tc.Close() })
	return nil
}

// ErrTimeout means the server did not answer one step within the timeout.
var ErrTimeout = errors.New("timed out")

func stepError(err error, timeout time.Duration) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: no reply within %s", ErrTimeout, timeout)
	}
	return err
}
