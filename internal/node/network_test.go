package node

import (
	"context"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/freeport"
	"github.com/charter-ledger/charter/internal/privacy"
)

// freePortBase returns a port p such that p, p+1, ..., p+n-1 are free on
// 127.0.0.1 right now (node i of a network uses p+i).
func freePortBase(t *testing.T, n int) int {
	t.Helper()
	base, err := freeport.Base(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

type netNode struct {
	*Node
	home   string
	client *ethclient.Client
}

// startNetwork writes a network of n validators with InitNetwork and runs
// every node in this process, linked over real mTLS on 127.0.0.1.
func startNetwork(t *testing.T, engine string, n int) []*netNode {
	t.Helper()
	return startNetworkWith(t, engine, n, 0, nil)
}

// startNetworkObservers is startNetwork with observers after the
// validators (InitOptions.Observers).
func startNetworkObservers(t *testing.T, engine string, n, observers int) []*netNode {
	t.Helper()
	return startNetworkWith(t, engine, n, observers, nil)
}

// startNetworkParams is startNetwork with the engine's genesis parameters.
func startNetworkParams(t *testing.T, engine string, n int, params json.RawMessage) []*netNode {
	t.Helper()
	return startNetworkWith(t, engine, n, 0, params)
}

func startNetworkWith(t *testing.T, engine string, n, observers int, params json.RawMessage) []*netNode {
	t.Helper()
	dir := t.TempDir()
	total := n + observers
	_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: n, Observers: observers, Engine: engine, DevAccounts: true, BlockTimeMs: 200,
		RPCPort: freePortBase(t, total), P2PPort: freePortBase(t, total), MetricsPort: freePortBase(t, total), ConsensusParams: params})
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*netNode
	for _, in := range inits {
		nodes = append(nodes, startHomeNode(t, in.Home, in.Name, nil))
	}
	return nodes
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNetworkEngines runs a small network of each engine in one process:
// peers connect over mTLS, transactions sent to any node reach a block,
// and every node commits the same blocks.
func TestNetworkEngines(t *testing.T) {
	for _, engine := range []string{"raft", "bft", "poa"} {
		t.Run(engine, func(t *testing.T) {
			n := 3
			if engine == "bft" {
				n = 4
			}
			nodes := startNetwork(t, engine, n)
			waitUntil(t, 20*time.Second, "every node connected to every other", func() bool {
				for _, nd := range nodes {
					if nd.PeerCount() != n-1 {
						return false
					}
				}
				return true
			})
			accts, _ := chain.DevAccounts(n)
			signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
			to := common.HexToAddress("0xC0FFEE")
			var hashes []common.Hash
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// Each sender submits to another node, so every tx travels.
			for i, nd := range nodes {
				for nonce := uint64(0); nonce < 5; nonce++ {
					tx := types.MustSignNewTx(accts[i].Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID),
						Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
					if err := nd.client.SendTransaction(ctx, tx); err != nil {
						t.Fatal(err)
					}
					hashes = append(hashes, tx.Hash())
				}
			}
			for _, nd := range nodes {
				for _, h := range hashes {
					waitUntil(t, 30*time.Second, "receipt of "+h.Hex()+" on every node", func() bool {
						r, err := nd.client.TransactionReceipt(ctx, h)
						return err == nil && r.Status == types.ReceiptStatusSuccessful
					})
				}
			}
			// Same block at every height every node has.
			low := ^uint64(0)
			for _, nd := range nodes {
				low = min(low, nd.Chain().Head().Number.Uint64())
			}
			for h := uint64(1); h <= low; h++ {
				want := nodes[0].Ledger().HeaderByNumber(h).Hash()
				for i, nd := range nodes[1:] {
					if got := nd.Ledger().HeaderByNumber(h).Hash(); got != want {
						t.Fatalf("block %d: node%d has %s, node0 %s", h, i+1, got, want)
					}
				}
			}
			bal, err := nodes[0].client.BalanceAt(ctx, to, nil)
			if err != nil || bal.Int64() != int64(len(hashes)) {
				t.Fatalf("recipient balance %v (%v), want %d", bal, err, len(hashes))
			}
		})
	}
}

// TestNodeHomeErrorsNameTheField: a bad home config is refused at load,
// naming the field.
func TestNodeHomeErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	_, inits, err := InitNetwork(InitOptions{Dir: dir, Validators: 2, Engine: "raft", RPCPort: 20000, P2PPort: 21000, MetricsPort: 22000})
	if err != nil {
		t.Fatal(err)
	}
	home := inits[0].Home
	// A new network seals private payloads in sessions.
	if spec, err := chain.LoadSpec(filepath.Join(dir, "genesis.json")); err != nil || spec.PrivacyScheme() != privacy.SchemeHybridSession {
		t.Fatalf("the genesis init writes: %v, privacy envelope %v, want hybrid-session", err, spec.PrivacyEnvelope)
	}
	good, err := os.ReadFile(filepath.Join(home, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, field string }{
		{`"rpcAddr": "127.0.0.1:20000"`, `"rpcAddr": "nowhere"`, "rpcAddr"},
		{`"p2pAddr": "127.0.0.1:21000"`, `"p2pAddr": ""`, "p2pAddr"},
		{`"nodeKey": "nodekey"`, `"nodeKey": "nodekey", "colour": 1`, "colour"},
		{`"addr": "127.0.0.1:21001"`, `"addr": "127.0.0.1"`, "peers[0].addr"},
	} {
		bad := strings.Replace(string(good), c.from, c.to, 1)
		if bad == string(good) {
			t.Fatalf("case %s: %q not in the config", c.field, c.from)
		}
		if err := os.WriteFile(filepath.Join(home, ConfigFile), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadHomeConfig(home); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want one naming the field", c.field, err)
		}
	}
	// A second init into the same folder is refused.
	if _, _, err := InitNetwork(InitOptions{Dir: dir, Validators: 2, Engine: "raft"}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("second init: %v", err)
	}
	// Key files are 0600.
	for _, f := range []string{"nodekey", "tls/node.key"} {
		st, err := os.Stat(filepath.Join(home, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want mode 0600", f, st.Mode(), err)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "orgs", "org0", "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v", err)
	}
}

func TestRemoteSetForgetsTheOldest(t *testing.T) {
	var r remoteSet
	r.init(3)
	h := func(i byte) common.Hash { return common.Hash{i} }
	for i := byte(1); i <= 4; i++ {
		r.add(h(i))
	}
	r.add(h(4)) // no double entry
	if r.has(h(1)) || !r.has(h(2)) || !r.has(h(4)) || len(r.set) != 3 {
		t.Fatalf("set %v", r.set)
	}
}

// TestGossipSharesMessages: transactions submitted one request each, in
// quick succession, leave the node in fewer gossip messages than there are
// transactions (NetworkConfig.GossipLinger), and every one reaches every
// peer's block.
func TestGossipSharesMessages(t *testing.T) {
	nodes := startNetwork(t, "bft", 4)
	waitUntil(t, 20*time.Second, "every node connected to every other", func() bool {
		for _, nd := range nodes {
			if nd.PeerCount() != 3 {
				return false
			}
		}
		return true
	})
	accts, _ := chain.DevAccounts(1)
	signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
	to := common.HexToAddress("0xC0FFEE")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := nodes[0].net.tr.Stats().Types[msgTxs].MsgsOut
	const n = 40
	var last common.Hash
	for nonce := uint64(0); nonce < n; nonce++ {
		tx := types.MustSignNewTx(accts[0].Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID),
			Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
		if err := nodes[0].client.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		last = tx.Hash()
	}
	for _, nd := range nodes {
		waitUntil(t, 30*time.Second, "the last transaction final on every node", func() bool {
			r, err := nd.client.TransactionReceipt(ctx, last)
			return err == nil && r.Status == types.ReceiptStatusSuccessful
		})
	}
	sent := nodes[0].net.tr.Stats().Types[msgTxs].MsgsOut - before
	// One message a transaction to each of 3 peers would be 120.
	if sent == 0 || sent > 3*n/2 {
		t.Fatalf("%d transactions left node0 in %d gossip messages (3 peers): want fewer than one a transaction", n, sent)
	}
	t.Logf("%d transactions, %d gossip messages to 3 peers", n, sent)
}
