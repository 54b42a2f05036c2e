package snapshot

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/ledger"
)

// TestSnapshotOfAMillionAccounts measures export, verify and import of
// a state of CHARTER_SOAK_ACCOUNTS accounts (default 1,000,000), against
// committing the same state block by block into a fresh ledger (a lower
// bound of replaying the chain: no transaction is executed). Run with
//
//	CHARTER_SOAK=1 go test ./internal/snapshot -run TestSnapshotOfAMillionAccounts -v -timeout 1h
func TestSnapshotOfAMillionAccounts(t *testing.T) {
	if os.Getenv("CHARTER_SOAK") == "" {
		t.Skip("set CHARTER_SOAK=1 to run the million-account measurement")
	}
	accounts := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("CHARTER_SOAK_ACCOUNTS")); err == nil && v > 0 {
		accounts = v
	}
	const perBlock = 100_000
	key, _ := crypto.GenerateKey()
	spec, err := chain.DevSpec(4242, 1000)
	if err != nil {
		t.Fatal(err)
	}
	spec.Consensus.Validators = []common.Address{crypto.PubkeyToAddress(key.PublicKey)}
	dir := t.TempDir()
	l, err := ledger.Open(filepath.Join(dir, "src"), spec, ledger.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	t0 := time.Now()
	for done := 0; done < accounts; done += perBlock {
		head := l.Head()
		st, err := l.StateAt(head.Root)
		if err != nil {
			t.Fatal(err)
		}
		for i := done; i < min(done+perBlock, accounts); i++ {
			addr := common.BigToAddress(big.NewInt(int64(10_000_000 + i)))
			st.SetBalance(addr, uint256.NewInt(uint64(i+1)), 0)
			if i%1000 == 0 {
				for s := 0; s < 10; s++ {
					st.SetState(addr, common.BigToHash(big.NewInt(int64(s))), common.BigToHash(big.NewInt(int64(i+s+1))))
				}
			}
		}
		h := chain.NewHeader(spec, head, common.Address{}, head.Time+1)
		h.Root = st.IntermediateRoot(spec.Config.Rules(h.Number, true, h.Time))
		block := types.NewBlock(h, &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
		if err := l.Commit(block, nil, st, nil); err != nil {
			t.Fatal(err)
		}
	}
	build := time.Since(t0)
	height := l.Head().Number.Uint64()

	path := filepath.Join(dir, "state.chsnap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	m, err := Export(f, l, height, ExportOptions{Attest: func(d common.Hash) ([]byte, error) { return crypto.Sign(d[:], key) }})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	export := time.Since(t1)
	fi, _ := os.Stat(path)

	rf, _ := os.Open(path)
	defer rf.Close()
	sf, err := Open(rf, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	trust := TrustFromSpec(spec, l.Genesis().Hash())
	t2 := time.Now()
	rep, err := VerifyFile(context.Background(), sf, trust)
	if err != nil {
		t.Fatal(err)
	}
	verify := time.Since(t2)
	t3 := time.Now()
	if _, err := Import(context.Background(), &sf.Manifest, sf.RawChunk, filepath.Join(dir, "dst"), spec, ledger.Options{}, trust); err != nil {
		t.Fatal(err)
	}
	imp := time.Since(t3)
	l2, err := ledger.Open(filepath.Join(dir, "dst"), spec, ledger.Options{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	l2.Close()
	t.Logf("MEASURE accounts=%d (+%d system) chunks=%d file=%.1f MiB: commit block by block %s; export %s, verify %s, import %s",
		accounts, rep.Accounts-uint64(accounts), m.Trailer.Chunks, float64(fi.Size())/(1<<20),
		build.Round(time.Millisecond), export.Round(time.Millisecond), verify.Round(time.Millisecond), imp.Round(time.Millisecond))
}
