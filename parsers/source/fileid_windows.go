//go:build windows

package source

import (
	"os"
	"syscall"
	"time"
)

// fileID is not available from os.FileInfo on Windows; identity there
// rests on the fingerprint of the first bytes (Exchange never reuses a
// tracking log's name).
func fileID(os.FileInfo) (dev, ino uint64) { return 0, 0 }

// openFlags opens files for reading.
const openFlags = os.O_RDONLY

// bornAfter reports whether the file was created after t, by its creation
// time where Windows keeps one.
func bornAfter(_ string, fi os.FileInfo, t time.Time) bool {
	if d, ok := fi.Sys().(*syscall.Win32FileAttributeData); ok {
		return time.Unix(0, d.CreationTime.Nanoseconds()).After(t)
	}
	return fi.ModTime().After(t)
}
