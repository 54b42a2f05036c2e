package ledger

import (
	"errors"
	"io"
	"log/slog"
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
