//go:build !linux && !windows

package source

import "time"

// birthTime is not known on this system.
func birthTime(string) (time.Time, bool) { return time.Time{}, false }
