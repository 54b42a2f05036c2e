package index

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/chaindata"
)

var (
	testChainID = big.NewInt(4242)
	tokenAddr   = common.HexToAddress("0x00000000000000000000000000000000000000c1")
	tokenABI    = mustABI(`[
	 {"type":"event","name":"Transfer","inputs":[{"name":"from","type":"address","indexed":true},{"name":"to","type":"address","indexed":true},{"name":"value","type":"uint256","indexed":false}]},
	 {"type":"event","name":"NoteAdded","inputs":[{"name":"text","type":"string","indexed":false},{"name":"blob","type":"bytes","indexed":false},{"name":"ok","type":"bool","indexed":false},{"name":"list","type":"uint256[]","indexed":false},{"name":"tag","type":"string","indexed":true}]}
	]`)
)

func mustABI(s string) *abi.ABI {
	a, err := abi.JSON(strings.NewReader(s))
	if err != nil {
		panic(err)
	}
	return &a
}

// chain is a generated chain of final blocks with receipts.
type chain struct {
	blocks    []*types.Block
	raw       [][]byte
	receipts  []types.Receipts
	logs      int // total logs
	txs       int
	transfers int // Transfer logs of tokenAddr
}

var chainCache sync.Map

// genChain builds a deterministic chain of n+1 blocks (genesis included),
// each with txPer transactions: value transfers, token calls whose
// receipts carry Transfer and NoteAdded logs, a contract creation now and
// then, and one unsigned transaction per block.
func genChain(tb testing.TB, n, txPer int, variant byte) *chain {
	key := fmt.Sprint(n, txPer, variant)
	if c, ok := chainCache.Load(key); ok {
		return c.(*chain)
	}
	signer := types.LatestSignerForChainID(testChainID)
	keys := make([]*ecdsa.PrivateKey, 8)
	addrs := make([]common.Address, len(keys))
	for i := range keys {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte{variant, byte(i)}))
		if err != nil {
			tb.Fatal(err)
		}
		keys[i], addrs[i] = k, crypto.PubkeyToAddress(k.PublicKey)
	}
	nonces := make([]uint64, len(keys))
	transfer := tokenABI.Events["Transfer"]
	note := tokenABI.Events["NoteAdded"]
	c := &chain{}
	var parent common.Hash
	for num := 0; num <= n; num++ {
		var txs types.Transactions
		var rs types.Receipts
		logIndex := uint(0)
		per := txPer
		if num == 0 {
			per = 0
		}
		for i := 0; i < per; i++ {
			s := (num + i) % len(keys)
			to := addrs[(s+1+i%3)%len(keys)]
			var data []byte
			var logs []*types.Log
			var toPtr *common.Address = &to
			switch {
			case i == per-1 && num%2 == 1: // unsigned system transaction
			case i%3 == 1:
				toPtr = &tokenAddr
				d, _ := transfer.Inputs.NonIndexed().Pack(big.NewInt(int64(num*1000 + i)))
				logs = append(logs, &types.Log{Address: tokenAddr, Topics: []common.Hash{transfer.ID, common.BytesToHash(addrs[s].Bytes()), common.BytesToHash(to.Bytes())}, Data: d})
				if i%6 == 1 {
					d2, _ := note.Inputs.NonIndexed().Pack(fmt.Sprintf("note %d", num), []byte{byte(num), 1, 2}, num%2 == 0, []*big.Int{big.NewInt(1), big.NewInt(int64(num))})
					logs = append(logs, &types.Log{Address: tokenAddr, Topics: []common.Hash{note.ID, crypto.Keccak256Hash([]byte("tag"))}, Data: d2})
				}
				data = []byte{0xa9, 0x05, 0x9c, 0xbb, byte(i)}
			case i%7 == 5 && num%5 == 0:
				toPtr = nil
				data = []byte{0x60, 0x80, byte(num)}
			}
			var tx *types.Transaction
			value := new(big.Int).Add(new(big.Int).Exp(big.NewInt(10), big.NewInt(20), nil), big.NewInt(int64(num*100+i)))
			if i == per-1 && num%2 == 1 {
				tx = types.NewTx(&types.LegacyTx{Nonce: uint64(num), To: &to, Gas: 21000, GasPrice: big.NewInt(0), Value: big.NewInt(0)})
			} else {
				var err error
				tx, err = types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: testChainID, Nonce: nonces[s], GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2),
					Gas: 100000, To: toPtr, Value: value, Data: data}), signer, keys[s])
				if err != nil {
					tb.Fatal(err)
				}
				nonces[s]++
			}
			r := &types.Receipt{Type: tx.Type(), Status: types.ReceiptStatusSuccessful, GasUsed: 21000 + uint64(len(data))*16, Logs: logs}
			if i%11 == 10 {
				r.Status = types.ReceiptStatusFailed
			}
			if toPtr == nil {
				r.ContractAddress = crypto.CreateAddress(addrs[s], tx.Nonce())
			}
			r.CumulativeGasUsed = r.GasUsed
			if len(rs) > 0 {
				r.CumulativeGasUsed += rs[len(rs)-1].CumulativeGasUsed
			}
			r.Bloom = types.CreateBloom(r)
			txs = append(txs, tx)
			rs = append(rs, r)
		}
		gasUsed := uint64(0)
		if len(rs) > 0 {
			gasUsed = rs[len(rs)-1].CumulativeGasUsed
		}
		h := &types.Header{ParentHash: parent, Number: big.NewInt(int64(num)), Time: 1_700_000_000 + uint64(num), GasLimit: 30_000_000, GasUsed: gasUsed,
			Coinbase: addrs[num%len(addrs)], Difficulty: big.NewInt(0), Extra: []byte{variant}}
		b := types.NewBlock(h, &types.Body{Transactions: txs}, rs, trie.NewStackTrie(nil))
		for i, r := range rs {
			r.BlockHash, r.BlockNumber, r.TxHash, r.TransactionIndex = b.Hash(), b.Number(), txs[i].Hash(), uint(i)
			for _, l := range r.Logs {
				l.BlockHash, l.BlockNumber, l.TxHash, l.TxIndex, l.Index = b.Hash(), b.NumberU64(), txs[i].Hash(), uint(i), logIndex
				l.BlockTimestamp = b.Time()
				logIndex++
				c.logs++
				if l.Topics[0] == transfer.ID {
					c.transfers++
				}
			}
		}
		raw, err := rlp.EncodeToBytes(b)
		if err != nil {
			tb.Fatal(err)
		}
		c.blocks, c.raw, c.receipts = append(c.blocks, b), append(c.raw, raw), append(c.receipts, rs)
		c.txs += len(txs)
		parent = b.Hash()
	}
	chainCache.Store(key, c)
	return c
}

// fakeSource serves a chain's blocks up to a visible head.
type fakeSource struct {
	c     *chain
	head  atomic.Uint64
	fresh bool          // decode blocks from RLP at every read (no cached senders), as a ledger would
	delay time.Duration // per block read
}

func newSource(c *chain, head uint64) *fakeSource {
	s := &fakeSource{c: c}
	s.head.Store(head)
	return s
}

func (s *fakeSource) Head() *types.Header { return s.c.blocks[s.head.Load()].Header() }

func (s *fakeSource) BlockByNumber(n uint64) *types.Block {
	if n > s.head.Load() {
		return nil
	}
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if s.fresh {
		var b types.Block
		if err := rlp.DecodeBytes(s.c.raw[n], &b); err != nil {
			panic(err)
		}
		return &b
	}
	return s.c.blocks[n]
}

func (s *fakeSource) Receipts(n uint64) (types.Receipts, error) {
	if n > s.head.Load() {
		return nil, fmt.Errorf("no block %d", n)
	}
	return s.c.receipts[n], nil
}

// fakeContracts is a registry whose contents the test changes.
type fakeContracts struct {
	mu  sync.Mutex
	all []chaindata.Contract
	gen uint64
}

func (f *fakeContracts) register(c chaindata.Contract) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all = append(f.all, c)
	f.gen++
}

func (f *fakeContracts) ByAddress(a common.Address) (chaindata.Contract, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.all) - 1; i >= 0; i-- {
		if f.all[i].Address == a {
			return f.all[i], true
		}
	}
	return chaindata.Contract{}, false
}

func (f *fakeContracts) ByName(n string) (chaindata.Contract, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.all) - 1; i >= 0; i-- {
		if f.all[i].Name == n {
			return f.all[i], true
		}
	}
	return chaindata.Contract{}, false
}

func (f *fakeContracts) All() []chaindata.Contract {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chaindata.Contract(nil), f.all...)
}

func (f *fakeContracts) Generation() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen
}

func crypto256(s string) []byte { return crypto.Keccak256([]byte(s)) }
