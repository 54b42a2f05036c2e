package issuer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/gofrs/flock"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/durable"
	"github.com/charter-ledger/charter/internal/system"
)

// Where the issuer keeps its files, under a node's data directory.
const (
	// AccessDir is the folder of the access files: DATA/access.
	AccessDir = "access"
	// ClientsFile holds the registered clients (secrets hashed), 0600.
	ClientsFile = "clients.json"
	// KeysFile holds the issuer's signing keys, 0600.
	KeysFile = "issuer-keys.json"
)

// Bounds of the clients file. A node reads it whole on every change, so
// it stays small.
const (
	MaxClients          = 10000
	MaxClientsFileBytes = 4 << 20
	// MaxClientKeys bounds the node-held keys one client may use.
	MaxClientKeys = 32
	// MaxIDBytes bounds a client id, MaxNameBytes an organization or
	// client name, MaxSecretBytes a client secret as presented.
	MaxIDBytes     = 128
	MaxNameBytes   = 64
	MaxSecretBytes = 256
)

// ClientsPath is DATA/access/clients.json.
func ClientsPath(dataDir string) string { return filepath.Join(dataDir, AccessDir, ClientsFile) }

// KeysPath is DATA/access/issuer-keys.json.
func KeysPath(dataDir string) string { return filepath.Join(dataDir, AccessDir, KeysFile) }

// Client is one registered client of the built-in issuer: an application
// of an organization that gets tokens with its id and secret (the OAuth2
// client-credentials grant).
type Client struct {
	// ID is random, made of the organization's and the client's names:
	// "org1-app-3f9c0a7e12d4b865".
	ID   string
	Org  string
	Name string
	// Roles are the most its tokens grant; a token request may narrow them.
	Roles system.Role
	// Keys are the ids of the node-held signing keys the client may use.
	Keys []string
	// SecretHash is the secret's argon2id hash in PHC form; the secret
	// itself is shown once, when the client is added.
	SecretHash string
	Created    time.Time
	// Revoked is when the client was revoked; zero while it is active.
	Revoked time.Time
}

// Active reports whether the client may get and use tokens.
func (c *Client) Active() bool { return c.Revoked.IsZero() }

// clientRecord is a Client as clients.json holds it.
type clientRecord struct {
	ID         string    `json:"id"`
	Org        string    `json:"org"`
	Name       string    `json:"name"`
	Roles      []string  `json:"roles"`
	Keys       []string  `json:"keys,omitempty"`
	SecretHash string    `json:"secretHash"`
	Created    time.Time `json:"created"`
	Revoked    time.Time `json:"revoked,omitzero"`
}

type clientsDoc struct {
	Version int            `json:"version"`
	Clients []clientRecord `json:"clients"`
}

const clientsVersion = 1

// NewClient is what AddClient registers.
type NewClient struct {
	Org   string
	Name  string
	Roles system.Role
	Keys  []string
}

// AddClient registers a client in the clients file at path (created 0600,
// its folder 0700, when missing) and returns it with its secret, which is
// stored only as a hash: the caller shows it once. The file is replaced
// atomically under a lock, so concurrent commands do not lose each
// other's changes.
func AddClient(path string, nc NewClient, now time.Time) (Client, string, error) {
	if err := checkName("org", nc.Org); err != nil {
		return Client{}, "", err
	}
	if err := checkName("name", nc.Name); err != nil {
		return Client{}, "", err
	}
	if nc.Roles == 0 {
		return Client{}, "", errors.New("roles: give at least one of read, write, deploy, admin, auditor")
	}
	if known, _ := system.ParseRoles(nc.Roles.Names()); known != nc.Roles {
		return Client{}, "", fmt.Errorf("roles: %#x holds bits that are no role", uint32(nc.Roles))
	}
	if err := checkKeys(nc.Keys); err != nil {
		return Client{}, "", err
	}
	secret, err := newSecret()
	if err != nil {
		return Client{}, "", err
	}
	hash, err := hashSecret(secret, defaultHashParams)
	if err != nil {
		return Client{}, "", err
	}
	var added Client
	err = updateClients(path, func(cs []Client) ([]Client, error) {
		if len(cs) >= MaxClients {
			return nil, fmt.Errorf("%s holds %d clients, the most a node serves (revoked ones count too)", path, len(cs))
		}
		id, err := newClientID(nc.Org, nc.Name)
		if err != nil {
			return nil, err
		}
		added = Client{ID: id, Org: nc.Org, Name: nc.Name, Roles: nc.Roles, Keys: slices.Clone(nc.Keys),
			SecretHash: hash, Created: now.UTC().Truncate(time.Second)}
		return append(cs, added), nil
	})
	if err != nil {
		return Client{}, "", err
	}
	return added, secret, nil
}

// ListClients returns the clients of the file at path in the order they
// were added; none when the file does not exist.
func ListClients(path string) ([]Client, error) {
	return readClients(path)
}

// RevokeClient marks client id revoked at now. A running node refuses its
// token requests and its tokens within a second (Store rereads the file).
// It returns the client and whether it changed (false: revoked before).
func RevokeClient(path, id string, now time.Time) (Client, bool, error) {
	var out Client
	changed := false
	err := updateClients(path, func(cs []Client) ([]Client, error) {
		i := slices.IndexFunc(cs, func(c Client) bool { return c.ID == id })
		if i < 0 {
			return nil, fmt.Errorf("no client %q in %s", id, path)
		}
		if cs[i].Active() {
			cs[i].Revoked = now.UTC().Truncate(time.Second)
			changed = true
		}
		out = cs[i]
		return cs, nil
	})
	return out, changed, err
}

// lockTimeout bounds how long a command waits for another one that is
// changing the clients file.
const lockTimeout = 10 * time.Second

// updateClients reads the clients file, lets change edit the list and
// writes it back atomically, under an exclusive lock on path+".lock".
func updateClients(path string, change func([]Client) ([]Client, error)) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	lock := flock.New(path+".lock", flock.SetPermissions(0o600))
	ctx, cancel := context.WithTimeout(context.Background(), lockTimeout)
	defer cancel()
	ok, err := lock.TryLockContext(ctx, 50*time.Millisecond)
	if err != nil || !ok {
		return fmt.Errorf("lock %s.lock: another command is changing the clients (%v); try again", path, err)
	}
	defer lock.Unlock()
	cs, err := readClients(path)
	if err != nil {
		return err
	}
	if cs, err = change(cs); err != nil {
		return err
	}
	data, err := encodeClients(cs)
	if err != nil {
		return err
	}
	if len(data) > MaxClientsFileBytes {
		return fmt.Errorf("%s would grow to %d bytes, more than %d", path, len(data), MaxClientsFileBytes)
	}
	return durable.WriteFile(durable.OSFS{}, path, data, 0o600)
}

func encodeClients(cs []Client) ([]byte, error) {
	doc := clientsDoc{Version: clientsVersion, Clients: make([]clientRecord, len(cs))}
	for i, c := range cs {
		doc.Clients[i] = clientRecord{ID: c.ID, Org: c.Org, Name: c.Name, Roles: c.Roles.Names(), Keys: c.Keys,
			SecretHash: c.SecretHash, Created: c.Created, Revoked: c.Revoked}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// readClients reads and checks the clients file; a missing file holds no
// clients.
func readClients(path string) ([]Client, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return readClientsFrom(path, f, info)
}

// readClientsFrom reads an open clients file whose fstat said info, so
// that the content and the file's identity belong together.
func readClientsFrom(path string, f io.Reader, info os.FileInfo) ([]Client, error) {
	if info.Size() > MaxClientsFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than %d; revoked clients may be removed from it", path, info.Size(), MaxClientsFileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxClientsFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	cs, err := decodeClients(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cs, nil
}

// decodeClients parses and checks a clients file's content. Unknown
// fields are an error; errors name the entry and the field.
func decodeClients(data []byte) ([]Client, error) {
	if len(data) > MaxClientsFileBytes {
		return nil, fmt.Errorf("%d bytes, more than %d", len(data), MaxClientsFileBytes)
	}
	var doc clientsDoc
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON document")
	}
	if doc.Version != clientsVersion {
		return nil, fmt.Errorf("version: %d, want %d", doc.Version, clientsVersion)
	}
	if len(doc.Clients) > MaxClients {
		return nil, fmt.Errorf("%d clients, more than %d", len(doc.Clients), MaxClients)
	}
	out := make([]Client, 0, len(doc.Clients))
	seen := make(map[string]bool, len(doc.Clients))
	for i, r := range doc.Clients {
		c, err := r.client()
		if err != nil {
			return nil, fmt.Errorf("clients[%d].%w", i, err)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("clients[%d].id: %q appears twice", i, c.ID)
		}
		seen[c.ID] = true
		out = append(out, c)
	}
	return out, nil
}

func (r clientRecord) client() (Client, error) {
	if err := checkID(r.ID); err != nil {
		return Client{}, fmt.Errorf("id: %w", err)
	}
	if err := checkName("org", r.Org); err != nil {
		return Client{}, err
	}
	if err := checkName("name", r.Name); err != nil {
		return Client{}, err
	}
	roles, err := system.ParseRoles(r.Roles)
	if err != nil {
		return Client{}, fmt.Errorf("roles: %w", err)
	}
	if err := checkKeys(r.Keys); err != nil {
		return Client{}, err
	}
	if _, err := parseHash(r.SecretHash); err != nil {
		return Client{}, fmt.Errorf("secretHash: %w", err)
	}
	return Client{ID: r.ID, Org: r.Org, Name: r.Name, Roles: roles, Keys: r.Keys,
		SecretHash: r.SecretHash, Created: r.Created, Revoked: r.Revoked}, nil
}

// checkName accepts an organization or client name: 1 to MaxNameBytes
// printable characters without spaces.
func checkName(field, s string) error {
	if s == "" || len(s) > MaxNameBytes {
		return fmt.Errorf("%s: %d bytes, want 1 to %d", field, len(s), MaxNameBytes)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || r == ',' {
			return fmt.Errorf("%s %q: only printable characters without spaces or commas", field, s)
		}
	}
	return nil
}

// checkID accepts a client id as newClientID makes them: 1 to MaxIDBytes
// of a-z, 0-9, '-', '.', '_'.
func checkID(s string) error {
	if s == "" || len(s) > MaxIDBytes {
		return fmt.Errorf("%d bytes, want 1 to %d", len(s), MaxIDBytes)
	}
	for i := 0; i < len(s); i++ {
		if !idChar(s[i]) {
			return fmt.Errorf("%q: only a-z, 0-9, '-', '.' and '_'", s)
		}
	}
	return nil
}

func idChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '.' || b == '_'
}

func checkKeys(keys []string) error {
	if len(keys) > MaxClientKeys {
		return fmt.Errorf("keys: %d, at most %d", len(keys), MaxClientKeys)
	}
	for i, k := range keys {
		if err := checkName(fmt.Sprintf("keys[%d]", i), k); err != nil {
			return err
		}
		if slices.Contains(keys[:i], k) {
			return fmt.Errorf("keys[%d]: %q appears twice", i, k)
		}
	}
	return nil
}

// newClientID makes "ORG-NAME-RANDOM": the names folded to a-z, 0-9 and
// '-', 8 random bytes in hex.
func newClientID(org, name string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return idPart(org) + "-" + idPart(name) + "-" + hex.EncodeToString(b[:]), nil
}

func idPart(s string) string {
	var sb strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r < 128 && idChar(byte(r)) && r != '-' {
			sb.WriteRune(r)
			dash = false
		} else if !dash && sb.Len() > 0 {
			sb.WriteByte('-')
			dash = true
		}
		if sb.Len() >= 32 {
			break
		}
	}
	out := strings.Trim(sb.String(), "-")
	if out == "" {
		return "x"
	}
	return out
}

// ReloadInterval is how often a Store looks at its file: at most once per
// interval, on use.
const ReloadInterval = time.Second

// Store is the clients file as a running node sees it: read at open, and
// reread when the file changes (a cheap stat, at most once per
// ReloadInterval, on use), so that `charter client revoke` takes effect
// within a second. A file that cannot be read or is invalid refuses every
// client until it is fixed (it is logged once per change): a revocation
// is never lost to a damaged file. Safe for concurrent use.
type Store struct {
	path   string
	clock  func() time.Time
	logger *slog.Logger

	mu struct {
		sync.Mutex
		checked time.Time   // last look at the file
		info    os.FileInfo // of the content below; nil: no file
		clients map[string]Client
		err     error // the file's fault; clients is empty while set
	}
}

// OpenStore reads the clients file at path (a missing file is no
// clients). An invalid file is an error at open, naming the file and the
// entry.
func OpenStore(path string, clock func() time.Time, logger *slog.Logger) (*Store, error) {
	if clock == nil {
		clock = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{path: path, clock: clock, logger: logger}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.checked = clock()
	if err := s.loadLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// Lookup returns client id as the file says now. Its error wraps
// auth.ErrUnknownClient when the file has no such client; another error
// says what is wrong with the file.
func (s *Store) Lookup(id string) (Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	if d := now.Sub(s.mu.checked); d >= ReloadInterval || d < 0 {
		s.mu.checked = now
		if s.changedLocked() {
			if err := s.loadLocked(); err != nil {
				s.logger.Error("The clients file is unreadable: every client is refused until it is fixed", "file", s.path, "err", err)
			} else {
				s.logger.Info("Clients file reread", "file", s.path, "clients", len(s.mu.clients))
			}
		}
	}
	if s.mu.err != nil {
		return Client{}, s.mu.err
	}
	c, ok := s.mu.clients[id]
	if !ok {
		return Client{}, fmt.Errorf("client %q: %w", truncate(id), auth.ErrUnknownClient)
	}
	c.Keys = slices.Clone(c.Keys)
	return c, nil
}

// changedLocked reports whether the file differs from the one loaded:
// another file (the CLI renames a new one over it), another size or
// modification time, or it appeared or went away.
func (s *Store) changedLocked() bool {
	info, err := os.Stat(s.path)
	if err != nil {
		return s.mu.info != nil || s.mu.err != nil
	}
	old := s.mu.info
	return old == nil || !os.SameFile(old, info) || old.Size() != info.Size() || !old.ModTime().Equal(info.ModTime())
}

// loadLocked reads the file into the store; on error the store refuses
// every client. The file's identity is kept either way, so that a broken
// file is read (and logged) again only once it changes.
func (s *Store) loadLocked() error {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.mu.info, s.mu.clients, s.mu.err = nil, map[string]Client{}, nil
		return nil
	}
	var cs []Client
	var info os.FileInfo
	if err == nil {
		if info, err = f.Stat(); err == nil {
			cs, err = readClientsFrom(s.path, f, info)
		}
		f.Close()
	} else {
		info, _ = os.Stat(s.path)
	}
	if err != nil {
		s.mu.info, s.mu.clients = info, map[string]Client{}
		s.mu.err = fmt.Errorf("clients file unreadable: %w", err)
		return s.mu.err
	}
	m := make(map[string]Client, len(cs))
	for _, c := range cs {
		m[c.ID] = c
	}
	s.mu.info, s.mu.clients, s.mu.err = info, m, nil
	return nil
}

// truncate shortens a string from outside for a message or a log line.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
