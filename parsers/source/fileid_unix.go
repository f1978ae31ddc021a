//go:build !windows

package source

import (
	"os"
	"syscall"
	"time"
)

// fileID returns the device and inode of a file.
func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

// openFlags never block an open: a FIFO opens at once, whether or not a
// writer has it open.
const openFlags = os.O_RDONLY | syscall.O_NONBLOCK

// bornAfter reports whether the file was created after t, where the file
// system tells (statx birth time on Linux); otherwise by its modification
// time.
func bornAfter(path string, fi os.FileInfo, t time.Time) bool {
	if b, ok := birthTime(path); ok {
		return b.After(t)
	}
	return fi.ModTime().After(t)
}
