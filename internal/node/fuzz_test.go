package node

import (
	"bytes"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/chain"
)

// gossipSeedTxs are signed transactions of every type the chain takes.
func gossipSeedTxs(t testing.TB) [][]byte {
	key, _ := crypto.HexToECDSA("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
	signer := types.LatestSignerForChainID(big.NewInt(1337))
	to := common.Address{0xaa}
	var out [][]byte
	for _, inner := range []types.TxData{
		&types.LegacyTx{Nonce: 0, GasPrice: big.NewInt(1), Gas: 21_000, To: &to, Value: big.NewInt(1)},
		&types.AccessListTx{ChainID: big.NewInt(1337), Nonce: 1, GasPrice: big.NewInt(1), Gas: 30_000, To: &to,
			AccessList: types.AccessList{{Address: to, StorageKeys: []common.Hash{{1}}}}},
		&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 2, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2), Gas: 21_000, To: &to, Data: []byte{1, 2, 3}},
		&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 3, GasFeeCap: big.NewInt(2), Gas: 60_000, Data: []byte{0x60, 0x00}},
	} {
		tx, err := types.SignNewTx(key, signer, inner)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := tx.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// FuzzGossipTxs: a msgTxs payload as a peer sends it. Whatever the bytes,
// decoding neither panics nor accepts more than maxGossipTxs; an accepted
// envelope is canonical (it re-encodes to the payload), and each
// transaction in it decodes or is refused by decodeRemoteTx, never above
// the chain's size bound, and re-encodes to its bytes (one transaction,
// one encoding, one hash).
func FuzzGossipTxs(f *testing.F) {
	txs := gossipSeedTxs(f)
	one, _ := rlp.EncodeToBytes(txs[:1])
	all, _ := rlp.EncodeToBytes(txs)
	f.Add(one)
	f.Add(all)
	f.Add([]byte{0xc0})
	f.Add([]byte{0xc1, 0x80})
	f.Add([]byte{0xc2, 0x81, 0x02})
	f.Add([]byte{0xf9, 0xff, 0xff})
	const maxBytes = chain.DefaultMaxTxBytes
	f.Fuzz(func(t *testing.T, payload []byte) {
		raws, err := decodeGossip(payload)
		if err != nil {
			if raws != nil {
				t.Fatal("transactions and an error")
			}
			return
		}
		if len(raws) > maxGossipTxs {
			t.Fatalf("%d transactions accepted, at most %d", len(raws), maxGossipTxs)
		}
		again, err := rlp.EncodeToBytes(raws)
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("accepted envelope re-encodes to %x (%v)", again, err)
		}
		for _, r := range raws {
			tx, err := decodeRemoteTx(r, maxBytes)
			if err != nil {
				continue
			}
			if len(r) > maxBytes {
				t.Fatalf("transaction of %d bytes accepted", len(r))
			}
			enc, err := tx.MarshalBinary()
			if err != nil || !bytes.Equal(enc, r) {
				t.Fatalf("transaction %x re-encodes to %x (%v)", r, enc, err)
			}
		}
	})
}

// FuzzHomeConfig: config.json as an operator (or a tool) writes it.
// Nothing panics; an accepted config is one JSON document, validates, and
// written back (as Write does) reads again to the same config.
func FuzzHomeConfig(f *testing.F) {
	good := HomeConfig{Name: "bank-node", Org: "bank", Genesis: "genesis.json", DataDir: "data", NodeKey: "node.key",
		TLSCert: "tls.crt", TLSKey: "tls.key", RPCAddr: "127.0.0.1:8545", P2PAddr: "0.0.0.0:30303", MetricsAddr: "127.0.0.1:9100",
		Peers:          []HomePeer{{Name: "a", Addr: "10.0.0.2:30303", ID: common.Address{1}}, {Addr: "[::1]:30304", ID: common.Address{2}}},
		LogLevel:       "debug",
		LogFormat:      "json",
		HTTPCorsDomain: []string{"https://console.example.org:8443"},
		WSOrigins:      []string{"*"},
	}
	b, _ := json.MarshalIndent(good, "", "  ")
	f.Add(b)
	good.Peers, good.HTTPCorsDomain, good.WSOrigins, good.MetricsAddr, good.LogLevel, good.LogFormat = nil, nil, nil, "", "", ""
	b, _ = json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`{"genesis":"g","dataDir":"d","nodeKey":"k","tlsCert":"c","tlsKey":"k","rpcAddr":"h:1","p2pAddr":"h:0","unknown":1}`))
	f.Add([]byte(`{"genesis":"g","dataDir":"d","nodeKey":"k","tlsCert":"c","tlsKey":"k","rpcAddr":"h:99999","p2pAddr":"h:0"}`))
	f.Add([]byte(`{"genesis":"g","dataDir":"d","nodeKey":"k","tlsCert":"c","tlsKey":"k","rpcAddr":"h:1","p2pAddr":"h:2","peers":[{"addr":"x:1"}]}`))
	f.Add([]byte(`{"genesis":"g","dataDir":"d","nodeKey":"k","tlsCert":"c","tlsKey":"k","rpcAddr":"h:1","p2pAddr":"h:2","wsOrigins":["ftp://x"]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseHomeConfig(data)
		if err != nil {
			if c != nil {
				t.Fatal("a config and an error")
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted a config that is not one JSON document: %q", data)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		out, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			t.Fatalf("marshal an accepted config: %v", err)
		}
		c2, err := parseHomeConfig(out)
		if err != nil {
			t.Fatalf("a written config does not read again: %v\n%s", err, out)
		}
		// An empty list and no list mean the same (none), and a written
		// config leaves both out: compare what is written.
		out2, err := json.MarshalIndent(c2, "", "  ")
		if err != nil {
			t.Fatalf("marshal a config read again: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("config changed through a write and a read:\n%s\n%s", out, out2)
		}
	})
}
