package main

import (
	"bytes"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/node"
	"github.com/charter-ledger/charter/internal/snapshot"
)

// snapshotFixture is a one-validator chain at height 1, its genesis file
// and the snapshot of block 1.
func snapshotFixture(t *testing.T) (genesis string, raw []byte) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	spec, err := chain.DevSpec(4242, 1000)
	if err != nil {
		t.Fatal(err)
	}
	spec.Consensus.Validators = []common.Address{crypto.PubkeyToAddress(key.PublicKey)}
	dir := t.TempDir()
	genesis = filepath.Join(dir, "genesis.json")
	gj, err := spec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(genesis, gj, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(filepath.Join(dir, "data"), spec, ledger.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	head := l.Head()
	st, _ := l.StateAt(head.Root)
	for i := 0; i < 500; i++ {
		st.SetBalance(common.BigToAddress(big.NewInt(int64(1000+i))), uint256.NewInt(1), 0)
	}
	h := chain.NewHeader(spec, head, common.Address{}, head.Time+1)
	h.Root = st.IntermediateRoot(spec.Config.Rules(h.Number, true, h.Time))
	block := types.NewBlock(h, &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	if err := l.Commit(block, nil, st, nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := snapshot.Export(&buf, l, 1, snapshot.ExportOptions{ChunkBytes: snapshot.MinChunkBytes,
		Attest: func(d common.Hash) ([]byte, error) { return crypto.Sign(d[:], key) }}); err != nil {
		t.Fatal(err)
	}
	return genesis, buf.Bytes()
}

func TestSnapshotExportAndVerify(t *testing.T) {
	genesis, raw := snapshotFixture(t)
	var serve []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != node.SnapshotPath || r.URL.Query().Get("height") != "1" {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Write(serve)
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "s.chsnap")

	// A stream cut short (the node died mid-export) leaves no file.
	serve = raw[:len(raw)/2]
	mustFail(t, "incomplete snapshot", "snapshot", "export", "--height", "1", "--rpc", srv.URL, file)
	for _, p := range []string{file, file + ".partial"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s left after a cut stream", p)
		}
	}
	serve = raw
	out := mustRun(t, "snapshot", "export", "--height", "1", "--rpc", srv.URL, file)
	if !bytes.Contains([]byte(out), []byte("snapshot of block 1")) {
		t.Fatalf("export printed %q", out)
	}
	mustFail(t, "exists", "snapshot", "export", "--height", "1", "--rpc", srv.URL, file)
	out = mustRun(t, "snapshot", "verify", file, "--genesis", genesis)
	if !bytes.Contains([]byte(out), []byte("snapshot valid: block 1")) {
		t.Fatalf("verify printed %q", out)
	}
	// Without a genesis: checked against its own state, with a warning.
	code, out, errOut := charter("snapshot", "verify", file)
	if code != 0 || !bytes.Contains([]byte(out), []byte("snapshot valid")) || !bytes.Contains([]byte(errOut), []byte("warning: no --genesis")) {
		t.Fatalf("verify without genesis: exit %d, %q, %q", code, out, errOut)
	}
	mustFail(t, "is --home a folder written by", "snapshot", "import", file, "--home", t.TempDir())

	// A flipped byte, a cut file, another chain: refused, one line each.
	bad := filepath.Join(dir, "bad.chsnap")
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 1
	os.WriteFile(bad, flipped, 0o644)
	mustFail(t, "is refused", "snapshot", "verify", bad, "--genesis", genesis)
	os.WriteFile(bad, raw[:len(raw)-10], 0o644)
	mustFail(t, "snapshot invalid", "snapshot", "verify", bad, "--genesis", genesis)
	other, _ := snapshotFixture(t)
	mustFail(t, "is refused", "snapshot", "verify", file, "--genesis", other)
}
