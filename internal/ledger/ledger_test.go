package ledger

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/charter-ledger/charter/internal/chain"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func devSpec(t *testing.T, chainID uint64) *chain.Spec {
	t.Helper()
	spec, err := chain.DevSpec(chainID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestReopenKeepsGenesisAndRefusesAnotherChain(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, devSpec(t, 5), Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	genesis := l.Genesis().Hash()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(dir, devSpec(t, 5), Options{}, quiet)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if l.Head().Hash() != genesis {
		t.Fatalf("head after reopen %s, want genesis %s", l.Head().Hash(), genesis)
	}
	l.Close()
	if _, err := Open(dir, devSpec(t, 1337), Options{}, quiet); !errors.Is(err, ErrGenesisMismatch) {
		t.Fatalf("open with another chain's spec: err = %v, want ErrGenesisMismatch", err)
	}
}

// A checkpoint taken while the ledger runs opens as a ledger at the
// height Checkpoint returned, with that height's state; the directory
// must be new.
func TestCheckpointOpensAtItsHeight(t *testing.T) {
	spec := devSpec(t, 5)
	l, err := Open(t.TempDir(), spec, Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dir := filepath.Join(t.TempDir(), "copy")
	height, err := l.Checkpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if height != 0 {
		t.Fatalf("checkpoint height %d, want 0", height)
	}
	if _, err := l.Checkpoint(dir); err == nil {
		t.Fatal("checkpoint into an existing directory succeeded")
	}
	c, err := Open(dir, spec, Options{}, quiet)
	if err != nil {
		t.Fatalf("open checkpoint: %v", err)
	}
	defer c.Close()
	if c.Head().Hash() != l.Head().Hash() {
		t.Fatalf("checkpoint head %s, ledger head %s", c.Head().Hash(), l.Head().Hash())
	}
	if _, err := c.StateAt(c.Head().Root); err != nil {
		t.Fatalf("checkpoint head state: %v", err)
	}
}
