package exim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/relaywatch/relaywatch/parsers"
)

func TestReadTrust(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "relay_domains"), []byte("# gateway for\ncustomer.example: yes\nother.example\n"), 0o644)
	os.Mkdir(filepath.Join(dir, "virtual"), 0o755)
	os.WriteFile(filepath.Join(dir, "virtual", "hosted.example"), nil, 0o644)
	conf := `# Debian-style macros
MAIN_LOCAL_DOMAINS = localhost : example.org : dsearch;DIR/virtual
MAIN_RELAY_NETS = 192.0.2.0/24 : 2001::db8::::/32
domainlist local_domains = MAIN_LOCAL_DOMAINS
domainlist relay_to_domains = lsearch;DIR/relay_domains : \
    backup.example : ^regex\.example$
hostlist   relay_from_hosts = localhost : MAIN_RELAY_NETS : mail.partner.example
hostlist   other = <; 10.0.0.0/8 ; ::1

begin acl
domainlist local_domains = wrong.example
`
	path := filepath.Join(dir, "exim4.conf")
	os.WriteFile(path, []byte(strings.ReplaceAll(conf, "DIR", dir)), 0o644)
	tr, err := ReadTrust(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"localhost", "example.org", "hosted.example"}, tr.LocalDomains); d != "" {
		t.Errorf("local domains (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"customer.example", "other.example", "backup.example"}, tr.RelayDomains); d != "" {
		t.Errorf("relay domains (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"127.0.0.1/32", "::1/128", "192.0.2.0/24", "2001:db8::/32"}, tr.Networks); d != "" {
		t.Errorf("networks (-want +got):\n%s", d)
	}
	if len(tr.Notes) != 2 {
		t.Errorf("notes %q, want the regex and the host name", tr.Notes)
	}
	if got := splitList("<; 10.0.0.0/8 ; ::1"); strings.Join(got, ",") != "10.0.0.0/8,::1" {
		t.Errorf("<; list: %q", got)
	}
}

func TestReadTrustWithoutLists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exim.conf")
	os.WriteFile(path, []byte("primary_hostname = x\n"), 0o644)
	if _, err := ReadTrust(context.Background(), path); err == nil {
		t.Error("a configuration without the lists gave no error")
	}
}

// FuzzReadConfig: any configuration text gives lists without a panic.
func FuzzReadConfig(f *testing.F) {
	f.Add("MAIN = a : b\ndomainlist local_domains = MAIN : +other : lsearch;/nonexistent\nhostlist relay_from_hosts = <; ::1 ; 10.0.0.0/8 ; @[]\ndomainlist other = c\n")
	f.Add("domainlist local_domains = \\\n  x\nbegin acl\n")
	f.Fuzz(func(t *testing.T, conf string) {
		macros, lists := readConfig(conf)
		tr := &parsers.Trust{}
		r := resolver{t: tr, macros: macros, lists: lists}
		for _, name := range []string{"local_domains", "relay_to_domains"} {
			for _, item := range r.items(name, 0) {
				r.domain(&tr.LocalDomains, item)
			}
		}
		for _, item := range r.items("relay_from_hosts", 0) {
			r.host(item)
		}
	})
}
