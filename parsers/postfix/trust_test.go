package postfix

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeConfig writes a main.cf (a gateway and backup MX with one local
// domain) and its tables into a new directory.
func writeConfig(t *testing.T) string {
	dir := t.TempDir()
	files := map[string]string{
		"main.cf": `# a gateway and backup MX
myhostname = mx1.example.org
mydestination = $myhostname, localhost.$mydomain, localhost
virtual_alias_domains = alias.example
virtual_alias_maps = hash:DIR/virtual
relay_domains = hash:DIR/relay_domains,
    backup.example ${mydomain}
mynetworks = 127.0.0.0/8 [::1]/128
	192.0.2.0/24, mysql:DIR/networks.cf
`,
		"virtual":       "postmaster@alias.example  root\n@alias.example  catchall@example.org\n",
		"relay_domains": "# customers we are the gateway for\ncustomer.example   OK\nother.example OK\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.ReplaceAll(body, "DIR", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadTrustFromMainCF(t *testing.T) {
	dir := writeConfig(t)
	tr, err := readTrust(context.Background(), filepath.Join(dir, "main.cf"), false)
	if err != nil {
		t.Fatal(err)
	}
	check(t, tr.LocalDomains, tr.RelayDomains, tr.Networks, tr.Notes)
}

// TestReadTrustFromPostconf asks the real postconf (Debian package
// postfix) about the same configuration: the results must agree.
func TestReadTrustFromPostconf(t *testing.T) {
	if _, err := exec.LookPath("postconf"); err != nil {
		t.Skip("postconf not installed")
	}
	dir := writeConfig(t)
	tr, err := ReadTrust(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tr.Source, "postconf -c ") {
		t.Errorf("source %q: postconf was not used", tr.Source)
	}
	check(t, tr.LocalDomains, tr.RelayDomains, tr.Networks, tr.Notes)
}

func check(t *testing.T, local, relay, networks, notes []string) {
	t.Helper()
	if d := cmp.Diff([]string{"mx1.example.org", "localhost.example.org", "localhost", "alias.example"}, local); d != "" {
		t.Errorf("local domains (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"customer.example", "other.example", "backup.example", "example.org"}, relay); d != "" {
		t.Errorf("relay domains (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"127.0.0.0/8", "::1/128", "192.0.2.0/24"}, networks); d != "" {
		t.Errorf("networks (-want +got):\n%s", d)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "mysql:") {
		t.Errorf("notes %q, want the mysql table", notes)
	}
}

func TestReadTrustErrors(t *testing.T) {
	if _, err := ReadTrust(context.Background(), filepath.Join(t.TempDir(), "nope")); err == nil {
		t.Error("a missing directory gave no error")
	}
	f := filepath.Join(t.TempDir(), "master.cf")
	os.WriteFile(f, nil, 0o644)
	if _, err := ReadTrust(context.Background(), f); err == nil {
		t.Error("master.cf was taken for main.cf")
	}
}

// FuzzMainCF: any main.cf gives parameter values without a panic, and the
// lists split into items without white space.
func FuzzMainCF(f *testing.F) {
	f.Add("mydestination = $myhostname, ${mydomain} $(x)\n  inline:{ a, b }\nmynetworks = [::1]/128 $")
	f.Add("relay_domains = $relay_domains\nx = ${")
	f.Fuzz(func(t *testing.T, conf string) {
		path := filepath.Join(t.TempDir(), "main.cf")
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		values, err := readMainCF(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			for _, item := range splitList(v) {
				if item == "" {
					t.Errorf("empty item from %q", v)
				}
			}
		}
	})
}
