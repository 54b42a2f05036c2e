// Package keystore keeps an organization's application signing keys in
// its node ("keys held for members"): secp256k1 Ethereum accounts that the
// node signs with for REST sends, on behalf of the clients allowed to use
// them (auth.Identity.Keys). A Store holds the keys; a Signer signs and
// submits transactions with them, one nonce sequence per key.
//
// # Files
//
// DATA/keystore/ holds one file per key version, named ID.vN.json (mode
// 0600, written once and never changed):
//
//	{
//	  "id": "payments",
//	  "version": 2,
//	  "address": "0x…",
//	  "created": "2025-01-02T03:04:05Z",
//	  "key": "-----BEGIN CHARTER ENCRYPTED KEY-----\n…",
//	  "mac": "…"
//	}
//
// key is the project's encrypted key format (identity.EncodeNodeKeyPEM:
// scrypt and AES-256-GCM, the format of node, CA and account key files),
// sealed with the keystore password; every key of a store has the same
// password. mac is an HMAC-SHA256 of id, version, address and created
// under a key derived from the private key, so that a file renamed or
// edited to put a key under another id or version is refused by Open.
//
// The highest version of an id is its current key, the one sends use.
// Rotate writes the next version; the lower ones are retired (since the
// next version was created), kept so that an admin can move their funds
// (Signer.SendRetired; 'charter keys move'), and never used by Send. Retirement is derived from the versions, so
// that no file is ever rewritten: a crash at any instant leaves a key
// either whole or absent (a new file is written to a temporary name,
// synced and linked to its name, which fails if the name exists).
//
// # Secrets
//
// No function of this package returns a private key: keys are decrypted by
// Open and sign inside the package (Signer). Info, List and the CLI show
// metadata only.
package keystore

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/durable"
	"github.com/charter-ledger/charter/internal/identity"
)

// DirName is the keystore's folder in a node's data directory.
const DirName = "keystore"

// Dir is the keystore folder of a node's data directory: DATA/keystore.
func Dir(dataDir string) string { return filepath.Join(dataDir, DirName) }

// Bounds.
const (
	// MaxKeys bounds the key files (all versions) of a store; Open refuses
	// a folder with more, so that start-up work is bounded.
	MaxKeys = 1024
	// MaxFileBytes bounds one key file: a key file is under a kilobyte.
	MaxFileBytes = 16 << 10
	// MaxVersion bounds the rotations of one id.
	MaxVersion = 9999
)

// Errors. Each is wrapped with the id or the file it is about.
var (
	// ErrWrongPassword: the password does not open a key file (or the file
	// was altered: authenticated encryption cannot tell the two apart).
	ErrWrongPassword = identity.ErrWrongPassword
	// ErrPasswordRequired: the store has keys and no password was given.
	ErrPasswordRequired = identity.ErrPasswordRequired
	// ErrBadFile: a file in the keystore folder is not a valid key file.
	ErrBadFile = errors.New("not a valid keystore file")
	// ErrBadID: an id is not a valid key id (see ValidID).
	ErrBadID = errors.New("invalid key id")
	// ErrUnknownKey: no key has the id.
	ErrUnknownKey = errors.New("unknown key")
	// ErrExists: Add of an id (or an imported address) the store holds.
	ErrExists = errors.New("key exists")
)

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// ValidID reports whether id may name a key: 1 to 32 characters, lower
// case letters, digits, '-' and '_', starting with a letter or digit.
// Lower case only, so that two ids never name one file on a
// case-insensitive file system.
func ValidID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w %q: want 1 to 32 of a-z, 0-9, '-' and '_', starting with a letter or digit (e.g. payments)", ErrBadID, id)
	}
	return nil
}

// Info describes one key version: everything about a key but the key.
type Info struct {
	ID      string         `json:"id"`
	Version int            `json:"version"`
	Address common.Address `json:"address"`
	Created time.Time      `json:"created"`
	// Retired is when the next version of the id was created; zero for
	// the current version.
	Retired time.Time `json:"retired,omitzero"`
	// File is the key's file.
	File string `json:"file"`
}

// Current reports whether the version is its id's current one (the one
// sends use).
func (i Info) Current() bool { return i.Retired.IsZero() }

// Options are what Open takes besides the folder and the password.
type Options struct {
	// Now is the clock of the created times; nil means time.Now.
	Now func() time.Time
}

// entry is one decrypted key version.
type entry struct {
	info Info
	key  *ecdsa.PrivateKey
}

// Store is an organization's node-held keys, decrypted. It is safe for
// concurrent use. Keys added by another process (charter keys add while
// the node runs) are seen by the next Open.
type Store struct {
	dir      string
	password []byte
	now      func() time.Time

	mu struct {
		sync.RWMutex
		// byID holds every version of an id in ascending order.
		byID map[string][]*entry
		// addrs is every address of the store, for refusing an import
		// of a key the store holds already.
		addrs map[common.Address]string
	}
}

// String names the store without its secrets.
func (s *Store) String() string { return "keystore " + s.dir }

// GoString is String, so that %#v shows no secret either.
func (s *Store) GoString() string { return s.String() }

// Open reads every key file in dir and decrypts it with password. A
// folder that does not exist is an empty store (Add creates it). The
// first file that cannot be used stops Open with one line naming it: a
// wrong password ("wrong password for keystore file PATH", errors.Is
// ErrWrongPassword), no password (ErrPasswordRequired), a file group or
// others may read (identity.ErrKeyFileMode, with the chmod that fixes it),
// a file that is not a key file or whose metadata do not match its key
// (ErrBadFile). Temporary files of an interrupted Add are ignored; any
// other file is refused, so that a key put there by hand is not silently
// unused.
func Open(dir string, password []byte, opts Options) (*Store, error) {
	s := &Store{dir: dir, password: bytes.Clone(password), now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.mu.byID = make(map[string][]*entry)
	s.mu.addrs = make(map[common.Address]string)
	names, err := readDirNames(dir)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		path := filepath.Join(dir, name)
		id, version, ok := parseFileName(name)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not named ID.vN.json; keys are added with 'charter keys add' (remove or move the file)", ErrBadFile, path)
		}
		e, err := readKeyFile(path, id, version, password)
		if err != nil {
			return nil, err
		}
		if other, dup := s.mu.addrs[e.info.Address]; dup {
			return nil, fmt.Errorf("%w: %s holds the key of %s (address %s) again", ErrBadFile, path, other, e.info.Address.Hex())
		}
		s.mu.addrs[e.info.Address] = fileName(id, version)
		s.mu.byID[id] = append(s.mu.byID[id], e)
	}
	for _, versions := range s.mu.byID {
		slices.SortFunc(versions, func(a, b *entry) int { return a.info.Version - b.info.Version })
		retire(versions)
	}
	return s, nil
}

// retire sets the Retired time of every version but the last, sorted
// ascending: the created time of the next one.
func retire(versions []*entry) {
	for i, e := range versions {
		e.info.Retired = time.Time{}
		if i+1 < len(versions) {
			e.info.Retired = versions[i+1].info.Created
		}
	}
}

// List is every key version of the store, by id and version.
func (s *Store) List() []Info {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Info
	for _, versions := range s.mu.byID {
		for _, e := range versions {
			out = append(out, e.info)
		}
	}
	sortInfos(out)
	return out
}

// Current is the current version of id.
func (s *Store) Current(id string) (Info, bool) {
	e := s.current(id)
	if e == nil {
		return Info{}, false
	}
	return e.info, true
}

// current is the entry sends of id use, or nil.
func (s *Store) current(id string) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	versions := s.mu.byID[id]
	if len(versions) == 0 {
		return nil
	}
	return versions[len(versions)-1]
}

// version is version v of id, or nil.
func (s *Store) version(id string, v int) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, e := range s.mu.byID[id] {
		if e.info.Version == v {
			return e
		}
	}
	return nil
}

// Add generates a key under id, version 1. An id the store holds
// already (current or retired) is refused with ErrExists: a new key of an
// existing id is a rotation.
func (s *Store) Add(id string) (Info, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return Info{}, fmt.Errorf("generate key: %w", err)
	}
	return s.add(id, key, false)
}

// Import adds the key of a key file under id, version 1: a Charter key
// file (PEM, as node and account keys; encrypted or not), 64 hex digits,
// or a go-ethereum keystore (V3 JSON) file. filePassword opens the file
// (nil for an unencrypted one). The file must be readable by its owner
// only, as every key file Charter reads. A key the store holds already
// (under any id) is refused with ErrExists.
func (s *Store) Import(id, path string, filePassword []byte) (Info, error) {
	if err := ValidID(id); err != nil {
		return Info{}, err
	}
	key, err := readImport(path, filePassword)
	if err != nil {
		return Info{}, err
	}
	return s.add(id, key, false)
}

// Rotate makes a new key under id: the next version becomes current and
// the one before is retired. It returns the new version.
func (s *Store) Rotate(id string) (Info, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return Info{}, fmt.Errorf("generate key: %w", err)
	}
	return s.add(id, key, true)
}

// add writes key as the next version of id: version 1 unless rotate, the
// current version + 1 when rotate.
func (s *Store) add(id string, key *ecdsa.PrivateKey, rotate bool) (Info, error) {
	if err := ValidID(id); err != nil {
		return Info{}, err
	}
	if len(s.password) == 0 {
		return Info{}, fmt.Errorf("keystore %s: %w: keys are stored encrypted", s.dir, ErrPasswordRequired)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	versions := s.mu.byID[id]
	version := 1
	switch {
	case rotate && len(versions) == 0:
		return Info{}, fmt.Errorf("%w %q: there is nothing to rotate; add it first", ErrUnknownKey, id)
	case rotate:
		version = versions[len(versions)-1].info.Version + 1
	case len(versions) > 0:
		return Info{}, fmt.Errorf("%w: %q is version %d already; make a new key for it with a rotation", ErrExists, id, versions[len(versions)-1].info.Version)
	}
	if version > MaxVersion {
		return Info{}, fmt.Errorf("key %q: at most %d versions; add a key under a new id", id, MaxVersion)
	}
	if n := len(s.mu.addrs); n >= MaxKeys {
		return Info{}, fmt.Errorf("keystore %s holds %d key files, the most it may", s.dir, n)
	}
	addr := crypto.PubkeyToAddress(key.PublicKey)
	if other, ok := s.mu.addrs[addr]; ok {
		return Info{}, fmt.Errorf("%w: the store holds address %s already (%s)", ErrExists, addr.Hex(), other)
	}
	name := fileName(id, version)
	info := Info{ID: id, Version: version, Address: addr, Created: s.now().UTC().Truncate(time.Second), File: filepath.Join(s.dir, name)}
	data, err := encodeKeyFile(info, key, s.password)
	if err != nil {
		return Info{}, err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return Info{}, fmt.Errorf("create keystore folder: %w", err)
	}
	if err := writeOnce(s.dir, name, data); err != nil {
		return Info{}, err
	}
	e := &entry{info: info, key: key}
	s.mu.addrs[addr] = name
	s.mu.byID[id] = append(versions, e)
	retire(s.mu.byID[id])
	return e.info, nil
}

// ListDir reads the metadata of the key files in dir without decrypting
// them (no password needed): what 'charter keys list' shows. The
// metadata are checked against the keys by Open only.
func ListDir(dir string) ([]Info, error) {
	names, err := readDirNames(dir)
	if err != nil {
		return nil, err
	}
	byID := make(map[string][]*entry)
	for _, name := range names {
		path := filepath.Join(dir, name)
		id, version, ok := parseFileName(name)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not named ID.vN.json; keys are added with 'charter keys add' (remove or move the file)", ErrBadFile, path)
		}
		data, err := identity.ReadPrivateFile(path, MaxFileBytes)
		if err != nil {
			return nil, fileError(path, err)
		}
		f, err := parseKeyFile(data, id, version)
		if err != nil {
			return nil, fileError(path, err)
		}
		byID[id] = append(byID[id], &entry{info: f.info(path)})
	}
	var out []Info
	for _, versions := range byID {
		slices.SortFunc(versions, func(a, b *entry) int { return a.info.Version - b.info.Version })
		retire(versions)
		for _, e := range versions {
			out = append(out, e.info)
		}
	}
	sortInfos(out)
	return out, nil
}

func sortInfos(infos []Info) {
	slices.SortFunc(infos, func(a, b Info) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
}

// ---- files ----

// keyFile is the JSON of a key file.
type keyFile struct {
	ID      string         `json:"id"`
	Version int            `json:"version"`
	Address common.Address `json:"address"`
	Created time.Time      `json:"created"`
	Key     string         `json:"key"`
	MAC     string         `json:"mac"`
}

func (f *keyFile) info(path string) Info {
	return Info{ID: f.ID, Version: f.Version, Address: f.Address, Created: f.Created, File: path}
}

func fileName(id string, version int) string {
	return id + ".v" + strconv.Itoa(version) + ".json"
}

// parseFileName reads ID.vN.json.
func parseFileName(name string) (id string, version int, ok bool) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndex(base, ".v")
	if i < 0 {
		return "", 0, false
	}
	id, num := base[:i], base[i+2:]
	if ValidID(id) != nil || num == "" || num[0] == '0' || len(num) > 4 {
		return "", 0, false
	}
	v, err := strconv.Atoi(num)
	if err != nil || v < 1 || v > MaxVersion {
		return "", 0, false
	}
	return id, v, true
}

// readDirNames lists the key files of dir: every entry but temporary
// files (*.tmp) and hidden ones; none when dir does not exist.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	var names []string
	for {
		// Read in bounded batches so that a folder flooded with files
		// costs MaxKeys entries, not all of them.
		batch, err := f.ReadDir(256)
		for _, d := range batch {
			name := d.Name()
			if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".tmp") {
				continue
			}
			if !d.Type().IsRegular() {
				return nil, fmt.Errorf("%w: %s is not a regular file; remove or move it", ErrBadFile, filepath.Join(dir, name))
			}
			names = append(names, name)
			if len(names) > MaxKeys {
				return nil, fmt.Errorf("keystore %s holds more than %d files, the most a store may", dir, MaxKeys)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("keystore: %w", err)
		}
	}
	slices.Sort(names)
	return names, nil
}

// parseKeyFile decodes a key file's JSON and checks it against the name
// it was read under. It does not decrypt.
func parseKeyFile(data []byte, id string, version int) (*keyFile, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadFile, MaxFileBytes)
	}
	var f keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON document", ErrBadFile)
	}
	switch {
	case f.ID != id || f.Version != version:
		return nil, fmt.Errorf("%w: the file says id %q version %d, its name %q version %d", ErrBadFile, f.ID, f.Version, id, version)
	case f.Address == (common.Address{}):
		return nil, fmt.Errorf("%w: address: required", ErrBadFile)
	case f.Created.IsZero():
		return nil, fmt.Errorf("%w: created: required", ErrBadFile)
	case !strings.HasPrefix(f.Key, "-----BEGIN "+identity.PEMEncryptedKey+"-----"):
		return nil, fmt.Errorf("%w: key: not an encrypted key (a %s PEM block)", ErrBadFile, identity.PEMEncryptedKey)
	case len(f.MAC) != 2*sha256.Size:
		return nil, fmt.Errorf("%w: mac: want %d hex digits", ErrBadFile, 2*sha256.Size)
	}
	return &f, nil
}

// readKeyFile reads, decrypts and checks one key file.
func readKeyFile(path, id string, version int, password []byte) (*entry, error) {
	data, err := identity.ReadPrivateFile(path, MaxFileBytes)
	if err != nil {
		return nil, fileError(path, err)
	}
	f, err := parseKeyFile(data, id, version)
	if err != nil {
		return nil, fileError(path, err)
	}
	if len(password) == 0 {
		return nil, fmt.Errorf("keystore file %s is encrypted: %w", path, ErrPasswordRequired)
	}
	key, err := identity.DecodeNodeKeyPEM([]byte(f.Key), password)
	if err != nil {
		return nil, fileError(path, err)
	}
	if got := crypto.PubkeyToAddress(key.PublicKey); got != f.Address {
		return nil, fmt.Errorf("%w: %s: its key is address %s, the file says %s", ErrBadFile, path, got.Hex(), f.Address.Hex())
	}
	want, _ := hex.DecodeString(f.MAC)
	if !hmac.Equal(want, metadataMAC(key, f.ID, f.Version, f.Address, f.Created)) {
		return nil, fmt.Errorf("%w: %s: its id, version or created time were changed after it was written", ErrBadFile, path)
	}
	return &entry{info: f.info(path), key: key}, nil
}

func fileError(path string, err error) error {
	switch {
	case errors.Is(err, ErrWrongPassword):
		return fmt.Errorf("%w for keystore file %s", ErrWrongPassword, path)
	case errors.Is(err, identity.ErrKeyFileMode):
		return err // names the file and the chmod already
	}
	return fmt.Errorf("keystore file %s: %w", path, err)
}

// encodeKeyFile is the content of a new key file.
func encodeKeyFile(info Info, key *ecdsa.PrivateKey, password []byte) ([]byte, error) {
	sealed, err := identity.EncodeNodeKeyPEM(key, password)
	if err != nil {
		return nil, err
	}
	f := keyFile{ID: info.ID, Version: info.Version, Address: info.Address, Created: info.Created,
		Key: string(sealed), MAC: hex.EncodeToString(metadataMAC(key, info.ID, info.Version, info.Address, info.Created))}
	data, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// metadataMAC binds a key file's metadata to its key: HMAC-SHA256 keyed
// with the private key's scalar, so only the key's holder can make it.
func metadataMAC(key *ecdsa.PrivateKey, id string, version int, addr common.Address, created time.Time) []byte {
	raw := crypto.FromECDSA(key)
	defer clear(raw)
	m := hmac.New(sha256.New, raw)
	fmt.Fprintf(m, "charter keystore v1\n%s\n%d\n%s\n%s", id, version, addr.Hex(), created.UTC().Format(time.RFC3339Nano))
	return m.Sum(nil)
}

// writeOnce creates dir/name with data, durably, failing if it exists: a
// temporary file is written and synced, then hard-linked to name (which
// fails if name exists, even when another process races), then the folder
// is synced. A crash leaves the key whole or absent, and at most a
// temporary file that Open ignores.
func writeOnce(dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+name+"."+hex.EncodeToString(suffix[:])+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s exists already (another 'charter keys' at the same time?)", ErrExists, path)
		}
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := (durable.OSFS{}).SyncDir(dir); err != nil {
		return fmt.Errorf("write key file %s: sync folder: %w", path, err)
	}
	return nil
}
