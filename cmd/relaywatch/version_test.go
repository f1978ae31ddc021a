package main

import "testing"

func TestBuildVersionNamesTheRevisionOnce(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	for _, tc := range []struct{ version, commit, want string }{
		{"v1.2.3", "0123456789abcdef0123456789abcdef01234567", "v1.2.3 (0123456789ab)"},
		{"v0.0.0-20261125101010-0123456789ab", "0123456789abcdef0123456789abcdef01234567", "v0.0.0-20261125101010-0123456789ab"},
		{"v1.2.3", "", "v1.2.3"},
	} {
		version, commit = tc.version, tc.commit
		if got := buildVersion(); got != tc.want && !(tc.commit == "" && len(got) > len(tc.want) && got[:len(tc.want)] == tc.want) {
			t.Errorf("version %q commit %q: %q, want %q", tc.version, tc.commit, got, tc.want)
		}
	}
}
