package parsers

import (
	"strings"
	"testing"
)

func TestTrustAddNetwork(t *testing.T) {
	var tr Trust
	for _, s := range []string{"127.0.0.0/8", "[::1]/128", "[::ffff:127.0.0.0]/104", "192.0.2.7", "10.0.0.1-10.0.0.6", "mail.example.org", "hash:/etc/postfix/network_table"} {
		tr.AddNetwork(s)
	}
	want := "127.0.0.0/8 ::1/128 ::ffff:127.0.0.0/104 192.0.2.7/32 10.0.0.1/32 10.0.0.2/31 10.0.0.4/31 10.0.0.6/32"
	if got := strings.Join(tr.Networks, " "); got != want {
		t.Errorf("networks\n got  %s\n want %s", got, want)
	}
	if len(tr.Notes) != 2 {
		t.Errorf("notes %q, want the host name and the table", tr.Notes)
	}
}

func TestTrustAddDomain(t *testing.T) {
	var tr Trust
	for _, s := range []string{"Example.ORG", "*.example.net", ".example.com", "$myhostname", "regexp:/etc/x", "a b"} {
		tr.AddDomain(&tr.LocalDomains, s)
	}
	if got := strings.Join(tr.LocalDomains, " "); got != "example.org *.example.net .example.com" {
		t.Errorf("domains %q", got)
	}
	if len(tr.Notes) != 3 {
		t.Errorf("notes %q", tr.Notes)
	}
}

// TestWideNetworksAreNotTrusted: a mynetworks that opens the server to the
// Internet is the open relay itself: relaywatch notes it and does not
// trust it; private and narrow public networks are taken over.
func TestWideNetworksAreNotTrusted(t *testing.T) {
	var tr Trust
	for _, n := range []string{"0.0.0.0/0", "::/0", "80.0.0.0/8", "203.0.113.0/24", "10.0.0.0/8", "127.0.0.0/8", "[::1]/128", "2001:db8::/32"} {
		tr.AddNetwork(n)
	}
	want := []string{"203.0.113.0/24", "10.0.0.0/8", "127.0.0.0/8", "::1/128", "2001:db8::/32"}
	if strings.Join(tr.Networks, " ") != strings.Join(want, " ") {
		t.Errorf("networks %v, want %v", tr.Networks, want)
	}
	if len(tr.Notes) != 3 || !strings.Contains(tr.Notes[0], "open relay") {
		t.Errorf("notes %q", tr.Notes)
	}
}
