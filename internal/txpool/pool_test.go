package txpool

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"
)

type fakeState struct {
	nonces   map[common.Address]uint64
	balances map[common.Address]*uint256.Int
}

func (f *fakeState) GetNonce(a common.Address) uint64 { return f.nonces[a] }

func (f *fakeState) GetState(common.Address, common.Hash) common.Hash { return common.Hash{} }
func (f *fakeState) GetBalance(a common.Address) *uint256.Int {
	if b := f.balances[a]; b != nil {
		return b
	}
	return new(uint256.Int)
}

var chainID = big.NewInt(1337)

func newTestPool(cfg Config, keys ...*ecdsa.PrivateKey) (*Pool, *fakeState) {
	st := &fakeState{nonces: map[common.Address]uint64{}, balances: map[common.Address]*uint256.Int{}}
	for _, k := range keys {
		st.balances[crypto.PubkeyToAddress(k.PublicKey)] = uint256.NewInt(1e18)
	}
	cfg.ChainID = chainID
	if cfg.MaxTxBytes == 0 {
		cfg.MaxTxBytes = 128 * 1024
	}
	if cfg.TxGasLimit == 0 {
		cfg.TxGasLimit = 16_777_216
	}
	return New(cfg, types.LatestSignerForChainID(chainID), st), st
}

func tx(key *ecdsa.PrivateKey, nonce uint64, feeCap int64) *types.Transaction {
	to := common.Address{0xaa}
	return types.MustSignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(feeCap), GasTipCap: big.NewInt(feeCap), To: &to, Value: big.NewInt(1)})
}

func TestPendingAndQueued(t *testing.T) {
	k, _ := crypto.GenerateKey()
	p, _ := newTestPool(Config{}, k)
	for _, n := range []uint64{0, 1, 3, 5} {
		if err := p.Add(tx(k, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if pending, queued := p.Stats(); pending != 2 || queued != 2 {
		t.Fatalf("pending %d queued %d, want 2 and 2", pending, queued)
	}
	if err := p.Add(tx(k, 2, 1)); err != nil {
		t.Fatal(err)
	}
	if pending, queued := p.Stats(); pending != 4 || queued != 1 {
		t.Fatalf("after filling the gap: pending %d queued %d, want 4 and 1", pending, queued)
	}
	if n := p.Nonce(crypto.PubkeyToAddress(k.PublicKey)); n != 4 {
		t.Fatalf("pending nonce %d, want 4", n)
	}
}

func TestResetDropsIncludedAndPromotes(t *testing.T) {
	k, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(k.PublicKey)
	p, st := newTestPool(Config{}, k)
	for _, n := range []uint64{0, 1, 2, 4} {
		if err := p.Add(tx(k, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	// A block included nonces 0..3 (3 from elsewhere): 4 becomes pending.
	st.nonces[addr] = 4
	p.Reset(st, nil)
	if pending, queued := p.Stats(); pending != 1 || queued != 0 {
		t.Fatalf("pending %d queued %d, want 1 and 0", pending, queued)
	}
	if err := p.Add(tx(k, 3, 1)); err == nil || !errors.Is(err, ErrNonceTooLow) {
		t.Fatalf("old nonce: %v", err)
	}
	// A transaction the builder found unexecutable leaves with its successors.
	p.Add(tx(k, 5, 1))
	p.Reset(st, []*types.Transaction{tx(k, 4, 1)})
	if pending, queued := p.Stats(); pending != 0 || queued != 0 {
		t.Fatalf("after drop: pending %d queued %d, want 0 and 0", pending, queued)
	}
}

func TestBoundsAndReplacement(t *testing.T) {
	k1, _ := crypto.GenerateKey()
	k2, _ := crypto.GenerateKey()
	p, _ := newTestPool(Config{AccountSlots: 3, GlobalSlots: 4}, k1, k2)
	for n := uint64(0); n < 3; n++ {
		if err := p.Add(tx(k1, n, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Add(tx(k1, 3, 10)); !errors.Is(err, ErrAccountLimit) {
		t.Fatalf("4th of one account: %v", err)
	}
	if err := p.Add(tx(k2, 0, 10)); err != nil {
		t.Fatal(err)
	}
	// The pool is full. k2, within its share of two, gets in and k1 (over
	// its share) loses its tail; a third from k2 would be over its share.
	if err := p.Add(tx(k2, 1, 10)); err != nil {
		t.Fatalf("5th in the pool, within its sender's share: %v", err)
	}
	if p.Get(tx(k1, 2, 10).Hash()) != nil {
		t.Fatal("k1's tail was not evicted")
	}
	if err := p.Add(tx(k2, 2, 10)); !errors.Is(err, ErrPoolFull) {
		t.Fatalf("5th in the pool, over its sender's share: %v", err)
	}
	if err := p.Add(tx(k1, 1, 10)); !errors.Is(err, ErrAlreadyKnown) {
		t.Fatalf("same transaction again: %v", err)
	}
	// A replacement must raise both caps by 10%; it takes no new slot.
	if err := p.Add(txValue(k1, 1, 10, 2)); !errors.Is(err, ErrReplaceUnderpriced) {
		t.Fatalf("replacement at the same price: %v", err)
	}
	if err := p.Add(txValue(k1, 1, 10, 2)); !errors.Is(err, ErrReplaceUnderpriced) {
		t.Fatalf("replacement at the same price again: %v", err)
	}
	old, repl := tx(k1, 1, 10), txValue(k1, 1, 11, 2)
	if err := p.Add(repl); err != nil {
		t.Fatalf("replacement +10%%: %v", err)
	}
	if p.Get(old.Hash()) != nil || p.Get(repl.Hash()) == nil {
		t.Fatal("the replaced transaction is still in the pool")
	}
	if pending, queued := p.Stats(); pending != 4 || queued != 0 {
		t.Fatalf("pending %d queued %d after replacement, want 4 and 0", pending, queued)
	}
}

func txValue(key *ecdsa.PrivateKey, nonce uint64, feeCap, value int64) *types.Transaction {
	to := common.Address{0xaa}
	return types.MustSignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(feeCap), GasTipCap: big.NewInt(feeCap), To: &to, Value: big.NewInt(value)})
}

func TestFundsCountEarlierTransactions(t *testing.T) {
	k, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(k.PublicKey)
	p, st := newTestPool(Config{}, k)
	// Each costs 21000*1 + value; the balance covers two of them.
	st.balances[addr] = uint256.NewInt(2 * (21000 + 1000))
	if err := p.Add(txValue(k, 0, 1, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(txValue(k, 1, 1, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := p.Add(txValue(k, 2, 1, 1000)); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("third transaction: %v", err)
	}
}

func TestSourceTakesTurnsInArrivalOrder(t *testing.T) {
	a, _ := crypto.GenerateKey()
	b, _ := crypto.GenerateKey()
	p, _ := newTestPool(Config{}, a, b)
	// Arrival: a0, b0, a1, b1, a2.
	for _, x := range []*types.Transaction{tx(a, 0, 1), tx(b, 0, 1), tx(a, 1, 1), tx(b, 1, 1), tx(a, 2, 1)} {
		if err := p.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	src := p.Pending(0)
	var order []string
	for x := src.Peek(); x != nil; x = src.Peek() {
		from, _ := types.Sender(p.signer, x)
		name := "a"
		if from == crypto.PubkeyToAddress(b.PublicKey) {
			name = "b"
		}
		order = append(order, name+string(rune('0'+x.Nonce())))
		if name == "b" && x.Nonce() == 1 {
			src.Skip() // drops b's rest, of which there is none
			continue
		}
		src.Shift()
	}
	want := []string{"a0", "b0", "a1", "b1", "a2"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

func TestValidateBasicRefusesMalformed(t *testing.T) {
	k, _ := crypto.GenerateKey()
	p, _ := newTestPool(Config{}, k)
	to := common.Address{1}
	blob := types.MustSignNewTx(k, types.LatestSignerForChainID(chainID), &types.BlobTx{ChainID: uint256.NewInt(1337), Gas: 21000, To: to, BlobHashes: []common.Hash{{1}}})
	if _, err := p.ValidateBasic(blob); !errors.Is(err, ErrTxType) {
		t.Fatalf("blob transaction: %v", err)
	}
	if _, err := p.ValidateBasic(types.MustSignNewTx(k, types.HomesteadSigner{}, &types.LegacyTx{Gas: 21000, To: &to, GasPrice: big.NewInt(1)})); !errors.Is(err, ErrUnprotected) {
		t.Fatalf("unprotected: %v", err)
	}
}

// AddSigned takes the sender it is given (it recovers nothing) and keeps
// it in the transaction as a recovered one; every check of Add still runs.
func TestAddSignedKeepsTheSenderAndEveryCheck(t *testing.T) {
	k, _ := crypto.GenerateKey()
	poor, _ := crypto.GenerateKey()
	from := crypto.PubkeyToAddress(k.PublicKey)
	var permitted []common.Address
	p, st := newTestPool(Config{Permit: func(_ StateReader, a common.Address, _ *types.Transaction) error {
		permitted = append(permitted, a)
		if a == (common.Address{0xbb}) {
			return errors.New("account 0xbb may not write")
		}
		return nil
	}}, k)

	t0 := tx(k, 0, 1)
	if err := p.AddSigned(t0, from); err != nil {
		t.Fatal(err)
	}
	if got, ok := p.Sender(t0.Hash()); !ok || got != from {
		t.Fatalf("pool's sender %v %v, want %v", got, ok, from)
	}
	// Read later with another signer of the chain (as the executor does).
	if got, err := types.Sender(types.LatestSignerForChainID(chainID), t0); err != nil || got != from {
		t.Fatalf("sender read later %v %v, want %v", got, err, from)
	}
	if err := p.AddSigned(t0, from); !errors.Is(err, ErrAlreadyKnown) {
		t.Fatalf("again: %v", err)
	}

	// Taken, not recovered: a transaction of k with another address given
	// is that address's (the caller vouches for it).
	other := common.Address{0xcc}
	st.balances[other] = st.balances[from]
	t1 := types.MustSignNewTx(k, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: 0, Gas: 21000, GasFeeCap: big.NewInt(2), GasTipCap: big.NewInt(2), To: &other, Value: big.NewInt(1)})
	if err := p.AddSigned(t1, other); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Sender(t1.Hash()); got != other {
		t.Fatalf("sender %v, want the given %v", got, other)
	}

	// The checks of Add: permission, nonce, balance, chain id, the shape.
	if err := p.AddSigned(tx(k, 5, 1), common.Address{0xbb}); err == nil || err.Error() != "account 0xbb may not write" {
		t.Fatalf("permission: %v", err)
	}
	st.nonces[from] = 3
	p.Reset(st, nil)
	if err := p.AddSigned(tx(k, 1, 1), from); !errors.Is(err, ErrNonceTooLow) {
		t.Fatalf("nonce: %v", err)
	}
	if err := p.AddSigned(tx(poor, 0, 1), crypto.PubkeyToAddress(poor.PublicKey)); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("balance: %v", err)
	}
	otherChain := types.MustSignNewTx(k, types.LatestSignerForChainID(big.NewInt(1)), &types.DynamicFeeTx{
		ChainID: big.NewInt(1), Nonce: 3, Gas: 21000, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(1), To: &other})
	if err := p.AddSigned(otherChain, from); !errors.Is(err, ErrChainID) {
		t.Fatalf("chain id: %v", err)
	}
	low := types.MustSignNewTx(k, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: 3, Gas: 20000, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(1), To: &other})
	if err := p.AddSigned(low, from); !errors.Is(err, ErrIntrinsicGas) {
		t.Fatalf("intrinsic gas: %v", err)
	}
	if len(permitted) == 0 || permitted[0] != from {
		t.Fatalf("permission asked for %v", permitted)
	}
}
