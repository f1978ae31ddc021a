package parsers

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Trust is what a mail server's own configuration says about relaying:
// the domains it delivers (LocalDomains), the domains it accepts mail for
// to pass on (RelayDomains: a gateway's or backup MX's), and the clients
// that may relay (Networks, as CIDRs). Each format package reads its MTA's
// configuration into one (postfix.ReadTrust, exim.ReadTrust,
// exchange.ReadTrust).
type Trust struct {
	// Source says where it was read from ("postconf -c /etc/postfix").
	Source       string   `json:"source"`
	LocalDomains []string `json:"local_domains"`
	RelayDomains []string `json:"relay_domains"`
	Networks     []string `json:"networks"`
	// Notes name what could not be taken over (a database table, a regular
	// expression, a host name in a network list), so that the operator
	// knows to add it by hand.
	Notes []string `json:"notes,omitempty"`
}

// Notef records something the configuration holds that could not be used.
func (t *Trust) Notef(format string, args ...any) {
	if len(t.Notes) < 50 {
		t.Notes = append(t.Notes, fmt.Sprintf(format, args...))
	}
}

// AddNetwork adds a CIDR or an address (with or without brackets, as in
// Postfix's "[::1]/128"), or notes what it is not.
func (t *Trust) AddNetwork(item string) {
	s := strings.TrimSpace(item)
	if s == "" {
		return
	}
	if strings.HasPrefix(s, "[") {
		if rb := strings.IndexByte(s, ']'); rb > 0 {
			s = s[1:rb] + s[rb+1:]
		}
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		t.addPrefix(item, p.Masked())
		return
	}
	if a, err := netip.ParseAddr(s); err == nil {
		t.addPrefix(item, netip.PrefixFrom(a, a.BitLen()))
		return
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		if ps, ok := rangePrefixes(lo, hi); ok {
			for _, x := range ps {
				t.addPrefix(item, netip.MustParsePrefix(x))
			}
			return
		}
	}
	t.Notef("network %q is not an address or CIDR: not taken over", item)
}

// addPrefix adds a network, unless it is public address space wider than
// any mail operator's own (an IPv4 prefix shorter than /16, IPv6 shorter
// than /32): a mynetworks of 0.0.0.0/0 is how many servers become open
// relays, and taking it over would make relaywatch trust every relaying
// client. It is noted instead.
func (t *Trust) addPrefix(item string, p netip.Prefix) {
	a := p.Addr()
	private := a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast()
	wide := (a.Is4() && p.Bits() < 16) || (!a.Is4() && p.Bits() < 32)
	if wide && !private {
		t.Notef("network %q (%s) is public address space wider than a mail operator's own: an open relay by configuration? Not trusted by relaywatch", item, p)
		return
	}
	t.Networks = append(t.Networks, p.String())
}

// AddDomain adds a domain name ("example.org", "*.example.org",
// ".example.org") to list, or notes what it is not.
func (t *Trust) AddDomain(list *[]string, item string) {
	d := strings.ToLower(strings.TrimSpace(item))
	if d == "" {
		return
	}
	name := strings.TrimPrefix(strings.TrimPrefix(d, "*."), ".")
	if name == "" || strings.ContainsAny(name, "@/:;$[]{}()^\\ ,*") {
		t.Notef("domain %q is not a domain name: not taken over", item)
		return
	}
	*list = append(*list, d)
}

// rangePrefixes turns an address range "a-b" (Exchange's RemoteIPRanges)
// into the CIDRs that cover exactly it.
func rangePrefixes(loS, hiS string) ([]string, bool) {
	lo, err1 := netip.ParseAddr(strings.TrimSpace(loS))
	hi, err2 := netip.ParseAddr(strings.TrimSpace(hiS))
	if err1 != nil || err2 != nil || lo.Is4() != hi.Is4() || hi.Less(lo) {
		return nil, false
	}
	var out []string
	for n := 0; n < 256 && !hi.Less(lo); n++ {
		bits := lo.BitLen()
		// The largest prefix that starts at lo and stays within hi.
		for bits > 0 {
			p := netip.PrefixFrom(lo, bits-1).Masked()
			if p.Addr() != lo || hi.Less(lastAddr(p)) {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(lo, bits)
		out = append(out, p.String())
		last := lastAddr(p)
		if last == hi {
			return out, true
		}
		lo = last.Next()
		if !lo.IsValid() {
			return out, true
		}
	}
	return nil, false // more than 256 prefixes: not a range anyone configures
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// maxListItems bounds the items read from one list or table file.
const maxListItems = 100000

// ReadListFile reads a file of list items or table keys (Postfix's table
// sources, Exim's list files): items is called with every line that is
// neither blank nor a comment and returns the items it holds. At most
// 100,000 items are read.
func ReadListFile(path string, items func(line string) []string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) < maxListItems {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, items(line)...)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
