package exchange

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
)

// TrustExport is the PowerShell one-liner, run in the Exchange Management
// Shell, that writes the file ReadTrust reads: the accepted domains
// (authoritative ones are local; internal and external relay domains are
// relay domains) and the remote IP ranges of the receive connectors that
// let anonymous clients relay (ms-Exch-SMTP-Accept-Any-Recipient for
// Anonymous Logon), the clients that may relay.
const TrustExport = `@{ AcceptedDomains = @(Get-AcceptedDomain | ForEach-Object { @{ DomainName = $_.DomainName.ToString(); DomainType = $_.DomainType.ToString() } }); RelayRanges = @(Get-ReceiveConnector | Where-Object { Get-ADPermission -Identity $_.Identity | Where-Object { $_.ExtendedRights -like '*ms-Exch-SMTP-Accept-Any-Recipient*' -and $_.User -like '*ANONYMOUS LOGON*' } } | ForEach-Object { $_.RemoteIPRanges | ForEach-Object { $_.ToString() } }) } | ConvertTo-Json -Depth 3 | Set-Content -Encoding UTF8 exchange-trust.json`

// trustFile is the JSON that TrustExport writes.
type trustFile struct {
	AcceptedDomains []struct {
		DomainName string
		DomainType string
	}
	RelayRanges []string
}

// ReadTrust reads the file written by TrustExport.
func ReadTrust(path string) (parsers.Trust, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return parsers.Trust{}, fmt.Errorf("exchange configuration: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // Set-Content -Encoding UTF8 writes a BOM
	var f trustFile
	if err := json.Unmarshal(data, &f); err != nil {
		return parsers.Trust{}, fmt.Errorf("exchange configuration %s: %w (write it with the one-liner in the README)", path, err)
	}
	if len(f.AcceptedDomains) == 0 {
		return parsers.Trust{}, fmt.Errorf("exchange configuration %s: no AcceptedDomains", path)
	}
	t := parsers.Trust{Source: path}
	for _, d := range f.AcceptedDomains {
		if strings.EqualFold(d.DomainType, "Authoritative") || d.DomainType == "" {
			t.AddDomain(&t.LocalDomains, d.DomainName)
		} else {
			t.AddDomain(&t.RelayDomains, d.DomainName)
		}
	}
	for _, r := range f.RelayRanges {
		t.AddNetwork(r)
	}
	return t, nil
}
