package execution

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
	"github.com/charter-ledger/charter/internal/execution/evmtest"
)

// Raw code for the EIP-161 edge: touch calls the address in the first 20
// bytes of its calldata with no value (which touches it), then reverts
// (touchRevert) or stops (touchKeep).
var (
	touchRevert = common.FromHex("600060006000600060006000356060" + "1c5af150" + "60006000fd")
	touchKeep   = common.FromHex("600060006000600060006000356060" + "1c5af150" + "00")
)

// diffChain is the world of the differential test: a chain with funded
// senders (one of them the coinbase of some blocks), an ERC-20 token they
// all hold, a hot counter, a frozen counter, a forwarder, the touch
// contracts and existing empty accounts (kept by a genesis without
// EIP-161, as old chains may hold them).
type diffChain struct {
	*benchChain
	mu                  sync.Mutex // guards copies of st
	token, hot, frozen  common.Address
	fwd, tRevert, tKeep common.Address
	destructor, factory common.Address
	empties             []common.Address
}

const diffSenders = 12

func newDiffChain(tb testing.TB) *diffChain {
	c := &diffChain{benchChain: newBenchChain(tb, diffSenders)}
	admin := crypto.PubkeyToAddress(c.admin.PublicKey)
	next := func() common.Address { a := crypto.CreateAddress(admin, c.nonce[admin]); return a }
	c.token = next()
	setup := []*types.Transaction{c.sign(c.admin, nil, 3_000_000, token.DeployData(new(big.Int).Lsh(big.NewInt(1), 200)))}
	for _, k := range c.keys {
		setup = append(setup, c.sign(c.admin, &c.token, 100_000, token.TransferData(crypto.PubkeyToAddress(k.PublicKey), big.NewInt(1000))))
	}
	c.hot = next()
	setup = append(setup, c.sign(c.admin, nil, 1_000_000, evmtest.Counter.Code))
	c.frozen = next()
	setup = append(setup, c.sign(c.admin, nil, 1_000_000, evmtest.Counter.Code))
	c.fwd = next()
	setup = append(setup, c.sign(c.admin, nil, 1_000_000, evmtest.Forwarder.Code))
	c.destructor = next()
	setup = append(setup, c.sign(c.admin, nil, 1_000_000, evmtest.Destructor.Code))
	c.factory = next()
	setup = append(setup, c.sign(c.admin, nil, 1_000_000, evmtest.Factory.Code))
	c.extend(tb, setup...)
	c.freezeTarget(tb, c.frozen)
	c.tRevert, c.tKeep = common.HexToAddress("0x7e7e01"), common.HexToAddress("0x7e7e02")
	c.st.SetCode(c.tRevert, touchRevert, tracing.CodeChangeUnspecified)
	c.st.SetCode(c.tKeep, touchKeep, tracing.CodeChangeUnspecified)
	c.st.SetNonce(c.tRevert, 1, tracing.NonceChangeUnspecified)
	c.st.SetNonce(c.tKeep, 1, tracing.NonceChangeUnspecified)
	for i := 0; i < 4; i++ {
		a := common.BigToAddress(big.NewInt(int64(0xe0e0 + i)))
		c.st.CreateAccount(a)
		c.empties = append(c.empties, a)
	}
	c.empties = append(c.empties, ripemdAddr)
	c.st.CreateAccount(ripemdAddr)
	// Finalise without EIP-161, so that the empty accounts stay.
	c.st.IntermediateRoot(params.Rules{})
	h := *c.head
	h.Root = c.st.IntermediateRoot(params.Rules{})
	c.head = &h
	for _, a := range c.empties {
		if !c.st.Exist(a) || !c.st.Empty(a) {
			tb.Fatalf("setup: %s should exist and be empty", a.Hex())
		}
	}
	return c
}

// randomBlock builds, sequentially, a block of random transactions on the
// head: plain transfers (among the senders: a recipient may send later in
// the block; to empty accounts; to and from the coinbase), ERC-20
// transfers (some over the balance: they revert), creations, calls of the
// hot counter, of the frozen one (the frame reverts), touches of empty
// accounts in reverted and kept frames, forwarded calls, SELFDESTRUCT
// (of an old contract, and of one created in the same transaction; to the
// frozen counter it breaks a rule and the message runs doomed), and
// CREATE and CREATE2 by a factory (with collisions).
func (c *diffChain) randomBlock(tb testing.TB, seed int64) (*types.Block, *state.StateDB) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9a7e))
	c.mu.Lock()
	st := c.st.Copy()
	c.mu.Unlock()
	signer := c.exec.Signer()
	nonce := map[common.Address]uint64{}
	keys := append([]*ecdsa.PrivateKey{c.admin}, c.keys...)
	addrs := make([]common.Address, len(keys))
	for i, k := range keys {
		addrs[i] = crypto.PubkeyToAddress(k.PublicKey)
		nonce[addrs[i]] = st.GetNonce(addrs[i])
	}
	coinbase := common.Address{}
	switch rng.IntN(3) {
	case 1:
		coinbase = addrs[1+rng.IntN(len(addrs)-1)]
	case 2:
		coinbase = common.HexToAddress("0xc0ffee")
	}
	tip := big.NewInt(int64(rng.IntN(3))) // 0: no fee at all
	n := 2 + rng.IntN(40)
	txs := make([]*types.Transaction, 0, n)
	for len(txs) < n {
		ki := rng.IntN(len(keys))
		from := addrs[ki]
		var (
			to    *common.Address
			value = new(big.Int)
			data  []byte
			gas   = uint64(200_000)
		)
		pick := func() common.Address { return addrs[rng.IntN(len(addrs))] }
		switch k := rng.IntN(15); k {
		case 0, 1: // plain transfer to a sender
			a := pick()
			to, value, gas = &a, big.NewInt(int64(1+rng.IntN(1e6))), 21000
		case 2: // to the coinbase or a fresh address
			a := coinbase
			if rng.IntN(2) == 0 {
				a = common.BigToAddress(big.NewInt(int64(0x5000 + rng.IntN(8))))
			}
			to, value, gas = &a, big.NewInt(int64(rng.IntN(1000))), 21000
		case 3: // zero value to an empty account: it is deleted
			a := c.empties[rng.IntN(len(c.empties))]
			to, gas = &a, 21000
		case 4, 5: // ERC-20, sometimes more than the balance (reverts)
			amount := big.NewInt(int64(1 + rng.IntN(30)))
			if rng.IntN(5) == 0 {
				amount = big.NewInt(1 << 40)
			}
			to, data = &c.token, token.TransferData(pick(), amount)
		case 6, 7: // the hot counter
			to, data = &c.hot, evmtest.Counter.Pack("bump")
		case 8: // a creation
			data, gas = evmtest.Counter.Code, 300_000
		case 9: // the frozen counter, directly or forwarded
			if rng.IntN(2) == 0 {
				to, data = &c.frozen, evmtest.Counter.Pack("bump")
			} else {
				to, data = &c.fwd, evmtest.Forwarder.Pack("callTo", c.frozen, evmtest.Counter.Pack("bump"))
			}
		case 10: // touch an empty account in a frame that reverts, or not
			e := c.empties[rng.IntN(len(c.empties))]
			t := c.tRevert
			if rng.IntN(3) == 0 {
				t = c.tKeep
			}
			if rng.IntN(2) == 0 {
				to, data = &t, e.Bytes()
			} else {
				to, data = &c.fwd, evmtest.Forwarder.Pack("callTo", t, e.Bytes())
			}
		case 11: // forwarded bump with value
			to, value, data = &c.fwd, big.NewInt(int64(rng.IntN(100))), evmtest.Forwarder.Pack("callTo", c.hot, evmtest.Counter.Pack("bump"))
		case 12: // fund the destructor, or SELFDESTRUCT it to a sender, an
			// empty account (touched) or the frozen counter (the
			// message breaks a rule and runs doomed)
			if rng.IntN(2) == 0 {
				to, value, gas = &c.destructor, big.NewInt(int64(1+rng.IntN(1000))), 50_000
				break
			}
			var b common.Address
			switch rng.IntN(3) {
			case 0:
				b = pick()
			case 1:
				b = c.empties[rng.IntN(len(c.empties))]
			case 2:
				b = c.frozen
			}
			to, data = &c.destructor, evmtest.Destructor.Pack("destroy", b)
		case 13: // a contract created and destroyed in one transaction
			// (EIP-6780), its value to a sender, an empty account or the
			// frozen counter
			b := []common.Address{pick(), c.empties[rng.IntN(len(c.empties))], c.frozen}[rng.IntN(3)]
			data = append(append([]byte{0x73}, b.Bytes()...), 0xff)
			value, gas = big.NewInt(int64(rng.IntN(3))), 100_000
		case 14: // CREATE and CREATE2 by a factory; a salt used before
			// collides and the call reverts
			to = &c.factory
			if rng.IntN(2) == 0 {
				data = evmtest.Factory.Pack("make")
			} else {
				data = evmtest.Factory.Pack("make2", [32]byte{byte(rng.IntN(4))})
			}
			gas = 300_000
		}
		tx := types.MustSignNewTx(keys[ki], signer, &types.DynamicFeeTx{ChainID: c.spec.Config.ChainID, Nonce: nonce[from], To: to, Gas: gas,
			Value: value, GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: tip, Data: data})
		nonce[from]++
		txs = append(txs, tx)
	}
	h := chain.NewHeader(c.spec, c.head, coinbase, c.head.Time+1)
	res, err := c.exec.Build(h, st.Copy(), &listSource{txs})
	if err != nil {
		tb.Fatal(err)
	}
	return res.Block, st
}

// diffApply applies block sequentially and in parallel on copies of st and
// compares: both accept it (which checks root, receipts root, bloom and
// gas used against the header), and receipts, logs and state roots are
// identical.
func (c *diffChain) diffApply(block *types.Block, st *state.StateDB, workers int) error {
	return c.diffApplyWith(block, st, Options{Parallel: true, Workers: workers})
}

func (c *diffChain) diffApplyWith(block *types.Block, st *state.StateDB, opts Options) error {
	seq, err := c.exec.Apply(c.head, block, st.Copy())
	if err != nil {
		return fmt.Errorf("sequential: %w", err)
	}
	par, err := c.exec.WithOptions(opts).Apply(c.head, block, st.Copy())
	if err != nil {
		return fmt.Errorf("parallel: %w", err)
	}
	rules := c.spec.Config.Rules(block.Number(), true, block.Time())
	if a, b := seq.State.IntermediateRoot(rules), par.State.IntermediateRoot(rules); a != b {
		return fmt.Errorf("state root: sequential %s, parallel %s", a, b)
	}
	a, _ := json.Marshal(seq.Receipts)
	b, _ := json.Marshal(par.Receipts)
	if string(a) != string(b) {
		return fmt.Errorf("receipts differ:\nsequential %s\nparallel   %s", a, b)
	}
	return nil
}

// TestParallelApplyMatchesSequential is the differential test of the
// parallel path: random blocks full of conflicts, applied both ways.
// CHARTER_SOAK=1 runs thousands of seeds; CHARTER_SEED=n replays one.
func TestParallelApplyMatchesSequential(t *testing.T) {
	c := newDiffChain(t)
	var mu sync.Mutex
	stats := map[string]int{}
	simnet.RunSeeds(t, 300, 5000, func(seed int64) error {
		block, st := c.randomBlock(t, seed)
		if len(block.Transactions()) < 2 {
			return nil
		}
		mu.Lock()
		stats["blocks"]++
		stats["txs"] += len(block.Transactions())
		mu.Unlock()
		// Odd seeds: every transaction's speculative run is validated
		// (the committer waits for the workers), and one seed in four of
		// those has every run made on the block's pre-state first (every
		// dependency a conflict); even: as in production.
		return c.diffApplyWith(block, st, Options{Parallel: true, Workers: 1 + int(seed%4), waitForWorkers: seed%2 == 1, speculateFirst: seed%8 == 3})
	})
	t.Logf("%v; speculative runs kept %d, run again %d; run by the committer first %d; sequential after conflicts %d", stats,
		parallelStats.kept.Load(), parallelStats.rerun.Load(), parallelStats.own.Load(), parallelStats.serial.Load())
	if parallelStats.kept.Load() == 0 || parallelStats.rerun.Load() == 0 {
		t.Error("the blocks should both keep speculative runs and run some again")
	}
}

// TestParallelValidationCatches shows the differential test can fail: with
// the committer's validation switched off (every speculative run taken as
// it is), blocks with conflicts come out wrong and the comparison says so.
func TestParallelValidationCatches(t *testing.T) {
	c := newDiffChain(t)
	mutantSkipValidation = true
	defer func() { mutantSkipValidation = false }()
	seed := simnet.Seed(t)
	caught := 0
	for i := int64(0); i < 20 && caught == 0; i++ {
		block, st := c.randomBlock(t, seed+i)
		// Every transaction speculated on the pre-state first: the
		// conflicts are there whatever the scheduling of the machine.
		if err := c.diffApplyWith(block, st, Options{Parallel: true, Workers: 2, waitForWorkers: true, speculateFirst: true}); err != nil {
			if !strings.Contains(err.Error(), "parallel") && !strings.Contains(err.Error(), "differ") && !strings.Contains(err.Error(), "root") {
				t.Fatal(err)
			}
			caught++
		}
	}
	if caught == 0 {
		t.Fatal("validation switched off, yet 20 conflicting blocks matched sequential execution")
	}
}

// TestParallelEmptyTouchedInRevert: an existing empty account touched only
// inside a reverted frame stays (go-ethereum reverts the touch; RIPEMD-160
// excepted), touched in a frame that returns it is deleted (EIP-161), in
// both paths.
func TestParallelEmptyTouchedInRevert(t *testing.T) {
	c := newDiffChain(t)
	for _, e := range c.empties {
		c.mu.Lock()
		st := c.st.Copy()
		c.mu.Unlock()
		k := c.keys[0]
		from := crypto.PubkeyToAddress(k.PublicKey)
		n := st.GetNonce(from)
		sign := func(to common.Address, data []byte) *types.Transaction {
			tx := types.MustSignNewTx(k, c.exec.Signer(), &types.DynamicFeeTx{ChainID: c.spec.Config.ChainID, Nonce: n, To: &to, Gas: 200_000,
				GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: big.NewInt(1), Data: data})
			n++
			return tx
		}
		txs := []*types.Transaction{sign(c.tRevert, e.Bytes()), sign(c.fwd, evmtest.Forwarder.Pack("callTo", c.tRevert, e.Bytes())), sign(c.hot, evmtest.Counter.Pack("bump"))}
		res, err := c.exec.Build(chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1), st.Copy(), &listSource{txs})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.diffApply(res.Block, st, 2); err != nil {
			t.Fatal(err)
		}
		par, err := c.exec.WithOptions(Options{Parallel: true}).Apply(c.head, res.Block, st.Copy())
		if err != nil {
			t.Fatal(err)
		}
		// RIPEMD-160 is the exception go-ethereum keeps from mainnet's
		// history: its touch outlives the revert, and it is deleted.
		if e != ripemdAddr && !par.State.Exist(e) {
			t.Errorf("%s: empty account touched only in reverted frames was deleted", e.Hex())
		}
		// Touched in a frame that returns: deleted, both ways.
		n = st.GetNonce(from)
		txs = []*types.Transaction{sign(c.tKeep, e.Bytes()), sign(c.hot, evmtest.Counter.Pack("bump"))}
		res, err = c.exec.Build(chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1), st.Copy(), &listSource{txs})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.diffApply(res.Block, st, 2); err != nil {
			t.Fatal(err)
		}
		par, err = c.exec.WithOptions(Options{Parallel: true}).Apply(c.head, res.Block, st.Copy())
		if err != nil {
			t.Fatal(err)
		}
		if par.State.Exist(e) {
			t.Errorf("%s: empty account touched in a frame that returned was kept", e.Hex())
		}
	}
}
