package postfix

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/relaywatch/relaywatch/parsers"
)

// trustParams are the main.cf parameters that say which domains Postfix
// accepts and which clients may relay, in the order ReadTrust asks postconf.
var trustParams = []string{"mydestination", "virtual_alias_domains", "virtual_mailbox_domains", "relay_domains", "mynetworks"}

// ReadTrust reads the trust model from a Postfix configuration: path is the
// configuration directory or its main.cf. mydestination,
// virtual_alias_domains and virtual_mailbox_domains are local domains,
// relay_domains relay domains (their tables' keys where the table has a
// source file), mynetworks the clients that may relay. When postconf is on
// PATH it is asked (postconf -c DIR -x -h), so that defaults and $name
// expansions are Postfix's own; otherwise main.cf is read directly, with
// Postfix's defaults for the parameters it leaves out.
func ReadTrust(ctx context.Context, path string) (parsers.Trust, error) {
	return readTrust(ctx, path, true)
}

func readTrust(ctx context.Context, path string, usePostconf bool) (parsers.Trust, error) {
	dir := path
	if fi, err := os.Stat(path); err != nil {
		return parsers.Trust{}, fmt.Errorf("postfix configuration: %w", err)
	} else if !fi.IsDir() {
		dir = filepath.Dir(path)
		if filepath.Base(path) != "main.cf" {
			return parsers.Trust{}, fmt.Errorf("postfix configuration %s: give the directory or its main.cf", path)
		}
	}
	var values map[string]string
	var source string
	err := fmt.Errorf("postconf not used")
	if usePostconf {
		values, source, err = postconf(ctx, dir)
	}
	if err != nil {
		values, err = readMainCF(filepath.Join(dir, "main.cf"))
		if err != nil {
			return parsers.Trust{}, err
		}
		source = filepath.Join(dir, "main.cf")
	}
	t := parsers.Trust{Source: source}
	for _, name := range trustParams[:3] {
		for _, item := range splitList(values[name]) {
			addDomains(&t, &t.LocalDomains, name, item)
		}
	}
	for _, item := range splitList(values["relay_domains"]) {
		addDomains(&t, &t.RelayDomains, "relay_domains", item)
	}
	for _, item := range splitList(values["mynetworks"]) {
		if strings.HasPrefix(item, "/") || isTable(item) {
			keys, err := tableKeys(item)
			if err != nil {
				t.Notef("mynetworks: %v", err)
				continue
			}
			for _, k := range keys {
				t.AddNetwork(k)
			}
			continue
		}
		t.AddNetwork(item)
	}
	return t, nil
}

// postconf asks Postfix itself for the parameters (expanded, with defaults).
func postconf(ctx context.Context, dir string) (map[string]string, string, error) {
	bin, err := exec.LookPath("postconf")
	if err != nil {
		return nil, "", err
	}
	args := append([]string{"-c", dir, "-x", "-h"}, trustParams...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, "", fmt.Errorf("postconf -c %s: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(trustParams) {
		return nil, "", fmt.Errorf("postconf -c %s: %d lines for %d parameters", dir, len(lines), len(trustParams))
	}
	values := map[string]string{}
	for i, name := range trustParams {
		values[name] = lines[i]
	}
	return values, "postconf -c " + dir, nil
}

// mainCFDefaults are Postfix 3.x's defaults of the parameters read, and of
// those they refer to.
var mainCFDefaults = map[string]string{
	"mydestination":           "$myhostname, localhost.$mydomain, localhost",
	"virtual_alias_domains":   "$virtual_alias_maps",
	"virtual_alias_maps":      "",
	"virtual_mailbox_domains": "$virtual_mailbox_maps",
	"virtual_mailbox_maps":    "",
	"relay_domains":           "",
	"mynetworks":              "127.0.0.0/8 [::1]/128",
}

// readMainCF reads the parameters of a main.cf, expanding $name and
// ${name} from the file and the defaults.
func readMainCF(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("postfix configuration: %w", err)
	}
	raw := map[string]string{}
	var key string
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.TrimSpace(line) == "", strings.HasPrefix(strings.TrimSpace(line), "#"):
			continue
		case line[0] == ' ' || line[0] == '\t':
			if key != "" {
				raw[key] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				key = ""
				continue
			}
			key = strings.TrimSpace(k)
			raw[key] = strings.TrimSpace(v)
		}
	}
	if _, ok := raw["myhostname"]; !ok {
		if h, err := os.Hostname(); err == nil {
			raw["myhostname"] = h
		}
	}
	if _, ok := raw["mydomain"]; !ok {
		if _, d, ok := strings.Cut(raw["myhostname"], "."); ok {
			raw["mydomain"] = d
		} else {
			raw["mydomain"] = "localdomain"
		}
	}
	var expand func(s string, depth int) string
	expand = func(s string, depth int) string {
		if depth > 10 || !strings.Contains(s, "$") {
			return s
		}
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] != '$' || i+1 == len(s) {
				b.WriteByte(s[i])
				continue
			}
			j, name := i+1, ""
			if s[j] == '{' || s[j] == '(' {
				end := strings.IndexAny(s[j:], "})")
				if end < 0 {
					b.WriteString(s[i:])
					break
				}
				name, i = s[j+1:j+end], j+end
			} else {
				k := j
				for k < len(s) && (isAlnum(s[k]) || s[k] == '_') {
					k++
				}
				name, i = s[j:k], k-1
			}
			v, ok := raw[name]
			if !ok {
				v = mainCFDefaults[name]
			}
			b.WriteString(expand(v, depth+1))
		}
		return b.String()
	}
	values := map[string]string{}
	for _, name := range trustParams {
		v, ok := raw[name]
		if !ok {
			v = mainCFDefaults[name]
		}
		values[name] = expand(v, 0)
	}
	return values, nil
}

// splitList splits a Postfix list (commas and/or white space), keeping
// "inline:{ a, b }" whole.
func splitList(s string) []string {
	var out []string
	for s != "" {
		s = strings.TrimLeft(s, ", \t")
		if s == "" {
			break
		}
		end := strings.IndexAny(s, ", \t")
		if i := strings.IndexByte(s, '{'); i >= 0 && (end < 0 || i < end) {
			if j := strings.IndexByte(s, '}'); j > i {
				end = j + 1
			}
		}
		if end < 0 {
			end = len(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

// isTable tells a lookup table reference "type:name" from a domain or CIDR.
func isTable(item string) bool {
	c := strings.IndexByte(item, ':')
	if c <= 0 || strings.HasPrefix(item, "[") {
		return false
	}
	for _, r := range item[:c] {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// addDomains adds a domain, or the keys of a table or file of domains.
func addDomains(t *parsers.Trust, list *[]string, param, item string) {
	if !isTable(item) && !strings.HasPrefix(item, "/") {
		t.AddDomain(list, item)
		return
	}
	keys, err := tableKeys(item)
	if err != nil {
		t.Notef("%s: %v", param, err)
		return
	}
	for _, k := range keys {
		if strings.ContainsRune(k, '@') {
			continue // an address in a virtual alias map: its domain is listed on its own
		}
		t.AddDomain(list, k)
	}
}

// tableKeys lists the keys of a table whose source is a text file (hash:,
// btree:, lmdb:, cdb:, dbm:, texthash:, a plain /file) or an inline:{...}
// table. Database tables (mysql:, pgsql:, ldap:, ...) cannot be listed.
func tableKeys(item string) ([]string, error) {
	if strings.HasPrefix(item, "inline:{") {
		return splitList(strings.TrimSuffix(strings.TrimPrefix(item, "inline:{"), "}")), nil
	}
	typ, name, _ := strings.Cut(item, ":")
	if strings.HasPrefix(item, "/") {
		typ, name = "file", item
	}
	switch typ {
	case "file", "hash", "btree", "lmdb", "cdb", "dbm", "texthash", "sdbm":
	case "proxy":
		return tableKeys(name)
	default:
		return nil, fmt.Errorf("table %s cannot be listed: add its domains with --local-domains", item)
	}
	keys, err := parsers.ReadListFile(name, func(line string) []string {
		if typ == "file" {
			return splitList(line) // a list in a file
		}
		return strings.Fields(line)[:1] // a table source: the key
	})
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", item, err)
	}
	return keys, nil
}
