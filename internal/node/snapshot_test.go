package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/snapshot"
)

// sendTransfers submits count transfers from key through nd and waits
// for the last receipt.
func sendTransfers(t *testing.T, nd *netNode, key *ecdsa.PrivateKey, count int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := nd.client.PendingNonceAt(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
	to := common.HexToAddress("0xC0FFEE")
	var last common.Hash
	for i := 0; i < count; i++ {
		tx := types.MustSignNewTx(key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID),
			Nonce: nonce + uint64(i), Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
		if err := nd.client.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		last = tx.Hash()
	}
	waitUntil(t, 60*time.Second, "receipt of "+last.Hex(), func() bool {
		r, err := nd.client.TransactionReceipt(ctx, last)
		return err == nil && r.Status == types.ReceiptStatusSuccessful
	})
}

// restartNode starts the node of home again (after Stop) in this process.
func restartNode(t *testing.T, home string) *netNode {
	t.Helper()
	return startHomeNode(t, home, "restarted", nil)
}

// startHomeNode runs the node of home in this process, its config edited.
func startHomeNode(t *testing.T, home, name string, edit func(*Config)) *netNode {
	t.Helper()
	hc, err := LoadHomeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test-node", name)
	}
	cfg, err := hc.NodeConfig(home, logger)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
	}
	nd, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	c, err := ethclient.Dial("http://" + nd.RPCAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); nd.Stop() })
	return &netNode{Node: nd, home: home, client: c}
}

func homeDataDir(t *testing.T, home string) string {
	hc, err := LoadHomeConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	return homePath(home, hc.DataDir)
}

// agreeFrom checks that every node has the same block at every height
// from..the lowest head.
func agreeFrom(t *testing.T, nodes []*netNode, from uint64) {
	t.Helper()
	low := ^uint64(0)
	for _, nd := range nodes {
		low = min(low, nd.Ledger().Head().Number.Uint64())
	}
	for h := from; h <= low; h++ {
		want := nodes[0].Ledger().HeaderByNumber(h).Hash()
		for i, nd := range nodes[1:] {
			if got := nd.Ledger().HeaderByNumber(h).Hash(); got != want {
				t.Fatalf("block %d: node%d has %s, node0 %s", h, i+1, got, want)
			}
		}
	}
}

// TestSnapshotExportImportJoinsBFT: a snapshot exported over a running
// bft node's API verifies against the genesis, and a validator whose data
// directory is replaced by it follows the network from its height.
func TestSnapshotExportImportJoinsBFT(t *testing.T) {
	nodes := startNetwork(t, "bft", 4)
	accts, _ := chain.DevAccounts(4)
	sendTransfers(t, nodes[0], accts[0].Key, 5)

	resp, err := http.Get("http://" + nodes[0].RPCAddr() + SnapshotPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("export: %d %v %s", resp.StatusCode, err, raw[:min(len(raw), 300)])
	}
	sf, err := snapshot.Open(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	spec := nodes[0].Spec()
	g, err := ledger.GenesisBlock(spec)
	if err != nil {
		t.Fatal(err)
	}
	trust := snapshot.TrustFromSpec(spec, g.Hash())
	rep, err := snapshot.VerifyFile(context.Background(), sf, trust)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Signers) < 3 {
		t.Fatalf("certified by %d validators, want a quorum of 3", len(rep.Signers))
	}

	home := nodes[3].home
	nodes[3].Stop()
	dataDir := homeDataDir(t, home)
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	if _, err := snapshot.Import(context.Background(), &sf.Manifest, sf.RawChunk, dataDir, spec, ledger.Options{}, trust); err != nil {
		t.Fatal(err)
	}
	joined := restartNode(t, home)
	if joined.Ledger().Head().Number.Uint64() != rep.Height {
		t.Fatalf("restarted at %d, want the snapshot's %d", joined.Ledger().Head().Number, rep.Height)
	}
	// The head block's receipts and transactions came with the snapshot.
	want, _ := nodes[0].Ledger().Receipts(rep.Height)
	got, err := joined.Ledger().Receipts(rep.Height)
	if err != nil || len(got) != len(want) {
		t.Fatalf("receipts of the imported head: %d, %v; want %d", len(got), err, len(want))
	}
	for _, tx := range joined.Ledger().BlockByNumber(rep.Height).Transactions() {
		if n, _, ok := joined.Ledger().TxLookup(tx.Hash()); !ok || n != rep.Height {
			t.Fatalf("transaction %s of the imported head not found", tx.Hash())
		}
	}
	if _, err := joined.Ledger().Receipts(0); err != nil {
		t.Fatalf("receipts of the genesis: %v", err)
	}
	sendTransfers(t, nodes[1], accts[1].Key, 5)
	target := nodes[1].Ledger().Head().Number.Uint64()
	waitUntil(t, 60*time.Second, "the joined node reaches the others' head", func() bool {
		return joined.Ledger().Head().Number.Uint64() >= target
	})
	agreeFrom(t, []*netNode{nodes[0], nodes[1], nodes[2], joined}, rep.Height)
}
