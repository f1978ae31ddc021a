package probe

import (
	"fmt"
	"strings"
)

// Variant is one relay attempt: a MAIL FROM path and a RCPT TO path
// (without the angle brackets).
type Variant struct {
	// Name identifies the variant in output and tests ("percent-hack-ip").
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
	// AltFrom is the sender used instead of From when the server refuses
	// From (many refuse IP-literal senders): the variant is about its
	// recipient, which is still worth trying.
	AltFrom string `json:"alt_from,omitempty"`
}

// Names are what the variants are built from.
type Names struct {
	// From and To are the local parts of the probe's sender and recipient.
	From, To string
	// Foreign is a domain that is not the server's (the relay target).
	Foreign string
	// ServerName is the server's host name (from its EHLO reply or given).
	ServerName string
	// ServerIP is the server's address, written as an IP literal ([ip]).
	ServerIP string
	// LocalDomain is one of the server's own mail domains, for the forged
	// local sender.
	LocalDomain string
}

// VariantNames are the names of the variants Variants returns, in order: nmap
// smtp-open-relay's sixteen, then the forged local sender.
var VariantNames = []string{
	"null-sender",
	"foreign-sender",
	"sender-at-server-name",
	"sender-at-ip-literal",
	"percent-hack-ip",
	"percent-hack-server-name",
	"quoted-at",
	"quoted-percent",
	"quoted-at-ip",
	"double-at-ip",
	"double-at-server-name",
	"source-route-ip",
	"source-route-server-name",
	"bang-path",
	"bang-path-ip",
	"bang-path-server-name",
	"forged-local-sender",
}

// Variants returns the relay attempts for n: nmap smtp-open-relay's sixteen
// (null, foreign, server-name and IP-literal senders to a foreign recipient,
// then percent hacks, quoted local parts, double ats, source routes and bang
// paths from the IP-literal sender) and the partial-relay test, a forged
// sender at one of the server's own domains to a foreign recipient.
func Variants(n Names) []Variant {
	ip := "[" + n.ServerIP + "]"
	srv := n.ServerName
	to, dom := n.To, n.Foreign
	plain := to + "@" + dom
	fromIP := n.From + "@" + ip
	rcpts := []string{
		fmt.Sprintf("%s%%%s@%s", to, dom, ip),
		fmt.Sprintf("%s%%%s@%s", to, dom, srv),
		fmt.Sprintf(`"%s@%s"`, to, dom),
		fmt.Sprintf(`"%s%%%s"`, to, dom),
		fmt.Sprintf(`"%s@%s"@%s`, to, dom, ip),
		fmt.Sprintf("%s@%s@%s", to, dom, ip),
		fmt.Sprintf("%s@%s@%s", to, dom, srv),
		fmt.Sprintf("@%s:%s@%s", ip, to, dom),
		fmt.Sprintf("@%s:%s@%s", srv, to, dom),
		fmt.Sprintf("%s!%s", dom, to),
		fmt.Sprintf("%s!%s@%s", dom, to, ip),
		fmt.Sprintf("%s!%s@%s", dom, to, srv),
	}
	vs := []Variant{
		{From: "", To: plain},
		{From: n.From + "@" + dom, To: plain},
		{From: n.From + "@" + srv, To: plain},
		{From: fromIP, To: plain},
	}
	for _, r := range rcpts {
		vs = append(vs, Variant{From: fromIP, To: r, AltFrom: n.From + "@" + dom})
	}
	vs = append(vs, Variant{From: "postmaster@" + n.LocalDomain, To: plain})
	for i := range vs {
		vs[i].Name = VariantNames[i]
	}
	return vs
}

// ValidHostName reports whether s may be used as a host name in a command:
// letters, digits, dots and hyphens only (server text is attacker-chosen).
func ValidHostName(s string) bool {
	if s == "" || len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// parentDomain is name without its first label when that leaves a domain
// with a dot ("mail.example.org" → "example.org"), else name.
func parentDomain(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 && strings.Contains(name[i+1:], ".") {
		return name[i+1:]
	}
	return name
}
