package snapshot

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/ledger"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type fixture struct {
	spec  *chain.Spec
	key   *ecdsa.PrivateKey
	l     *ledger.Ledger
	block *types.Block
	trust Trust
}

// newFixture makes a solo chain whose block 1 holds accounts accounts
// (every 50th with a small storage and code) and one account with a
// storage of bigSlots slots.
func newFixture(t testing.TB, accounts, bigSlots int) *fixture {
	t.Helper()
	key, _ := crypto.GenerateKey()
	spec, err := chain.DevSpec(4242, 1000)
	if err != nil {
		t.Fatal(err)
	}
	spec.Consensus.Validators = []common.Address{crypto.PubkeyToAddress(key.PublicKey)}
	l, err := ledger.Open(t.TempDir(), spec, ledger.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	head := l.Head()
	st, err := l.StateAt(head.Root)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < accounts; i++ {
		addr := common.BigToAddress(big.NewInt(int64(1_000_000 + i)))
		st.SetBalance(addr, uint256.NewInt(uint64(i+1)), 0)
		st.SetNonce(addr, uint64(i%7), 0)
		if i%50 == 0 {
			st.SetCode(addr, []byte{0x60, byte(i % 3), 0x60, 0x00, 0xf3}, 0)
			for s := 0; s < 5; s++ {
				st.SetState(addr, common.BigToHash(big.NewInt(int64(s))), common.BigToHash(big.NewInt(int64(i*10+s+1))))
			}
		}
	}
	bigAcct := common.HexToAddress("0xb16")
	st.SetBalance(bigAcct, uint256.NewInt(1), 0)
	for s := 0; s < bigSlots; s++ {
		st.SetState(bigAcct, common.BigToHash(big.NewInt(int64(s))), common.BigToHash(big.NewInt(int64(s+7))))
	}
	h := chain.NewHeader(spec, head, common.Address{}, head.Time+1)
	h.Root = st.IntermediateRoot(spec.Config.Rules(h.Number, true, h.Time))
	block := types.NewBlock(h, &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	if err := l.Commit(block, nil, st, nil); err != nil {
		t.Fatal(err)
	}
	return &fixture{spec: spec, key: key, l: l, block: block, trust: TrustFromSpec(spec, l.Genesis().Hash())}
}

func (f *fixture) attest(d common.Hash) ([]byte, error) { return crypto.Sign(d[:], f.key) }

func (f *fixture) export(t testing.TB, chunkBytes int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Export(&buf, f.l, f.block.NumberU64(), ExportOptions{ChunkBytes: chunkBytes, Attest: f.attest}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openBytes(t testing.TB, b []byte) *File {
	t.Helper()
	f, err := Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestExportVerifyImport(t *testing.T) {
	f := newFixture(t, 3000, 4000)
	raw := f.export(t, MinChunkBytes)
	sf := openBytes(t, raw)
	rep, err := VerifyFile(context.Background(), sf, f.trust)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Chunks < 10 || rep.Accounts < 3000 || rep.Slots < 4000 {
		t.Fatalf("report %+v: want many chunks, every account and slot", rep)
	}
	// The big storage trie is split: some chunk continues it.
	cont := 0
	for i := uint64(0); i < sf.Manifest.Trailer.Chunks; i++ {
		rc, _ := sf.RawChunk(i)
		c, _ := DecodeChunk(rc)
		if len(c.Storage) > 0 && len(c.Storage[0].AccountBody) > 0 {
			cont++
		}
		if len(rc) > MinChunkBytes+MinChunkBytes/2 {
			t.Fatalf("chunk %d of %d bytes exceeds its bound", i, len(rc))
		}
	}
	if cont == 0 {
		t.Fatal("no chunk continues a storage trie")
	}
	// Deterministic: a second export is byte for byte the same.
	if !bytes.Equal(raw, f.export(t, MinChunkBytes)) {
		t.Fatal("two exports of one height differ")
	}

	dir := t.TempDir()
	got, err := Import(context.Background(), &sf.Manifest, sf.RawChunk, dir, f.spec, ledger.Options{}, f.trust)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != f.block.Hash() {
		t.Fatalf("imported block %s, want %s", got.Hash(), f.block.Hash())
	}
	l2, err := ledger.Open(dir, f.spec, ledger.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.Head().Hash() != f.block.Hash() {
		t.Fatalf("head %d after import, want %d", l2.Head().Number, f.block.Number())
	}
	if l2.Base() != f.block.NumberU64() || f.l.Base() != 0 {
		t.Fatalf("base %d after import (exporter's %d), want %d (0)", l2.Base(), f.l.Base(), f.block.NumberU64())
	}
	// The history of the system state starts at the restored height,
	// and says so for the blocks before it.
	if start, ok := l2.SystemHistoryStart(); !ok || start != f.block.NumberU64() {
		t.Fatalf("system state history starts at %d (%v) after import, want %d", start, ok, f.block.NumberU64())
	}
	if f.block.NumberU64() > 0 {
		if _, err := l2.SystemStateAt(f.block.NumberU64() - 1); !errors.Is(err, ledger.ErrSystemStateNotKept) {
			t.Fatalf("system state before the restored height: %v", err)
		}
	}
	st, err := l2.StateAt(f.block.Root())
	if err != nil {
		t.Fatal(err)
	}
	a := common.BigToAddress(big.NewInt(1_000_000 + 100))
	if st.GetBalance(a).Uint64() != 101 || len(st.GetCode(a)) != 5 || st.GetState(a, common.BigToHash(big.NewInt(3))) != common.BigToHash(big.NewInt(1004)) {
		t.Fatal("imported account differs")
	}
	if st.GetState(common.HexToAddress("0xb16"), common.BigToHash(big.NewInt(3999))) != common.BigToHash(big.NewInt(4006)) {
		t.Fatal("imported big storage differs")
	}
	// The imported ledger takes the next block.
	h := chain.NewHeader(f.spec, l2.Head(), common.Address{}, l2.Head().Time+1)
	st.SetBalance(a, uint256.NewInt(5), 0)
	h.Root = st.IntermediateRoot(f.spec.Config.Rules(h.Number, true, h.Time))
	next := types.NewBlock(h, &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	if err := l2.Commit(next, nil, st, nil); err != nil {
		t.Fatalf("commit after import: %v", err)
	}
	// A second import into the same directory is refused.
	if _, err := Import(context.Background(), &sf.Manifest, sf.RawChunk, dir, f.spec, ledger.Options{}, f.trust); !errors.Is(err, ledger.ErrNotEmpty) {
		t.Fatalf("import into a ledger: %v, want ErrNotEmpty", err)
	}
}

func TestRefusesBadSnapshots(t *testing.T) {
	f := newFixture(t, 400, 600)
	raw := f.export(t, MinChunkBytes)
	sf := openBytes(t, raw)
	verify := func(b []byte, trust Trust) error {
		f, err := Open(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return err
		}
		_, err = VerifyFile(context.Background(), f, trust)
		return err
	}
	if err := verify(raw, f.trust); err != nil {
		t.Fatal(err)
	}
	t.Run("truncated", func(t *testing.T) {
		for _, n := range []int{len(raw) - 1, len(raw) / 2, 20} {
			if err := verify(raw[:n], f.trust); !errors.Is(err, ErrInvalid) {
				t.Fatalf("cut at %d: %v", n, err)
			}
		}
	})
	t.Run("flipped byte in every chunk", func(t *testing.T) {
		for i := uint64(0); i < sf.Manifest.Trailer.Chunks; i++ {
			b := bytes.Clone(raw)
			b[sf.Manifest.Trailer.Offsets[i]+4+200] ^= 0x01
			if err := verify(b, f.trust); !errors.Is(err, ErrInvalid) {
				t.Fatalf("chunk %d corrupted: %v", i, err)
			}
		}
	})
	t.Run("forged chunk with matching hash", func(t *testing.T) {
		// A chunk re-encoded with one balance changed and the trailer
		// updated: the hash matches, the proof does not.
		rc, _ := sf.RawChunk(1)
		c, _ := DecodeChunk(rc)
		acct, _ := types.FullAccount(mustFull(t, c.Accounts[0].Body))
		acct.Balance = uint256.NewInt(1 << 40)
		c.Accounts[0].Body = types.SlimAccountRLP(*acct)
		if _, err := VerifyChunk(f.block.Root(), c); !errors.Is(err, ErrInvalid) {
			t.Fatalf("forged chunk: %v", err)
		}
	})
	t.Run("missing chunk", func(t *testing.T) {
		var cur Cursor
		for i := uint64(0); i < sf.Manifest.Trailer.Chunks; i++ {
			if i == 2 {
				continue
			}
			rc, _ := sf.RawChunk(i)
			c, _ := DecodeChunk(rc)
			info, err := VerifyChunk(f.block.Root(), c)
			if err != nil {
				t.Fatal(err)
			}
			if err := cur.Add(info); err != nil {
				return
			}
		}
		if cur.Done() == nil {
			t.Fatal("a gap went unnoticed")
		}
	})
	t.Run("other chain", func(t *testing.T) {
		tr := f.trust
		tr.ChainID++
		if err := verify(raw, tr); !errors.Is(err, ErrInvalid) {
			t.Fatal(err)
		}
		tr = f.trust
		tr.Genesis[0] ^= 1
		if err := verify(raw, tr); !errors.Is(err, ErrInvalid) {
			t.Fatal(err)
		}
	})
	t.Run("attested by a non-validator", func(t *testing.T) {
		other, _ := crypto.GenerateKey()
		var buf bytes.Buffer
		_, err := Export(&buf, f.l, 1, ExportOptions{ChunkBytes: MinChunkBytes, Attest: func(d common.Hash) ([]byte, error) { return crypto.Sign(d[:], other) }})
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(buf.Bytes(), f.trust); !errors.Is(err, ErrInvalid) {
			t.Fatalf("attestation by a stranger: %v", err)
		}
	})
	t.Run("receipts not the block's", func(t *testing.T) {
		h := sf.Manifest.Header
		h.Receipts, _ = rlp.EncodeToBytes([]*types.ReceiptForStorage{{Status: 1, CumulativeGasUsed: 21000, Logs: []*types.Log{}}})
		if _, _, err := Certify(&h, f.trust); !errors.Is(err, ErrInvalid) {
			t.Fatalf("foreign receipts: %v", err)
		}
	})
	t.Run("header block swapped", func(t *testing.T) {
		// The genesis block under block 1's attestation: the signature
		// no longer matches.
		h := sf.Manifest.Header
		h.Block, _ = rlp.EncodeToBytes(f.l.Genesis())
		if _, _, err := Certify(&h, f.trust); !errors.Is(err, ErrInvalid) {
			t.Fatalf("swapped block: %v", err)
		}
	})
}

func mustFull(t *testing.T, slim []byte) []byte {
	full, err := types.FullAccountRLP(slim)
	if err != nil {
		t.Fatal(err)
	}
	return full
}

// TestImportCrashLeavesNoLedger: an import stopped half way leaves no
// chaindata, and the next import succeeds.
func TestImportCrashLeavesNoLedger(t *testing.T) {
	f := newFixture(t, 300, 300)
	sf := openBytes(t, f.export(t, MinChunkBytes))
	dir := t.TempDir()
	stop := errors.New("stopped")
	read := func(i uint64) ([]byte, error) {
		if i == sf.Manifest.Trailer.Chunks-1 {
			return nil, stop
		}
		return sf.RawChunk(i)
	}
	if _, err := Import(context.Background(), &sf.Manifest, read, dir, f.spec, ledger.Options{}, f.trust); !errors.Is(err, stop) {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "chaindata")); !os.IsNotExist(err) {
		t.Fatalf("a partial import left chaindata: %v", err)
	}
	// A partial import directory (as a kill would leave) is cleared.
	os.MkdirAll(filepath.Join(dir, "chaindata.import", "junk"), 0o700)
	if _, err := Import(context.Background(), &sf.Manifest, sf.RawChunk, dir, f.spec, ledger.Options{}, f.trust); err != nil {
		t.Fatal(err)
	}
}
