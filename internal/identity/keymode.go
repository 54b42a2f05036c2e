package identity

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// ErrKeyFileMode: a private key file may be read or written by users
// other than its owner. Every key file this package reads (node keys,
// TLS and CA keys, account keys) is refused so, as OpenSSH refuses an
// unprotected private key: a key others could read is a key others may
// hold.
var ErrKeyFileMode = errors.New("readable by group or others")

// MaxKeyFileBytes bounds what is read of a key file: every key file is a
// few hundred bytes; a larger one is not a key file.
const MaxKeyFileBytes = 64 << 10

// ReadPrivateFile reads a file of at most maxBytes that holds secrets (a
// key file, a list of account keys), refusing one that group or others
// may access: the error names the file and the fix (chmod 600 FILE) and
// wraps ErrKeyFileMode. The mode is checked on the open file, so the file
// checked is the file read. On Windows, where modes do not express
// access, it only reads.
func ReadPrivateFile(path string, maxBytes int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkPrivateMode(path, st); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(maxBytes)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadKeyFile, path, maxBytes)
	}
	return data, nil
}

// checkPrivateMode refuses a file whose mode grants group or others any
// access.
func checkPrivateMode(path string, st fs.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("key file %s is %w (mode %#o); run chmod 600 %s", path, ErrKeyFileMode, perm, path)
	}
	return nil
}
