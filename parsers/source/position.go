package source

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Identity tells whether a file is the same file as before: device, inode,
// and a hash of its first bytes (inode numbers are reused, and a copy made
// by copytruncate has another inode but the same first bytes).
type Identity struct {
	Dev         uint64 `json:"dev"`
	Inode       uint64 `json:"inode"`
	Fingerprint string `json:"fingerprint"`
	// FingerprintLen is how many bytes the fingerprint covers: a file
	// shorter than fingerprintSize when it was taken is re-hashed over as
	// many bytes when compared.
	FingerprintLen int `json:"fingerprint_len"`
}

// fingerprintSize is how many leading bytes identify a file.
const fingerprintSize = 256

// IdentityOf reads the identity of the file at path and its size.
func IdentityOf(path string) (Identity, int64, error) {
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return Identity{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Identity{}, 0, err
	}
	id, err := identityOfFile(f, fi)
	return id, fi.Size(), err
}

// identityOfFile reads the identity of an open file without moving its
// offset.
func identityOfFile(f *os.File, fi os.FileInfo) (Identity, error) {
	dev, ino := fileID(fi)
	id := Identity{Dev: dev, Inode: ino}
	if !fi.Mode().IsRegular() {
		return id, nil
	}
	buf := make([]byte, fingerprintSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return id, fmt.Errorf("fingerprint %s: %w", f.Name(), err)
	}
	id.Fingerprint, id.FingerprintLen = fingerprint(buf[:n]), n
	return id, nil
}

func fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// startsFile reports whether the open file starts with the bytes the
// fingerprint covers.
func (id Identity) startsFile(f *os.File) bool {
	if id.FingerprintLen == 0 {
		return true // taken from an empty file: nothing to compare
	}
	buf := make([]byte, id.FingerprintLen)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return false
	}
	return fingerprint(buf) == id.Fingerprint
}

// extend returns the identity over more of the file's first bytes (up to
// fingerprintSize), provided they still start with the bytes id covers: one
// read, so that a truncation meanwhile cannot slip a new file's bytes into
// an old identity.
func (id Identity) extend(f *os.File) (Identity, bool) {
	buf := make([]byte, fingerprintSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return id, false
	}
	if n < id.FingerprintLen || (id.FingerprintLen > 0 && fingerprint(buf[:id.FingerprintLen]) != id.Fingerprint) {
		return id, false
	}
	out := id
	out.Fingerprint, out.FingerprintLen = fingerprint(buf[:n]), n
	return out, true
}

// sameFirstBytes reports whether the file at path starts with the bytes
// id's fingerprint covers.
func sameFirstBytes(path string, id Identity) bool {
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return id.startsFile(f)
}

// Same reports whether the file at path is the file id was taken from.
func (id Identity) Same(path string) bool {
	f, err := os.OpenFile(path, openFlags, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	dev, ino := fileID(fi)
	return dev == id.Dev && ino == id.Inode && id.startsFile(f)
}

// Position says how far a file was handed downstream: the file's identity
// and the offset just after the last line handed over.
type Position struct {
	Identity Identity `json:"identity"`
	Offset   int64    `json:"offset"`
}

// Positions are the positions of followed paths. The consumer advances a
// path's position only after it has handled a batch's lines, so a restart
// neither skips nor repeats a line.
type Positions map[string]Position

// Advance records that b's lines were handled; a batch without a position
// (stdin, journald) changes nothing, and a Closed batch forgets its input.
func (p Positions) Advance(b *Batch) {
	switch {
	case b.Closed:
		delete(p, b.Input)
	case b.Positioned:
		p[b.Input] = Position{Identity: b.File, Offset: b.End}
	}
}

// Clone returns a copy, for saving outside the consumer's lock.
func (p Positions) Clone() Positions {
	out := make(Positions, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

// LoadPositions reads a positions file; a missing file gives no positions
// and ok false (a first start).
func LoadPositions(path string) (p Positions, ok bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Positions{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("positions: %w", err)
	}
	p = Positions{}
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, false, fmt.Errorf("positions %s: %w", path, err)
	}
	return p, true, nil
}

// Save writes the positions atomically (a temporary file, fsync, rename):
// a crash leaves the old file or the new one, never a mix.
func (p Positions) Save(path string) error {
	data, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(data, '\n'))
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsynced and renamed into place; on failure the temporary file
// is removed and the old file is left as it was.
func WriteFileAtomic(path string, data []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
