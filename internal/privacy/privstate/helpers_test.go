package privstate

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// Groups the tests use.
var (
	groupA = common.HexToHash("0xa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1")
	groupB = common.HexToHash("0xb2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2")
)

// secret is the distinctive plaintext a private transaction carries (in
// its calldata, then in the contract's storage and a log): after a purge,
// no byte of any file under the store may hold it.
var secret = []byte("CHARTER-PRIVATE-SECRET-9c41e7d2!")

// The test contracts are assembled by hand (runtime code after a standard
// creation stub) so that the bytes they store and log are exactly known.
var (
	// recorderRuntime stores calldata word 0 in slot 0 and logs the whole
	// calldata (LOG0):
	// PUSH1 0 CALLDATALOAD PUSH1 0 SSTORE
	// CALLDATASIZE PUSH1 0 PUSH1 0 CALLDATACOPY
	// CALLDATASIZE PUSH1 0 LOG0 STOP
	recorderRuntime = common.FromHex("600035600055" + "366000600037" + "366000a0" + "00")
	// loggerRuntime emits calldata word 0 empty logs (LOG0) in a loop:
	// PUSH1 0 CALLDATALOAD; loop: JUMPDEST DUP1 ISZERO PUSH1 end JUMPI
	// PUSH1 0 PUSH1 0 LOG0 PUSH1 1 SWAP1 SUB PUSH1 loop JUMP; end: JUMPDEST STOP
	loggerRuntime = common.FromHex("600035" + "5b8015601557" + "60006000a0" + "60019003" + "600356" + "5b00")
)

// creation returns code that deploys runtime (shorter than 256 bytes):
// PUSH1 len DUP1 PUSH1 11 PUSH1 0 CODECOPY PUSH1 0 RETURN, then runtime.
func creation(runtime []byte) []byte {
	if len(runtime) > 255 {
		panic("runtime too long for the creation stub")
	}
	stub := []byte{0x60, byte(len(runtime)), 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3}
	return append(stub, runtime...)
}

// testSpec is the development chain's spec.
func testSpec(t testing.TB) *chain.Spec {
	t.Helper()
	spec, err := chain.DevSpec(1337, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// pubChain is a public chain of headers only: the blocks that carry
// markers. It answers BLOCKHASH for the store.
type pubChain struct {
	spec    *chain.Spec
	headers []*types.Header // headers[n] is block n
}

func newPubChain(spec *chain.Spec, n int) *pubChain {
	c := &pubChain{spec: spec}
	c.headers = append(c.headers, spec.GenesisHeader(types.EmptyRootHash))
	for i := 1; i <= n; i++ {
		parent := c.headers[i-1]
		c.headers = append(c.headers, chain.NewHeader(spec, parent, common.Address{0xc0}, parent.Time+1))
	}
	return c
}

func (c *pubChain) HeaderByNumber(n uint64) *types.Header {
	if n < uint64(len(c.headers)) {
		return c.headers[n]
	}
	return nil
}

func (c *pubChain) at(n uint64) *types.Header { return c.headers[n] }

// testChainID is the chain id of testSpec.
var testChainID = big.NewInt(1337)

// account is a private sender with its own nonce count.
type account struct {
	key   *ecdsa.PrivateKey
	addr  common.Address
	from  []byte // privateFrom: its organization's privacy identity
	nonce uint64
}

// newAccount derives a fixed key from seed, so that a child process of a
// test makes the same transactions.
func newAccount(t testing.TB, seed byte) *account {
	t.Helper()
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte{'p', 'r', 'i', 'v', seed}))
	if err != nil {
		t.Fatal(err)
	}
	return &account{key: k, addr: crypto.PubkeyToAddress(k.PublicKey), from: crypto.Keccak256([]byte{'o', 'r', 'g', seed})}
}

// body is the account's next private transaction, unsigned, for group A
// (the store leaves the group id to its caller). Private transactions may
// name any gas price: private execution charges none.
func (a *account) body(to *common.Address, gas uint64, data []byte) *privtx.Tx {
	return &privtx.Tx{Nonce: a.nonce, GasPrice: big.NewInt(1_000_000_000), Gas: gas, To: to, Value: new(big.Int), Data: data,
		PrivateFrom: a.from, PrivacyGroupID: groupA.Bytes(), Restriction: privtx.Restricted}
}

// tx signs the account's next private transaction as a payload carries it.
func (a *account) tx(t testing.TB, to *common.Address, gas uint64, data []byte) Tx {
	t.Helper()
	tx := signed(t, a.body(to, gas, data), a.key, testChainID)
	a.nonce++
	return tx
}

// signed signs ptx for chainID and encodes it as a payload carries it.
func signed(t testing.TB, ptx *privtx.Tx, key *ecdsa.PrivateKey, chainID *big.Int) Tx {
	t.Helper()
	if err := privtx.SignTx(ptx, chainID, key); err != nil {
		t.Fatal(err)
	}
	raw, err := ptx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return carried(raw)
}

// carried is the Tx of raw bytes, with a marker hash of its own derived
// from them (each test transaction stands for a marker of its own).
func carried(raw []byte) Tx {
	return Tx{Raw: raw, Marker: crypto.Keccak256Hash([]byte("marker"), raw)}
}

// txHash is the private transaction hash of tx: keccak256 of its bytes.
func txHash(tx Tx) common.Hash { return crypto.Keccak256Hash(tx.Raw) }

func (a *account) created(nonce uint64) common.Address { return crypto.CreateAddress(a.addr, nonce) }

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openStore(t testing.TB, dir string, c *pubChain, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, c.spec, c, opts, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustApply(t testing.TB, s *Store, group common.Hash, h *types.Header, txs ...Tx) *BlockResult {
	t.Helper()
	res, err := s.ApplyBlock(group, h, txs)
	if err != nil {
		t.Fatalf("apply block %d to group %s: %v", h.Number, group.TerminalString(), err)
	}
	return res
}

// mustSucceed checks that every receipt of a result ran and succeeded.
func mustSucceed(t testing.TB, res *BlockResult) {
	t.Helper()
	for i, r := range res.Receipts {
		if r.Rejected != "" || r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("block %d transaction %d: status %d, rejected %q, output %x", res.Number, i, r.Status, r.Rejected, r.Output)
		}
	}
}

// receiptText is a receipt in full, derived fields and private extras, to
// compare two nodes' receipts byte for byte.
func receiptText(t testing.TB, r *Receipt) string {
	t.Helper()
	inner, err := json.Marshal(r.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := json.Marshal(struct {
		Marker   common.Hash
		From     common.Address
		To       *common.Address
		Output   []byte
		Rejected string
	}{r.Marker, r.From, r.To, r.Output, r.Rejected})
	if err != nil {
		t.Fatal(err)
	}
	return string(inner) + string(extra)
}

// filesContaining lists the files under root whose bytes contain needle.
func filesContaining(t testing.TB, root string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, needle) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}
