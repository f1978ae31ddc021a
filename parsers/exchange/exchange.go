// Package exchange parses Microsoft Exchange transport logs: message
// tracking logs (MSGTRK*.LOG) and SMTP Receive and Send protocol logs
// (RECV*.LOG, SEND*.LOG). They are CSV files with W3C-style '#' headers;
// the column order comes from the '#Fields:' header (never hard-coded), a
// header met mid-stream is honoured, and a file read from its middle falls
// back to the layout of the Exchange version whose column count matches.
//
// These parsers keep state between lines (the columns, and for protocol
// logs the SMTP sessions), so a stream is parsed sequentially.
package exchange

import (
	"strings"
	"time"
)

// Format names.
const (
	FormatMessageTracking = "exchange-msgtrk"
	FormatSMTPReceive     = "exchange-smtp"
)

// Program is the Event.Program of Exchange events.
const (
	ProgramMessageTracking = "exchange/msgtrk"
	ProgramSMTPReceive     = "exchange/smtp-receive"
	ProgramSMTPSend        = "exchange/smtp-send"
)

// Message tracking columns of each Exchange version, for files read without
// their header. Exchange 2010 (14.x) has 26 columns, 2013 (15.0) adds
// network-message-id (27), 2016 and 2019 add transport-traffic-type, log-id
// and schema-version (30).
var (
	msgtrkFields2010 = strings.Split("date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,internal-message-id,message-id,recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data", ",")
	msgtrkFields2013 = strings.Split("date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,internal-message-id,message-id,network-message-id,recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data", ",")
	msgtrkFields2016 = append(append([]string(nil), msgtrkFields2013...), "transport-traffic-type", "log-id", "schema-version")
	protocolFields   = strings.Split("date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context", ",")
)

// maxFields bounds the columns of a line.
const maxFields = 64

// splitCSV splits one CSV record into fields, honouring double quotes and
// doubled quotes inside them. Fields without quotes are substrings of line;
// a quoted field with doubled quotes is unescaped into a new string. It
// returns the number of fields (at most len(out)); extra fields are joined
// into the last.
func splitCSV(line string, out []string) int {
	n := 0
	for {
		if n == len(out) {
			return n
		}
		if strings.HasPrefix(line, "\"") {
			// Quoted field.
			i := 1
			escaped := false
			for {
				j := strings.IndexByte(line[i:], '"')
				if j < 0 {
					// Unterminated: take the rest.
					out[n] = line[1:]
					return n + 1
				}
				i += j
				if i+1 < len(line) && line[i+1] == '"' {
					escaped = true
					i += 2
					continue
				}
				break
			}
			field := line[1:i]
			if escaped {
				field = strings.ReplaceAll(field, `""`, `"`)
			}
			out[n] = field
			n++
			rest := line[i+1:]
			if rest == "" {
				return n
			}
			if rest[0] == ',' {
				line = rest[1:]
				if line == "" {
					if n < len(out) {
						out[n] = ""
						n++
					}
					return n
				}
				continue
			}
			// Garbage after the closing quote: keep it with the field.
			c := strings.IndexByte(rest, ',')
			if c < 0 {
				return n
			}
			line = rest[c+1:]
			continue
		}
		c := strings.IndexByte(line, ',')
		if c < 0 {
			out[n] = line
			return n + 1
		}
		out[n] = line[:c]
		n++
		line = line[c+1:]
		if line == "" {
			if n < len(out) {
				out[n] = ""
				n++
			}
			return n
		}
	}
}

// header holds what the '#' lines of a file said.
type header struct {
	fields  []string
	logType string
}

// parseHeader reads one '#' line; it reports whether the line was a header.
func (h *header) parseHeader(line string) bool {
	if !strings.HasPrefix(line, "#") {
		return false
	}
	switch {
	// The header outlives the line: keep copies, not slices of the input.
	case strings.HasPrefix(line, "#Fields:"):
		h.fields = strings.Split(strings.Clone(strings.TrimSpace(line[len("#Fields:"):])), ",")
		for i := range h.fields {
			h.fields[i] = strings.TrimSpace(h.fields[i])
		}
	case strings.HasPrefix(line, "#Log-type:"):
		h.logType = strings.Clone(strings.TrimSpace(line[len("#Log-type:"):]))
	}
	return true
}

// stripBOM removes a UTF-8 byte order mark at the start of a line (the
// first line of a file).
func stripBOM(line string) string { return strings.TrimPrefix(line, "\xef\xbb\xbf") }

// parseTime parses Exchange's UTC stamps: 2024-01-25T15:16:09.843Z.
func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// hostPort splits "10.0.0.6:25" or "[2001:db8::1]:25" or "2001:db8::1:25"
// style endpoints into address and port; an address alone is returned as is.
func hostPort(s string) string {
	if strings.HasPrefix(s, "[") {
		if rb := strings.IndexByte(s, ']'); rb > 0 {
			return s[1:rb]
		}
	}
	c := strings.LastIndexByte(s, ':')
	if c < 0 {
		return s
	}
	if strings.Count(s, ":") > 1 {
		// IPv6 with a port appended without brackets.
		if isDigits(s[c+1:]) && strings.Count(s, ":") > 7 {
			return s[:c]
		}
		return s
	}
	return s[:c]
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// stripZone removes an IPv6 scope id: fe80::1%3.
func stripZone(ip string) string {
	if i := strings.IndexByte(ip, '%'); i >= 0 {
		return ip[:i]
	}
	return ip
}

// customData returns the value of key in custom-data
// ("S:Key=value;S:Other=...").
func customData(cd, key string) string {
	for cd != "" {
		var item string
		if i := strings.IndexByte(cd, ';'); i >= 0 {
			item, cd = cd[:i], cd[i+1:]
		} else {
			item, cd = cd, ""
		}
		item = strings.TrimPrefix(item, "S:")
		if eq := strings.IndexByte(item, '='); eq > 0 && item[:eq] == key {
			return item[eq+1:]
		}
	}
	return ""
}
