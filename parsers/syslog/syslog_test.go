package syslog

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	utc := time.UTC
	plus1 := time.FixedZone("", 3600)
	tests := []struct {
		name string
		line string
		want Header
		ok   bool
	}{
		{
			name: "rfc3164",
			line: "Nov 24 05:58:48 mail postfix/smtpd[2758]: connect from unknown[127.0.0.66]",
			want: Header{Time: time.Date(2026, 11, 24, 5, 58, 48, 0, utc), YearGuessed: true, Host: "mail", Program: "postfix/smtpd", PID: "2758", Message: "connect from unknown[127.0.0.66]"},
			ok:   true,
		},
		{
			name: "rfc3164 space-padded day",
			line: "May  8 08:26:55 mail postfix/postscreen[22055]: PASS NEW [1.2.3.4]:5678",
			want: Header{Time: time.Date(2026, 5, 8, 8, 26, 55, 0, utc), YearGuessed: true, Host: "mail", Program: "postfix/postscreen", PID: "22055", Message: "PASS NEW [1.2.3.4]:5678"},
			ok:   true,
		},
		{
			name: "rfc3164 unpadded day",
			line: "May 8 08:26:55 mail postfix/qmgr[1]: 1234567890: removed",
			want: Header{Time: time.Date(2026, 5, 8, 8, 26, 55, 0, utc), YearGuessed: true, Host: "mail", Program: "postfix/qmgr", PID: "1", Message: "1234567890: removed"},
			ok:   true,
		},
		{
			name: "rfc3164 without pid",
			line: "Jan 02 03:04:05 host postfix/postlog: warning: something",
			want: Header{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, utc), YearGuessed: true, Host: "host", Program: "postfix/postlog", Message: "warning: something"},
			ok:   true,
		},
		{
			name: "solaris message id",
			line: "Jan 02 03:04:05 host sendmail[12]: [ID 801593 mail.info] hello",
			want: Header{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, utc), YearGuessed: true, Host: "host", Program: "sendmail", PID: "12", Message: "hello"},
			ok:   true,
		},
		{
			name: "rsyslog precise with offset",
			line: "2023-03-14T00:00:31.185246+01:00 helga postfix/postscreen[3163107]: PASS OLD [185.48.118.128]:36942",
			want: Header{Time: time.Date(2023, 3, 14, 0, 0, 31, 185246000, plus1), Host: "helga", Program: "postfix/postscreen", PID: "3163107", Message: "PASS OLD [185.48.118.128]:36942"},
			ok:   true,
		},
		{
			name: "rfc3339 zulu",
			line: "2024-08-25T12:31:56Z machine postfix/smtpd[3887453]: lost connection after AUTH from unknown[1.2.3.4]",
			want: Header{Time: time.Date(2024, 8, 25, 12, 31, 56, 0, utc), Host: "machine", Program: "postfix/smtpd", PID: "3887453", Message: "lost connection after AUTH from unknown[1.2.3.4]"},
			ok:   true,
		},
		{
			name: "journalctl short-iso offset without colon",
			line: "2026-11-24T05:58:48+0100 mail postfix/smtpd[1]: connect from x[1.2.3.4]",
			want: Header{Time: time.Date(2026, 11, 24, 5, 58, 48, 0, plus1), Host: "mail", Program: "postfix/smtpd", PID: "1", Message: "connect from x[1.2.3.4]"},
			ok:   true,
		},
		{
			name: "rfc5424",
			line: "<22>1 2026-11-24T05:58:48.123Z mail.example.org postfix/smtpd 4242 - - connect from x[1.2.3.4]",
			want: Header{Time: time.Date(2026, 11, 24, 5, 58, 48, 123000000, utc), Host: "mail.example.org", Program: "postfix/smtpd", PID: "4242", Message: "connect from x[1.2.3.4]"},
			ok:   true,
		},
		{
			name: "rfc5424 with structured data and BOM",
			line: "<22>1 2026-11-24T05:58:48Z mail postfix/qmgr - - [meta seq=\"1\" x=\"a\\]b\"] \xef\xbb\xbfABC: removed",
			want: Header{Time: time.Date(2026, 11, 24, 5, 58, 48, 0, utc), Host: "mail", Program: "postfix/qmgr", Message: "ABC: removed"},
			ok:   true,
		},
		{name: "no header", line: "warning: unknown[1.2.3.4]: SASL LOGIN authentication failed: x", ok: false},
		{name: "bad month", line: "Foo 24 05:58:48 mail postfix/smtpd[1]: x", ok: false},
		{name: "bad hour", line: "Nov 24 25:58:48 mail postfix/smtpd[1]: x", ok: false},
		{name: "no tag", line: "Nov 24 05:58:48 mail", ok: false},
		{name: "short", line: "Nov 24", ok: false},
		{name: "bad iso", line: "2026-13-24T05:58:48Z mail postfix/smtpd[1]: x", ok: false},
		{name: "iso without offset", line: "2026-11-24T05:58:48 mail postfix/smtpd[1]: x", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewParser(2026, time.UTC)
			var h Header
			ok := p.Parse(tt.line, &h)
			if ok != tt.ok {
				t.Fatalf("Parse ok = %v, want %v (header %+v)", ok, tt.ok, h)
			}
			if !ok {
				return
			}
			if !h.Time.Equal(tt.want.Time) {
				t.Errorf("time = %v, want %v", h.Time, tt.want.Time)
			}
			_, gotOff := h.Time.Zone()
			_, wantOff := tt.want.Time.Zone()
			if gotOff != wantOff {
				t.Errorf("offset = %d, want %d", gotOff, wantOff)
			}
			h.Time, tt.want.Time = time.Time{}, time.Time{}
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("header mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCachedStampsStayCorrect(t *testing.T) {
	p := NewParser(2026, time.UTC)
	var h Header
	lines := []string{
		"2023-03-14T00:00:31.100000+01:00 h p[1]: a",
		"2023-03-14T00:00:31.200000+01:00 h p[1]: b",
		"2023-03-14T00:00:31.200000+02:00 h p[1]: c",
		"Nov 24 05:58:48 h p[1]: d",
		"Nov 24 05:58:48 h p[1]: e",
		"Nov 24 05:58:49 h p[1]: f",
	}
	want := []time.Time{
		time.Date(2023, 3, 13, 23, 0, 31, 100000000, time.UTC),
		time.Date(2023, 3, 13, 23, 0, 31, 200000000, time.UTC),
		time.Date(2023, 3, 13, 22, 0, 31, 200000000, time.UTC),
		time.Date(2026, 11, 24, 5, 58, 48, 0, time.UTC),
		time.Date(2026, 11, 24, 5, 58, 48, 0, time.UTC),
		time.Date(2026, 11, 24, 5, 58, 49, 0, time.UTC),
	}
	for i, l := range lines {
		if !p.Parse(l, &h) {
			t.Fatalf("line %d did not parse", i)
		}
		if !h.Time.Equal(want[i]) {
			t.Errorf("line %d: time %v, want %v", i, h.Time.UTC(), want[i])
		}
	}
}

func TestYearTracker(t *testing.T) {
	d := func(y int, m time.Month, day int) time.Time { return time.Date(y, m, day, 12, 0, 0, 0, time.UTC) }
	tests := []struct {
		name     string
		explicit bool
		modTime  time.Time
		in       []time.Time // with the provisional year
		want     []time.Time
	}{
		{
			name:    "same year as modification",
			modTime: d(2026, 11, 24),
			in:      []time.Time{d(2026, 11, 1), d(2026, 11, 24)},
			want:    []time.Time{d(2026, 11, 1), d(2026, 11, 24)},
		},
		{
			name:    "december to january, modified in january",
			modTime: d(2027, 1, 3),
			in:      []time.Time{d(2027, 12, 30), d(2027, 12, 31), d(2027, 1, 1), d(2027, 1, 2)},
			want:    []time.Time{d(2026, 12, 30), d(2026, 12, 31), d(2027, 1, 1), d(2027, 1, 2)},
		},
		{
			name:     "explicit year is the first line's year",
			explicit: true,
			modTime:  d(2030, 6, 1),
			in:       []time.Time{d(2024, 12, 31), d(2024, 1, 1)},
			want:     []time.Time{d(2024, 12, 31), d(2025, 1, 1)},
		},
		{
			name:    "a line slightly out of order around new year",
			modTime: d(2027, 1, 3),
			in:      []time.Time{d(2027, 12, 31), d(2027, 1, 1), d(2027, 12, 31), d(2027, 1, 1)},
			want:    []time.Time{d(2026, 12, 31), d(2027, 1, 1), d(2026, 12, 31), d(2027, 1, 1)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := NewYearTracker(tt.explicit, tt.modTime)
			for i, in := range tt.in {
				if got := y.Fix(in); !got.Equal(tt.want[i]) {
					t.Errorf("line %d: %v, want %v", i, got, tt.want[i])
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Nov 24 05:58:48 mail postfix/smtpd[2758]: connect from unknown[127.0.0.66]",
		"May 8 08:26:55 mail postfix/qmgr[1]: 1234567890: removed",
		"2023-03-14T00:00:31.185246+01:00 helga postfix/postscreen[3163107]: PASS OLD",
		"<22>1 2026-11-24T05:58:48Z mail postfix/qmgr - - [meta seq=\"1\"] ABC: removed",
		"2026-11-24T05:58:48+0100 mail postfix/smtpd[1]: x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		p := NewParser(2026, time.UTC)
		var h Header
		if p.Parse(line, &h) {
			if len(h.Message) > len(line) || len(h.Program) > len(line) {
				t.Fatalf("fields longer than the line: %+v", h)
			}
		}
	})
}
