package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/rpc"
)

// plainBackend is the node's JSON-RPC backend without its log index.
type plainBackend struct{ rpc.Backend }

// countedBackend is the node's JSON-RPC backend with its log index, whose
// queries it counts.
type countedBackend struct {
	rpc.Backend
	ix    rpc.LogIndex
	calls *atomic.Int64
}

func (b countedBackend) LogIndex() rpc.LogIndex { return countedIndex{b.ix, b.calls} }

type countedIndex struct {
	rpc.LogIndex
	calls *atomic.Int64
}

func (c countedIndex) FilterLogs(ctx context.Context, from, to uint64, addrs []common.Address, topics [][]common.Hash, max int) ([]*types.Log, error) {
	c.calls.Add(1)
	return c.LogIndex.FilterLogs(ctx, from, to, addrs, topics, max)
}

func serveRPC(t *testing.T, b rpc.Backend) *gethrpc.Client {
	t.Helper()
	srv, err := rpc.NewServer(b, rpc.DefaultConfig(), func() int { return 0 }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c, err := gethrpc.Dial("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Stop()
		<-done
	})
	return c
}

// logsInitCode is contract creation code whose constructor emits LOG0 to
// LOG4 (topics drawn from k, 32 bytes of data or none) and deploys no
// code.
func logsInitCode(k byte) []byte {
	const push1, mstore = 0x60, 0x52
	c := []byte{push1, k, push1, 0, mstore}  // memory[0:32] = k
	c = append(c, push1, 32, push1, 0, 0xa0) // LOG0 with data
	c = append(c, push1, k, push1, 0, push1, 0, 0xa1)
	c = append(c, push1, k, push1, 0xaa, push1, 32, push1, 0, 0xa2)
	c = append(c, push1, 0xbb, push1, k%2, push1, 0xaa, push1, 32, push1, 0, 0xa3)
	c = append(c, push1, k, push1, 0xcc, push1, k%3, push1, 0xaa, push1, 0, push1, 0, 0xa4)
	return append(c, 0x00)
}

// TestGetLogsOfANodeWithIndex runs a development node with --index whose
// contracts emit logs of zero to four topics, and asks the same
// eth_getLogs filters of its JSON-RPC, of a server over the node without
// the index and of one over the node with it: the answers are the same
// bytes, and the last one came from the index.
func TestGetLogsOfANodeWithIndex(t *testing.T) {
	tn := startNodeWith(t, t.TempDir(), func(c *Config) { c.Index = &IndexConfig{} })
	var last uint64
	var contracts []common.Address
	for k := byte(0); k < 6; k++ {
		tx := tn.sign(t, tn.accts[0].Key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: uint64(k), Gas: 300_000,
			GasFeeCap: big.NewInt(2e9), GasTipCap: big.NewInt(1), Data: logsInitCode(k)})
		if err := tn.client.SendTransaction(t.Context(), tx); err != nil {
			t.Fatal(err)
		}
		rec := tn.waitReceipt(t, tx.Hash())
		if rec.Status != types.ReceiptStatusSuccessful || len(rec.Logs) != 5 {
			t.Fatalf("deployment %d: status %d, %d logs", k, rec.Status, len(rec.Logs))
		}
		contracts = append(contracts, rec.ContractAddress)
		last = rec.BlockNumber.Uint64()
	}
	waitUntil(t, 10*time.Second, "the index holds the last deployment", func() bool { return tn.Index().Indexed() >= last })

	calls := new(atomic.Int64)
	plain := serveRPC(t, plainBackend{rpcBackend{tn.Node}})
	indexed := serveRPC(t, countedBackend{rpcBackend{tn.Node}, tn.Index(), calls})
	h := func(b byte) common.Hash { return common.BytesToHash([]byte{b}) }
	to := hexUint(last)
	filters := []map[string]any{
		{"fromBlock": "0x0", "toBlock": to},
		{"fromBlock": "0x1", "toBlock": to, "address": contracts[2]},
		{"fromBlock": "0x0", "toBlock": to, "address": []common.Address{contracts[0], contracts[5]}},
		{"fromBlock": "0x0", "toBlock": to, "topics": []any{h(0xaa)}},
		{"fromBlock": "0x0", "toBlock": to, "topics": []any{h(0xaa), nil}},
		{"fromBlock": "0x0", "toBlock": to, "topics": []any{nil, nil, nil}},
		{"fromBlock": "0x0", "toBlock": to, "topics": []any{nil, nil, nil, nil}},
		{"fromBlock": "0x0", "toBlock": to, "topics": []any{[]common.Hash{h(0), h(1), h(3)}}},
		{"fromBlock": "0x0", "toBlock": to, "topics": []any{h(0xaa), []common.Hash{h(1), h(0xcc)}}},
		{"fromBlock": "0x0", "toBlock": to, "address": contracts[4], "topics": []any{nil, h(0xaa)}},
	}
	nonEmpty := 0
	for i, crit := range filters {
		var want, got, node json.RawMessage
		if err := plain.Call(&want, "eth_getLogs", crit); err != nil {
			t.Fatalf("filter %d without the index: %v", i, err)
		}
		if err := indexed.Call(&got, "eth_getLogs", crit); err != nil {
			t.Fatalf("filter %d with the index: %v", i, err)
		}
		if err := tn.rpc.Call(&node, "eth_getLogs", crit); err != nil {
			t.Fatalf("filter %d of the node: %v", i, err)
		}
		if string(want) != string(got) || string(want) != string(node) {
			t.Fatalf("filter %d %v:\nwithout the index %s\nwith the index    %s\nthe node          %s", i, crit, want, got, node)
		}
		if len(want) > 2 {
			nonEmpty++
		}
	}
	if n := calls.Load(); n != int64(len(filters)) {
		t.Fatalf("the index answered %d of %d filters", n, len(filters))
	}
	if nonEmpty < len(filters)-1 {
		t.Fatalf("only %d filters match logs", nonEmpty)
	}
}

func hexUint(n uint64) string { return "0x" + new(big.Int).SetUint64(n).Text(16) }
