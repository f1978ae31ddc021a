package exchange

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadTrust(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exchange-trust.json")
	// As ConvertTo-Json writes it, with the BOM of Set-Content -Encoding UTF8.
	os.WriteFile(path, []byte("\xef\xbb\xbf"+`{
    "RelayRanges":  [
                        "10.0.0.25",
                        "10.0.1.0/24",
                        "10.0.2.1-10.0.2.6"
                    ],
    "AcceptedDomains":  [
                            {
                                "DomainType":  "Authoritative",
                                "DomainName":  "contoso.com"
                            },
                            {
                                "DomainType":  "InternalRelay",
                                "DomainName":  "*.fabrikam.com"
                            }
                        ]
}`), 0o644)
	tr, err := ReadTrust(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tr.LocalDomains, ",") != "contoso.com" || strings.Join(tr.RelayDomains, ",") != "*.fabrikam.com" {
		t.Errorf("domains %q / %q", tr.LocalDomains, tr.RelayDomains)
	}
	if got := strings.Join(tr.Networks, ","); got != "10.0.0.25/32,10.0.1.0/24,10.0.2.1/32,10.0.2.2/31,10.0.2.4/31,10.0.2.6/32" {
		t.Errorf("networks %s", got)
	}
	os.WriteFile(path, []byte(`{"AcceptedDomains": []}`), 0o644)
	if _, err := ReadTrust(path); err == nil {
		t.Error("no accepted domains gave no error")
	}
}
