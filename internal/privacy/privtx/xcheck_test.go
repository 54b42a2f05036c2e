package privtx

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestCrossCheckWeb3jsQuorum signs seeded random transactions here and
// with web3js-quorum 22.4.0 itself (testdata/xcheck/xcheck.js under node)
// and compares the bytes, hashes, senders and group ids. It needs node and
// the client installed, so it runs only when asked:
//
//	(cd internal/privacy/privtx/testdata/xcheck && npm install --ignore-scripts)
//	CHARTER_PRIVTX_XCHECK=1 go test -run CrossCheck ./internal/privacy/privtx/
func TestCrossCheckWeb3jsQuorum(t *testing.T) {
	if os.Getenv("CHARTER_PRIVTX_XCHECK") == "" {
		t.Skip("set CHARTER_PRIVTX_XCHECK=1 (after npm install in testdata/xcheck) to compare with web3js-quorum")
	}
	dir := filepath.Join("testdata", "xcheck")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "web3js-quorum")); err != nil {
		t.Fatalf("web3js-quorum is not installed: run npm install --ignore-scripts in %s", dir)
	}

	type jsCase struct {
		ChainID        int64    `json:"chainId"`
		PrivateKey     string   `json:"privateKey"`
		Nonce          string   `json:"nonce"`
		GasPrice       string   `json:"gasPrice"`
		GasLimit       string   `json:"gasLimit"`
		To             string   `json:"to,omitempty"`
		Value          string   `json:"value"`
		Data           string   `json:"data"`
		PrivateFrom    string   `json:"privateFrom"`
		PrivateFor     []string `json:"privateFor,omitempty"`
		PrivacyGroupID string   `json:"privacyGroupId,omitempty"`
		Restriction    string   `json:"restriction"`
	}
	type jsResult struct {
		Raw, Hash, Sender, GroupID string
	}

	const n = 300
	rng := rand.New(rand.NewPCG(1, 2))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	randInt := func(maxBytes int) *big.Int { return new(big.Int).SetBytes(randBytes(rng.IntN(maxBytes + 1))) }
	b64 := base64.StdEncoding.EncodeToString
	var cases []jsCase
	var txs []*Tx
	var keys [][]byte
	for i := 0; i < n; i++ {
		tx := &Tx{
			Nonce:       randInt(8).Uint64(),
			GasPrice:    randInt(32),
			Gas:         randInt(8).Uint64(),
			Value:       randInt(32),
			Data:        randBytes(rng.IntN(300)),
			PrivateFrom: randBytes(KeySize),
			// Restricted alone: the client reads the string "unrestricted"
			// as base64 (twelve letters of its alphabet) and signs 9 bytes
			// of garbage for it.
			Restriction: Restricted,
		}
		if len(tx.Data) == 0 {
			tx.Data = nil
		}
		if rng.IntN(4) > 0 {
			to := common.BytesToAddress(randBytes(20))
			tx.To = &to
		}
		c := jsCase{
			ChainID:     1 + rng.Int64N(1<<40),
			PrivateKey:  hexutil.Encode(randBytes(32))[2:],
			Nonce:       hexutil.EncodeUint64(tx.Nonce),
			GasPrice:    hexutil.EncodeBig(tx.GasPrice),
			GasLimit:    hexutil.EncodeUint64(tx.Gas),
			Value:       hexutil.EncodeBig(tx.Value),
			Data:        hexutil.Encode(tx.Data),
			PrivateFrom: b64(tx.PrivateFrom),
			Restriction: tx.Restriction,
		}
		if tx.To != nil {
			c.To = tx.To.Hex()
		}
		if i%2 == 0 {
			tx.PrivacyGroupID = randBytes(KeySize)
			c.PrivacyGroupID = b64(tx.PrivacyGroupID)
		} else {
			for j := 1 + rng.IntN(6); j > 0; j-- {
				k := randBytes(KeySize)
				if rng.IntN(5) == 0 {
					k = tx.PrivateFrom // the sender among the recipients
				}
				tx.PrivateFor = append(tx.PrivateFor, k)
				c.PrivateFor = append(c.PrivateFor, b64(k))
			}
		}
		cases = append(cases, c)
		txs = append(txs, tx)
		keys = append(keys, hexutil.MustDecode("0x"+c.PrivateKey))
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "xcheck.js")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node xcheck.js: %v", err)
	}
	var results []jsResult
	if err := json.Unmarshal(out, &results); err != nil || len(results) != n {
		t.Fatalf("node answered %d results (%v)", len(results), err)
	}
	for i, tx := range txs {
		key, err := crypto.ToECDSA(keys[i])
		if err != nil {
			t.Fatal(err)
		}
		chainID := big.NewInt(cases[i].ChainID)
		if err := SignTx(tx, chainID, key); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		raw, err := tx.Encode()
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		r := results[i]
		if hexutil.Encode(raw) != r.Raw {
			t.Fatalf("case %d: bytes differ\n go %x\n js %s", i, raw, r.Raw)
		}
		if tx.Hash().Hex() != r.Hash {
			t.Errorf("case %d: hash %s, client %s", i, tx.Hash().Hex(), r.Hash)
		}
		if from, err := tx.Sender(chainID); err != nil || from != common.HexToAddress(r.Sender) {
			t.Errorf("case %d: sender %s (%v), client %s", i, from, err, r.Sender)
		}
		if g := tx.GroupID(); b64(g[:]) != r.GroupID {
			t.Errorf("case %d: group id %s, client %s", i, b64(g[:]), r.GroupID)
		}
		if d, err := Decode(raw); err != nil || !sameTx(d, tx) {
			t.Errorf("case %d: the client's bytes do not decode to the transaction: %v", i, err)
		}
	}
}
