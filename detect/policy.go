// Package detect turns parsed events into findings: it correlates events by
// (host, message id) into messages and deliveries, classifies each delivery
// and submission against the policy, and runs the relay rules over event time.
//
// Time in this package is event time only; nothing reads the wall clock, so a
// batch replay gives the same findings as watching the log live.
package detect

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Policy says which domains are ours and which clients may relay.
type Policy struct {
	localDomains map[string]bool // exact names
	localParents []string        // ".example.org": any subdomain
	learned      *boundedSet
	trusted      []netip.Prefix
	known        []netip.Prefix
}

// DefaultTrustedNetworks is loopback only.
var DefaultTrustedNetworks = []string{"127.0.0.0/8", "::1/128"}

// MaxLearnedDomains bounds the local domains learned from the logs.
const MaxLearnedDomains = 10000

// NewPolicy builds a policy. Local domains are names ("example.org") or
// ".example.org" / "*.example.org" for every subdomain. Trusted networks and
// known clients are CIDRs or single addresses.
func NewPolicy(localDomains, trustedNetworks, knownClients []string) (*Policy, error) {
	p := &Policy{localDomains: map[string]bool{}, learned: newBoundedSet(MaxLearnedDomains)}
	for _, d := range localDomains {
		d = strings.ToLower(strings.TrimSpace(d))
		switch {
		case d == "":
			continue
		case strings.HasPrefix(d, "*."):
			p.localParents = append(p.localParents, d[1:])
		case strings.HasPrefix(d, "."):
			p.localParents = append(p.localParents, d)
		default:
			if strings.ContainsAny(d, "@ /") {
				return nil, fmt.Errorf("local domain %q: not a domain name", d)
			}
			p.localDomains[d] = true
		}
	}
	var err error
	if p.trusted, err = parsePrefixes(trustedNetworks); err != nil {
		return nil, fmt.Errorf("trusted networks: %w", err)
	}
	if p.known, err = parsePrefixes(knownClients); err != nil {
		return nil, fmt.Errorf("known clients: %w", err)
	}
	return p, nil
}

func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR: %w", s, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an IP address or CIDR: %w", s, err)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// IsLocalDomain reports whether a (lower-case) domain is ours, configured or learned.
func (p *Policy) IsLocalDomain(domain string) bool {
	if domain == "" {
		return false
	}
	if p.localDomains[domain] || p.learned.has(domain) {
		return true
	}
	for _, parent := range p.localParents {
		if strings.HasSuffix(domain, parent) {
			return true
		}
	}
	return false
}

// LearnLocalDomain records a domain that received a local delivery.
func (p *Policy) LearnLocalDomain(domain string) {
	if domain == "" || p.localDomains[domain] || p.learned.has(domain) {
		return
	}
	p.learned.add(strings.Clone(domain))
}

// LearnedLocalDomains returns the learned domains, sorted.
func (p *Policy) LearnedLocalDomains() []string {
	out := p.learned.keys()
	sort.Strings(out)
	return out
}

// IsTrusted reports whether addr is in a trusted network.
func (p *Policy) IsTrusted(addr netip.Addr) bool { return contains(p.trusted, addr) }

// IsKnownClient reports whether addr is a known relaying client.
func (p *Policy) IsKnownClient(addr netip.Addr) bool { return contains(p.known, addr) }

func contains(list []netip.Prefix, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, p := range list {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Domain returns the lower-case domain of an address ("" when it has none).
// It does not allocate when the domain is already lower case.
func Domain(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	d := addr[at+1:]
	d = strings.TrimSuffix(d, ".")
	for i := 0; i < len(d); i++ {
		if c := d[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(d)
		}
	}
	return d
}

// HasConfiguredDomains reports whether any local domain was configured.
func (p *Policy) HasConfiguredDomains() bool {
	return len(p.localDomains) > 0 || len(p.localParents) > 0
}
