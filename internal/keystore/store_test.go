package keystore

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gethkeystore "github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/identity"
)

var testPassword = []byte("correct horse battery staple")

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func openT(t *testing.T, dir string, pw []byte, c *clock) *Store {
	t.Helper()
	if c == nil {
		c = newClock()
	}
	s, err := Open(dir, pw, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyHex is the private key of an entry in hex, what must never leave
// the package.
func keyHex(e *entry) string { return hex.EncodeToString(crypto.FromECDSA(e.key)) }

// signsAs checks that the store's current key of id signs as addr.
func signsAs(t *testing.T, s *Store, id string, want Info) {
	t.Helper()
	e := s.current(id)
	if e == nil {
		t.Fatalf("no current key %q", id)
	}
	if e.info.Address != want.Address || e.info.Version != want.Version {
		t.Fatalf("current %q is %s v%d, want %s v%d", id, e.info.Address, e.info.Version, want.Address, want.Version)
	}
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	tx, err := types.SignNewTx(e.key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: 21000, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(0)})
	if err != nil {
		t.Fatal(err)
	}
	if from, err := types.Sender(signer, tx); err != nil || from != want.Address {
		t.Fatalf("signed as %s (%v), want %s", from, err, want.Address)
	}
}

// TestAddOpenRoundTrip: a key added is written encrypted to
// DIR/ID.v1.json (0600, folder 0700), and a store opened with the
// password holds the same key.
func TestAddOpenRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keystore")
	c := newClock()
	s := openT(t, dir, testPassword, c)
	if got := s.List(); len(got) != 0 {
		t.Fatalf("a folder that does not exist lists %v", got)
	}
	info, err := s.Add("payments")
	if err != nil {
		t.Fatal(err)
	}
	want := Info{ID: "payments", Version: 1, Address: info.Address, Created: c.t, File: filepath.Join(dir, "payments.v1.json")}
	if info != want {
		t.Fatalf("Add = %+v, want %+v", info, want)
	}
	data, err := os.ReadFile(info.File)
	if err != nil {
		t.Fatal(err)
	}
	if secret := keyHex(s.current("payments")); bytes.Contains(bytes.ToLower(data), []byte(secret)) {
		t.Fatal("the key file holds the private key in the clear")
	}
	if !bytes.Contains(data, []byte("BEGIN "+identity.PEMEncryptedKey)) {
		t.Fatalf("the key is not sealed:\n%s", data)
	}
	for path, mode := range map[string]os.FileMode{info.File: 0o600, dir: 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: mode %v (%v), want %#o", path, st.Mode().Perm(), err, mode)
		}
	}
	again := openT(t, dir, testPassword, nil)
	if got := again.List(); len(got) != 1 || got[0] != want {
		t.Fatalf("reopened store lists %+v, want %+v", got, want)
	}
	signsAs(t, again, "payments", want)
	if keyHex(again.current("payments")) != keyHex(s.current("payments")) {
		t.Fatal("another key after reopening")
	}
}

// TestOpenRefusesWrongPasswordNamingTheFile: one wrong password stops
// Open in one line that names the file; no password says it is needed.
func TestOpenRefusesWrongPasswordNamingTheFile(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testPassword, nil)
	info, err := s.Add("payments")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, []byte("wrong"), Options{})
	if !errors.Is(err, ErrWrongPassword) || err.Error() != "wrong password for keystore file "+info.File {
		t.Fatalf("Open with a wrong password: %v", err)
	}
	_, err = Open(dir, nil, Options{})
	if !errors.Is(err, ErrPasswordRequired) || !strings.Contains(err.Error(), info.File) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Open without a password: %v", err)
	}
	// A store without keys opens without a password, and refuses to
	// write a key in the clear.
	empty := openT(t, t.TempDir(), nil, nil)
	if _, err := empty.Add("payments"); !errors.Is(err, ErrPasswordRequired) {
		t.Fatalf("Add without a password: %v", err)
	}
}

// TestListNeverShowsKeyMaterial: List, ListDir, their JSON and the
// store's formatting hold no private key, current or retired, nor its
// sealed form.
func TestListNeverShowsKeyMaterial(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testPassword, nil)
	if _, err := s.Add("payments"); err != nil {
		t.Fatal(err)
	}
	old := keyHex(s.current("payments"))
	if _, err := s.Rotate("payments"); err != nil {
		t.Fatal(err)
	}
	secrets := []string{old, keyHex(s.current("payments"))}
	listed, err := ListDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 {
		t.Fatalf("ListDir: %+v", listed)
	}
	for what, v := range map[string]any{"List": s.List(), "ListDir": listed} {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ToLower(string(out)) + fmt.Sprintf("%v %+v %#v %v %+v", s, s, s, v, v)
		for _, secret := range secrets {
			if strings.Contains(strings.ToLower(text), secret) {
				t.Fatalf("%s shows a private key: %s", what, out)
			}
		}
		for _, sealed := range []string{"BEGIN", "ENCRYPTED", `"mac"`, `"key"`} {
			if strings.Contains(string(out), sealed) {
				t.Fatalf("%s shows %s: %s", what, sealed, out)
			}
		}
	}
}

// TestRotateKeepsTheOldKeyRetired: a rotation makes version 2 current
// and keeps version 1, retired since version 2 was made, its file
// unchanged; a reopened store says the same.
func TestRotateKeepsTheOldKeyRetired(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s := openT(t, dir, testPassword, c)
	v1, err := s.Add("payments")
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(v1.File)
	if err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	v2, err := s.Rotate("payments")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version != 2 || v2.Address == v1.Address || !v2.Current() {
		t.Fatalf("Rotate = %+v after %+v", v2, v1)
	}
	after, err := os.ReadFile(v1.File)
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the retired key's file changed (%v)", err)
	}
	wantV1 := v1
	wantV1.Retired = c.t
	for _, store := range []*Store{s, openT(t, dir, testPassword, nil)} {
		got := store.List()
		if len(got) != 2 || got[0] != wantV1 || got[1] != v2 {
			t.Fatalf("List = %+v, want %+v and %+v", got, wantV1, v2)
		}
		signsAs(t, store, "payments", v2)
		if cur, ok := store.Current("payments"); !ok || cur != v2 {
			t.Fatalf("Current = %+v", cur)
		}
	}
	if _, err := s.Rotate("nothing"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Rotate of an unknown id: %v", err)
	}
	if _, err := s.Add("payments"); !errors.Is(err, ErrExists) {
		t.Fatalf("Add of an id that exists: %v", err)
	}
}

// TestOpenRefusesAlteredFiles: a key file renamed or edited to put its
// key under another id or version, or claiming another address, is
// refused naming the file; so is a file others may read, and a stray
// file; a temporary file of an interrupted Add is ignored.
func TestOpenRefusesAlteredFiles(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testPassword, nil)
	info, err := s.Add("treasury")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(info.File)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := crypto.GenerateKey()
	for name, c := range map[string]struct {
		file string
		edit func(string) string
		want error
	}{
		"moved to another id": {"payments.v1.json", func(s string) string {
			return strings.Replace(s, `"id": "treasury"`, `"id": "payments"`, 1)
		}, ErrBadFile},
		"moved to another version": {"treasury.v2.json", func(s string) string {
			return strings.Replace(s, `"version": 1`, `"version": 2`, 1)
		}, ErrBadFile},
		"renamed only": {"payments.v1.json", func(s string) string { return s }, ErrBadFile},
		"another address": {"treasury.v1.json", func(s string) string {
			return strings.Replace(s, strings.ToLower(info.Address.Hex()[2:]), strings.ToLower(crypto.PubkeyToAddress(other.PublicKey).Hex()[2:]), 1)
		}, ErrBadFile},
		"not JSON":      {"treasury.v1.json", func(s string) string { return s[:len(s)/2] }, ErrBadFile},
		"unknown field": {"treasury.v1.json", func(s string) string { return strings.Replace(s, "{", `{"retired": "2025-01-01T00:00:00Z",`, 1) }, ErrBadFile},
		"stray file":    {"notes.txt", func(s string) string { return "hello" }, ErrBadFile},
	} {
		t.Run(name, func(t *testing.T) {
			d := t.TempDir()
			path := filepath.Join(d, c.file)
			if err := os.WriteFile(path, []byte(c.edit(string(data))), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(d, testPassword, Options{})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Open: %v; want %v naming %s", err, c.want, path)
			}
		})
	}
	// Readable by others: refused with the chmod that fixes it.
	if err := os.Chmod(info.File, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, testPassword, Options{}); !errors.Is(err, identity.ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+info.File) {
		t.Fatalf("Open of a file others may read: %v", err)
	}
	if err := os.Chmod(info.File, 0o600); err != nil {
		t.Fatal(err)
	}
	// The temporary file of an interrupted Add is ignored.
	if err := os.WriteFile(filepath.Join(dir, ".payments.v1.json.0123.tmp"), data[:10], 0o600); err != nil {
		t.Fatal(err)
	}
	if got := openT(t, dir, testPassword, nil).List(); len(got) != 1 {
		t.Fatalf("List = %+v", got)
	}
}

// TestImport: a Charter key file (encrypted) and a go-ethereum keystore
// file are imported with their address; a wrong file password and a key
// the store holds already are refused.
func TestImport(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, testPassword, nil)
	src := t.TempDir()
	charterKey, _ := crypto.GenerateKey()
	charterFile := filepath.Join(src, "account.key")
	if err := identity.SaveNodeKey(charterFile, charterKey, []byte("filepw")); err != nil {
		t.Fatal(err)
	}
	gethKey, _ := crypto.GenerateKey()
	v3, err := gethkeystore.EncryptKey(&gethkeystore.Key{Address: crypto.PubkeyToAddress(gethKey.PublicKey), PrivateKey: gethKey}, "gethpw", gethkeystore.LightScryptN, gethkeystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	gethFile := filepath.Join(src, "UTC--geth.json")
	if err := os.WriteFile(gethFile, v3, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import("payments", charterFile, []byte("nope")); !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), charterFile) {
		t.Fatalf("import with a wrong password: %v", err)
	}
	if _, err := s.Import("payments", gethFile, []byte("nope")); !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), gethFile) {
		t.Fatalf("import of a go-ethereum file with a wrong password: %v", err)
	}
	for id, c := range map[string]struct {
		file string
		pw   string
		want Info
	}{
		"payments": {charterFile, "filepw", Info{ID: "payments", Version: 1, Address: crypto.PubkeyToAddress(charterKey.PublicKey)}},
		"treasury": {gethFile, "gethpw", Info{ID: "treasury", Version: 1, Address: crypto.PubkeyToAddress(gethKey.PublicKey)}},
	} {
		info, err := s.Import(id, c.file, []byte(c.pw))
		if err != nil {
			t.Fatal(err)
		}
		if info.ID != c.want.ID || info.Version != 1 || info.Address != c.want.Address {
			t.Fatalf("Import = %+v, want %+v", info, c.want)
		}
	}
	reopened := openT(t, dir, testPassword, nil)
	signsAs(t, reopened, "payments", Info{Address: crypto.PubkeyToAddress(charterKey.PublicKey), Version: 1})
	signsAs(t, reopened, "treasury", Info{Address: crypto.PubkeyToAddress(gethKey.PublicKey), Version: 1})
	if _, err := s.Import("again", charterFile, []byte("filepw")); !errors.Is(err, ErrExists) {
		t.Fatalf("import of a key the store holds: %v", err)
	}
	// A go-ethereum file asking for gigabytes of scrypt is refused before
	// any work.
	costly := bytes.Replace(v3, []byte(fmt.Sprintf(`"n":%d`, gethkeystore.LightScryptN)), []byte(`"n":1073741824`), 1)
	if bytes.Equal(costly, v3) {
		t.Fatal("test file has no scrypt n")
	}
	if err := os.WriteFile(gethFile, costly, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import("costly", gethFile, []byte("gethpw")); err == nil || !strings.Contains(err.Error(), "out of bounds") {
		t.Fatalf("import of a costly file: %v", err)
	}
}

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{"payments": true, "a": true, "pay-roll_2": true, "0x": true,
		"": false, "Payments": false, "-x": false, "a.b": false, "a/b": false, "../x": false, "é": false,
		strings.Repeat("a", 32): true, strings.Repeat("a", 33): false} {
		if err := ValidID(id); (err == nil) != ok {
			t.Errorf("ValidID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
	s := openT(t, t.TempDir(), testPassword, nil)
	if _, err := s.Add("../x"); !errors.Is(err, ErrBadID) {
		t.Fatalf("Add of a bad id: %v", err)
	}
}

func TestParseFileName(t *testing.T) {
	for name, want := range map[string]struct {
		id string
		v  int
	}{
		"payments.v1.json": {"payments", 1}, "a.v9999.json": {"a", 9999}, "x-y.v12.json": {"x-y", 12},
		"payments.v0.json": {}, "payments.v01.json": {}, "payments.v10000.json": {}, "payments.json": {},
		"payments.v1.JSON": {}, "Pay.v1.json": {}, ".v1.json": {}, "payments.v-1.json": {}, "payments.v1.json.tmp": {},
	} {
		id, v, ok := parseFileName(name)
		if ok != (want.id != "") || id != want.id || v != want.v {
			t.Errorf("parseFileName(%q) = %q, %d, %v; want %q, %d", name, id, v, ok, want.id, want.v)
		}
		if ok && fileName(id, v) != name {
			t.Errorf("fileName(%q, %d) = %q", id, v, fileName(id, v))
		}
	}
}

// FuzzParseKeyFile: any bytes read from the keystore folder are either
// a well-formed key file for their name or refused with ErrBadFile.
func FuzzParseKeyFile(f *testing.F) {
	key, _ := crypto.GenerateKey()
	info := Info{ID: "payments", Version: 1, Address: crypto.PubkeyToAddress(key.PublicKey), Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	// A cheap seal: the fuzz target parses, it does not decrypt.
	good, err := encodeKeyFile(info, key, []byte("pw"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte(`"version": 1`), []byte(`"version": 2`), 1))
	f.Add(bytes.Replace(good, []byte(`"mac": "`), []byte(`"mac": "00`), 1))
	f.Add([]byte(`{"id":"payments","version":1}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := parseKeyFile(data, "payments", 1)
		if err != nil {
			if !errors.Is(err, ErrBadFile) {
				t.Fatalf("refused with %v, not ErrBadFile", err)
			}
			return
		}
		if kf.ID != "payments" || kf.Version != 1 || kf.Created.IsZero() || len(kf.MAC) != 64 {
			t.Fatalf("accepted %+v", kf)
		}
	})
}
