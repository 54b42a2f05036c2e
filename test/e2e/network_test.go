package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/freeport"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
)

// This file runs `charter testnet` networks as a user would and checks
// them as a black box over JSON-RPC while a nemesis kills (-9), pauses
// (SIGSTOP), restarts and partitions nodes. Partitions are real: every
// p2p link goes through a proxy of the test, which can cut a node off
// while it keeps running and answering RPC.

// endpoints is DIR/endpoints.json as INTERFACE.md shows it.
type endpoints struct {
	ChainID   uint64 `json:"chainId"`
	Consensus string `json:"consensus"`
	Nodes     []struct {
		Name    string `json:"name"`
		Org     string `json:"org"`
		RPC     string `json:"rpc"`
		P2P     string `json:"p2p"`
		Metrics string `json:"metrics"`
		PID     int    `json:"pid"`
		Home    string `json:"home"`
	} `json:"nodes"`
}

// testnet is a running `charter testnet` and the nodes the test restarted.
type testnet struct {
	t     *testing.T
	dir   string
	cmd   *exec.Cmd
	out   *lockedBuffer
	done  chan struct{}
	ep    endpoints
	ids   []common.Address
	pids  []int             // current process of each node
	owned map[int]*exec.Cmd // node processes started by the test
	links []*link           // p2p proxies, when partitionable
}

// Ports of the networks under test come from below Linux's ephemeral range
// (32768 and up), so that connections and :0 listeners of the test and of
// other tests cannot take them between init and start; reserved guards
// against handing one range out twice in this process.
// freePortBase returns p such that p..p+n-1 are free on 127.0.0.1 now.
func freePortBase(t *testing.T, n int) int {
	t.Helper()
	base, err := freeport.Base(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// initNetwork runs `charter init` for n validators into a fresh folder,
// with the development accounts funded (the tests' load comes from them).
func initNetwork(t *testing.T, engine string, n int, extra ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "net")
	args := append([]string{"init", "--validators", strconv.Itoa(n), "--consensus", engine, "--out", dir, "--dev-accounts",
		"--rpc.port", strconv.Itoa(freePortBase(t, n)), "--p2p.port", strconv.Itoa(freePortBase(t, n)),
		"--metrics.port", strconv.Itoa(freePortBase(t, n))}, extra...)
	if out, err := exec.Command(charterBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("charter init: %v\n%s", err, out)
	}
	return dir
}

// runTestnet starts `charter testnet --dir dir [extra]` and waits for endpoints.json.
func runTestnet(t *testing.T, dir string, extra ...string) *testnet {
	t.Helper()
	tn := &testnet{t: t, dir: dir, out: &lockedBuffer{}, done: make(chan struct{}), owned: map[int]*exec.Cmd{}}
	tn.cmd = exec.Command(charterBin, append([]string{"testnet", "--dir", dir}, extra...)...)
	tn.cmd.Stdout, tn.cmd.Stderr = tn.out, tn.out
	if err := tn.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tn.cmd.Wait(); close(tn.done) }()
	t.Cleanup(tn.stop)
	waitFor(t, 60*time.Second, "endpoints.json", func() bool {
		select {
		case <-tn.done:
			t.Fatalf("charter testnet exited: %s", tn.out.String())
		default:
		}
		raw, err := os.ReadFile(filepath.Join(dir, "endpoints.json"))
		return err == nil && json.Unmarshal(raw, &tn.ep) == nil
	})
	for _, n := range tn.ep.Nodes {
		key, err := identity.LoadNodeKey(filepath.Join(n.Home, "nodekey"), nil)
		if err != nil {
			t.Fatal(err)
		}
		tn.ids = append(tn.ids, identity.NodeIDOf(key))
		tn.pids = append(tn.pids, n.PID)
	}
	return tn
}

// stop resumes paused nodes, heals partitions and stops everything.
func (tn *testnet) stop() {
	for _, pid := range tn.pids {
		syscall.Kill(pid, syscall.SIGCONT)
	}
	for _, l := range tn.links {
		l.close()
	}
	for _, cmd := range tn.owned {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	tn.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-tn.done:
	case <-time.After(40 * time.Second):
		tn.cmd.Process.Kill()
		<-tn.done
	}
	for _, cmd := range tn.owned {
		waitExit(cmd, 30*time.Second)
	}
}

func waitExit(cmd *exec.Cmd, d time.Duration) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
	}
}

func (tn *testnet) url(i int) string { return tn.ep.Nodes[i].RPC }

func (tn *testnet) urls() []string {
	var out []string
	for i := range tn.ep.Nodes {
		out = append(out, tn.url(i))
	}
	return out
}

// kill9 kills node i with SIGKILL and waits until its RPC is gone.
func (tn *testnet) kill9(i int) {
	tn.t.Helper()
	if err := syscall.Kill(tn.pids[i], syscall.SIGKILL); err != nil {
		tn.t.Fatalf("kill -9 node%d: %v", i, err)
	}
	if cmd := tn.owned[i]; cmd != nil {
		waitExit(cmd, 10*time.Second)
		delete(tn.owned, i)
	}
	waitFor(tn.t, 10*time.Second, fmt.Sprintf("node%d gone", i), func() bool { _, err := height(tn.url(i)); return err != nil })
}

// restart runs `charter node --home` for node i, as a user would.
func (tn *testnet) restart(i int) {
	tn.t.Helper()
	home := tn.ep.Nodes[i].Home
	f, err := os.OpenFile(filepath.Join(home, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tn.t.Fatal(err)
	}
	cmd := exec.Command(charterBin, "node", "--home", home)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		tn.t.Fatal(err)
	}
	f.Close()
	tn.owned[i], tn.pids[i] = cmd, cmd.Process.Pid
	waitFor(tn.t, 30*time.Second, fmt.Sprintf("restarted node%d answers", i), func() bool { _, err := height(tn.url(i)); return err == nil })
}

// logOf returns node i's log so far.
func (tn *testnet) logOf(i int) string {
	raw, _ := os.ReadFile(filepath.Join(tn.ep.Nodes[i].Home, "node.log"))
	return string(raw)
}

func rpcCall(url string, result any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := gethrpc.DialContext(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CallContext(ctx, result, method, args...)
}

func height(url string) (uint64, error) {
	var h string
	if err := rpcCall(url, &h, "eth_blockNumber"); err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimPrefix(h, "0x"), 16, 64)
}

func peerCount(url string) (uint64, error) {
	var h string
	if err := rpcCall(url, &h, "net_peerCount"); err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimPrefix(h, "0x"), 16, 64)
}

// headMiner returns the head block's number and miner: under raft the
// leader builds every block, so a fresh block names the leader.
func headMiner(url string) (uint64, common.Address, error) {
	var b struct {
		Number string         `json:"number"`
		Miner  common.Address `json:"miner"`
	}
	if err := rpcCall(url, &b, "eth_getBlockByNumber", "latest", false); err != nil {
		return 0, common.Address{}, err
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(b.Number, "0x"), 16, 64)
	return n, b.Miner, err
}

// nodeOf maps a node id to its index.
func (tn *testnet) nodeOf(id common.Address) int {
	for i, x := range tn.ids {
		if x == id {
			return i
		}
	}
	tn.t.Fatalf("block sealed by %s, not a node of the testnet", id)
	return -1
}

// newLeader waits until via's newest block was sealed by a node other than
// old (blocks old committed before it went away may still be applied for
// a while), and returns that node.
func (tn *testnet) newLeader(via, old int) int {
	tn.t.Helper()
	var who common.Address
	waitFor(tn.t, 30*time.Second, fmt.Sprintf("node%d's newest block sealed by another node than node%d", via, old), func() bool {
		_, m, err := headMiner(tn.url(via))
		who = m
		return err == nil && m != (common.Address{}) && m != tn.ids[old]
	})
	return tn.nodeOf(who)
}

// leader waits for a block of at least height from and returns who built it.
func (tn *testnet) leader(via int, from uint64) int {
	tn.t.Helper()
	var who common.Address
	waitFor(tn.t, 30*time.Second, fmt.Sprintf("a block at height %d or above on node%d", from, via), func() bool {
		n, m, err := headMiner(tn.url(via))
		who = m
		return err == nil && n >= from && m != (common.Address{})
	})
	return tn.nodeOf(who)
}

// --- load ---

// netLoad submits transfers from distinct development accounts, each
// sender bound to one node, and polls receipts from any node that answers.
type netLoad struct {
	mu   sync.Mutex
	sent []*sentTx
	stop chan struct{}
	wg   sync.WaitGroup
}

// startLoad runs one sender per (url, account) pair, each sending one
// transfer every interval until stop or an error (its node gone).
func startLoad(t *testing.T, targets map[string][]int, receiptURLs []string, interval time.Duration) *netLoad {
	l := &netLoad{stop: make(chan struct{})}
	accts, err := chain.DevAccounts(chain.DevAccountCount)
	if err != nil {
		t.Fatal(err)
	}
	signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
	for url, idxs := range targets {
		for _, idx := range idxs {
			l.wg.Add(1)
			go func(url string, a chain.DevAccount) {
				defer l.wg.Done()
				client, err := ethclient.Dial(url)
				if err != nil {
					return
				}
				defer client.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				nonce, err := client.PendingNonceAt(ctx, a.Address)
				cancel()
				if err != nil {
					return
				}
				tick := time.NewTicker(interval)
				defer tick.Stop()
				for i := 0; i < 100_000; i++ {
					select {
					case <-l.stop:
						return
					case <-tick.C:
					}
					to := recipients[i%len(recipients)]
					tx := types.MustSignNewTx(a.Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID), Nonce: nonce,
						Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					err := client.SendTransaction(ctx, tx)
					cancel()
					if err != nil {
						return // the node is gone or paused: this sender ends
					}
					l.mu.Lock()
					l.sent = append(l.sent, &sentTx{hash: tx.Hash()})
					l.mu.Unlock()
					nonce++
				}
			}(url, accts[idx])
		}
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			l.pollReceipts(receiptURLs)
		}
	}()
	return l
}

// pollReceipts asks one answering node for up to 500 missing receipts.
func (l *netLoad) pollReceipts(urls []string) {
	l.mu.Lock()
	var pending []*sentTx
	for _, s := range l.sent {
		if s.block == (common.Hash{}) && len(pending) < 500 {
			pending = append(pending, s)
		}
	}
	l.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	for _, url := range urls {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rc, err := gethrpc.DialContext(ctx, url)
		if err != nil {
			cancel()
			continue
		}
		batch := make([]gethrpc.BatchElem, len(pending))
		results := make([]*types.Receipt, len(pending))
		for i, s := range pending {
			batch[i] = gethrpc.BatchElem{Method: "eth_getTransactionReceipt", Args: []any{s.hash}, Result: &results[i]}
		}
		err = rc.BatchCallContext(ctx, batch)
		rc.Close()
		cancel()
		if err != nil {
			continue
		}
		l.mu.Lock()
		for i, r := range results {
			if batch[i].Error == nil && r != nil {
				pending[i].block = r.BlockHash
			}
		}
		l.mu.Unlock()
		return
	}
}

// finish stops the senders, then polls receipts until every transaction
// has one, or none came for 6 s (a follower re-forwards its pending
// transactions every 2 s), at most 30 s, and returns (sent, acknowledged).
func (l *netLoad) finish(urls []string) ([]*sentTx, int) {
	close(l.stop)
	l.wg.Wait()
	acked := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		n := 0
		for _, s := range l.sent {
			if s.block != (common.Hash{}) {
				n++
			}
		}
		return n
	}
	last, progress, deadline := acked(), time.Now(), time.Now().Add(30*time.Second)
	for last < len(l.sent) && time.Since(progress) < 6*time.Second && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		l.pollReceipts(urls)
		if n := acked(); n > last {
			last, progress = n, time.Now()
		}
	}
	return l.sent, last
}

// --- checks ---

// heightWatch polls every node's height and records any decrease, across
// crashes and restarts too (a committed block is never lost).
type heightWatch struct {
	mu       sync.Mutex
	max      []uint64
	problems []string
	stop     chan struct{}
	done     chan struct{}
}

func watchHeights(tn *testnet) *heightWatch {
	w := &heightWatch{max: make([]uint64, len(tn.ep.Nodes)), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for i := range tn.ep.Nodes {
				h, err := height(tn.url(i))
				if err != nil {
					continue
				}
				w.mu.Lock()
				if h < w.max[i] && len(w.problems) < 10 {
					w.problems = append(w.problems, fmt.Sprintf("node%d went back from height %d to %d", i, w.max[i], h))
				}
				w.max[i] = max(w.max[i], h)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *heightWatch) check(t *testing.T) {
	t.Helper()
	close(w.stop)
	<-w.done
	for _, p := range w.problems {
		t.Error(p)
	}
}

// waitConverged waits until every node has the same head block.
func (tn *testnet) waitConverged(timeout time.Duration) uint64 {
	tn.t.Helper()
	var h uint64
	waitFor(tn.t, timeout, "every node at the same head", func() bool {
		var hashes []common.Hash
		for i := range tn.ep.Nodes {
			var b struct {
				Number string      `json:"number"`
				Hash   common.Hash `json:"hash"`
			}
			if rpcCall(tn.url(i), &b, "eth_getBlockByNumber", "latest", false) != nil {
				return false
			}
			hashes = append(hashes, b.Hash)
			h, _ = strconv.ParseUint(strings.TrimPrefix(b.Number, "0x"), 16, 64)
		}
		for _, x := range hashes[1:] {
			if x != hashes[0] {
				return false
			}
		}
		return true
	})
	return h
}

// checkAgreement: every node has the same block hash at every height, the
// chain links, no transaction appears twice, and every transaction whose
// receipt was returned is in the block the receipt named.
func (tn *testnet) checkAgreement(head uint64, sent []*sentTx) {
	t := tn.t
	t.Helper()
	clients := make([]*ethclient.Client, len(tn.ep.Nodes))
	for i := range clients {
		c, err := ethclient.Dial(tn.url(i))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	seen := make(map[common.Hash]common.Hash)
	var parent common.Hash
	for n := uint64(0); n <= head; n++ {
		blk, err := clients[0].BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatalf("node0 block %d: %v", n, err)
		}
		if n > 0 && blk.ParentHash() != parent {
			t.Fatalf("block %d does not link to block %d", n, n-1)
		}
		parent = blk.Hash()
		for i, c := range clients[1:] {
			h, err := c.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
			if err != nil {
				t.Fatalf("node%d block %d: %v", i+1, n, err)
			}
			if h.Hash() != blk.Hash() {
				t.Fatalf("block %d: node%d has %s, node0 %s", n, i+1, h.Hash(), blk.Hash())
			}
		}
		for _, tx := range blk.Transactions() {
			if _, dup := seen[tx.Hash()]; dup {
				t.Fatalf("transaction %s twice in the chain", tx.Hash())
			}
			seen[tx.Hash()] = blk.Hash()
		}
	}
	for _, s := range sent {
		if s.block == (common.Hash{}) {
			continue
		}
		if got, ok := seen[s.hash]; !ok || got != s.block {
			t.Fatalf("acknowledged transaction %s lost or moved (in block %s, receipt said %s)", s.hash, got, s.block)
		}
	}
}

// --- partitions ---

// link forwards one direction's dials of one node pair (from dials to)
// through the test, which can cut it.
type link struct {
	from, to int
	ln       net.Listener
	target   string
	mu       sync.Mutex
	cut      bool
	conns    map[net.Conn]bool
}

func newLink(t *testing.T, from, to int, target string) *link {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &link{from: from, to: to, ln: ln, target: target, conns: map[net.Conn]bool{}}
	go l.serve()
	return l
}

func (l *link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.pipe(c)
	}
}

func (l *link) pipe(c net.Conn) {
	l.mu.Lock()
	cut := l.cut
	l.mu.Unlock()
	if cut {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", l.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	if l.cut {
		l.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	l.conns[c], l.conns[up] = true, true
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
	go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
	wg.Wait()
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, up)
	l.mu.Unlock()
}

func (l *link) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			c.Close()
		}
	}
}

func (l *link) close() { l.setCut(true); l.ln.Close() }

// routeThroughProxies rewrites every node's static peers so that each
// dial goes through a link of the test. Call it between init and testnet.
func routeThroughProxies(t *testing.T, dir string, n int) []*link {
	t.Helper()
	var links []*link
	homes := make([]string, n)
	cfgs := make([]*node.HomeConfig, n)
	for i := range cfgs {
		homes[i] = filepath.Join(dir, "node"+strconv.Itoa(i))
		c, err := node.LoadHomeConfig(homes[i])
		if err != nil {
			t.Fatal(err)
		}
		cfgs[i] = c
	}
	for i, c := range cfgs {
		for k, p := range c.Peers {
			j := -1
			for x, other := range cfgs {
				if other.Name == p.Name {
					j = x
				}
			}
			if j < 0 {
				t.Fatalf("peer %s of node%d unknown", p.Name, i)
			}
			l := newLink(t, i, j, cfgs[j].P2PAddr)
			links = append(links, l)
			c.Peers[k].Addr = l.ln.Addr().String()
		}
		if err := c.Write(homes[i]); err != nil {
			t.Fatal(err)
		}
	}
	return links
}

// isolate cuts (or heals) every link to and from node i.
func (tn *testnet) isolate(i int, cut bool) {
	for _, l := range tn.links {
		if l.from == i || l.to == i {
			l.setCut(cut)
		}
	}
}

// --- tests ---

// TestRaftTestnetFaults runs a 3-node raft testnet under load through a
// kill -9 of the leader and its restart, a partition that isolates the
// leader, and a SIGSTOP of the leader; at the end every node has the same
// block at every height and every acknowledged transaction is in the
// chain exactly once.
func TestRaftTestnetFaults(t *testing.T) {
	const n = 3
	dir := initNetwork(t, "raft", n, "--block-time", "200ms")
	links := routeThroughProxies(t, dir, n)
	tn := runTestnet(t, dir)
	tn.links = links
	if tn.ep.ChainID != chain.DefaultChainID || tn.ep.Consensus != "raft" || len(tn.ep.Nodes) != n {
		t.Fatalf("endpoints.json: %+v", tn.ep)
	}
	for i, e := range tn.ep.Nodes {
		if e.Name != "node"+strconv.Itoa(i) || e.Org == "" || !strings.HasPrefix(e.RPC, "http://127.0.0.1:") ||
			!strings.HasPrefix(e.P2P, "127.0.0.1:") || !strings.HasSuffix(e.Metrics, "/metrics") || e.PID <= 0 || !filepath.IsAbs(e.Home) {
			t.Fatalf("endpoints.json node %d: %+v", i, e)
		}
	}
	waitFor(t, 30*time.Second, "every node connected to both others", func() bool {
		for i := 0; i < n; i++ {
			if c, err := peerCount(tn.url(i)); err != nil || c != n-1 {
				return false
			}
		}
		return true
	})
	watch := watchHeights(tn)
	var sent []*sentTx
	const interval = 10 * time.Millisecond // per sender: 100 tx/s
	// A phase runs load, the fault and the recovery, then lets the load
	// drain. Without a kill, every transaction a node accepted must get
	// in: a follower keeps forwarding its pending ones to whoever leads.
	phase := func(name string, targets map[string][]int, lossless bool, fault func()) {
		l := startLoad(t, targets, tn.urls(), interval)
		fault()
		time.Sleep(time.Second) // load on the healed network
		s, acked := l.finish(tn.urls())
		t.Logf("%s: %d sent, %d acknowledged", name, len(s), acked)
		if acked == 0 || (lossless && acked != len(s)) {
			t.Fatalf("%s: %d of %d transactions acknowledged", name, acked, len(s))
		}
		sent = append(sent, s...)
	}

	// 1. kill -9 the leader under load; the others elect a new one and go
	// on; the killed node restarts with `charter node --home` and catches up.
	phase("kill -9 the leader", map[string][]int{tn.url(0): {0, 1}, tn.url(1): {2, 3}, tn.url(2): {4, 5}}, false, func() {
		h0, _ := height(tn.url(0))
		lead := tn.leader(0, h0+3)
		other := (lead + 1) % n
		tn.kill9(lead)
		next := tn.newLeader(other, lead)
		t.Logf("killed leader node%d; node%d leads", lead, next)
		tn.restart(lead)
		target, _ := height(tn.url(next))
		waitFor(t, 30*time.Second, fmt.Sprintf("restarted node%d catches up to height %d", lead, target), func() bool {
			h, err := height(tn.url(lead))
			return err == nil && h >= target
		})
	})

	// 2. Isolate the leader (a partition: it runs and answers RPC): it
	// cannot commit, the majority elects a new leader and commits; after
	// healing it follows with no divergence.
	phase("partition the leader", map[string][]int{tn.url(0): {6, 7}, tn.url(1): {8, 9}, tn.url(2): {10, 11}}, true, func() {
		h0, _ := height(tn.url(0))
		lead := tn.leader(0, h0+3)
		other := (lead + 1) % n
		tn.isolate(lead, true)
		// In-flight entries settle within an election timeout; after that
		// the isolated node's height must not move.
		time.Sleep(2500 * time.Millisecond)
		stuck, err := height(tn.url(lead))
		if err != nil {
			t.Fatalf("isolated node%d stopped answering RPC: %v", lead, err)
		}
		next := tn.newLeader(other, lead)
		// The majority goes on past the isolated node's height.
		waitFor(t, 30*time.Second, "the majority commits past the isolated node", func() bool {
			h, err := height(tn.url(other))
			return err == nil && h > stuck+3
		})
		if h, _ := height(tn.url(lead)); h != stuck {
			t.Fatalf("isolated node%d committed: height %d -> %d while cut off", lead, stuck, h)
		}
		t.Logf("isolated leader node%d stuck at height %d; node%d leads the majority", lead, stuck, next)
		tn.isolate(lead, false)
		target, _ := height(tn.url(next))
		waitFor(t, 30*time.Second, fmt.Sprintf("healed node%d follows to height %d", lead, target), func() bool {
			h, err := height(tn.url(lead))
			return err == nil && h >= target
		})
	})

	// 3. SIGSTOP the leader: the others elect a new one; SIGCONT: it
	// follows.
	phase("pause the leader", map[string][]int{tn.url(0): {12, 13}, tn.url(1): {14, 15}, tn.url(2): {16, 17}}, true, func() {
		h0, _ := height(tn.url(0))
		lead := tn.leader(0, h0+3)
		other := (lead + 1) % n
		if err := syscall.Kill(tn.pids[lead], syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		next := tn.newLeader(other, lead)
		syscall.Kill(tn.pids[lead], syscall.SIGCONT)
		t.Logf("paused leader node%d; node%d leads", lead, next)
		target, _ := height(tn.url(next))
		waitFor(t, 30*time.Second, fmt.Sprintf("resumed node%d follows to height %d", lead, target), func() bool {
			h, err := height(tn.url(lead))
			return err == nil && h >= target
		})
	})

	head := tn.waitConverged(30 * time.Second)
	watch.check(t)
	tn.checkAgreement(head, sent)
	t.Logf("%d blocks agree on every node", head+1)
	if strings.Contains(tn.out.String(), "panic") {
		t.Fatalf("testnet output: %s", tn.out.String())
	}
}

// TestTestnetRefusesForeignAndExpiredCerts: a node whose certificate comes
// from a CA the genesis does not list, or has expired, cannot connect, and
// the other nodes' logs say why in one line. With its own certificate back
// it reconnects and catches up.
func TestTestnetRefusesForeignAndExpiredCerts(t *testing.T) {
	const n = 3
	dir := initNetwork(t, "raft", n)
	tn := runTestnet(t, dir)
	home := tn.ep.Nodes[2].Home
	certPath, keyPath := filepath.Join(home, "tls", "node.crt"), filepath.Join(home, "tls", "node.key")
	origCert, _ := os.ReadFile(certPath)
	origKey, _ := os.ReadFile(keyPath)
	tn.kill9(2)

	install := func(certs []byte, key []byte) {
		t.Helper()
		if err := os.WriteFile(certPath, certs, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyPath, key, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	issue := func(ca *identity.CA, req identity.CertRequest) ([]byte, []byte) {
		t.Helper()
		cert, key, err := ca.Issue(req)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, err := identity.EncodeKeyPEM(key, nil)
		if err != nil {
			t.Fatal(err)
		}
		return identity.EncodeCertsPEM(cert, ca.Cert), keyPEM
	}
	refused := func(reason string) {
		t.Helper()
		tn.restart(2)
		waitFor(t, 20*time.Second, "node0 or node1 logs the refusal: "+reason, func() bool {
			for i := 0; i < 2; i++ {
				for _, line := range strings.Split(tn.logOf(i), "\n") {
					if (strings.Contains(line, "connection refused") || strings.Contains(line, "dial failed")) && strings.Contains(line, reason) {
						return true
					}
				}
			}
			return false
		})
		if c, err := peerCount(tn.url(2)); err != nil || c != 0 {
			t.Fatalf("node2 with a %s certificate has %d peers (%v)", reason, c, err)
		}
		for i := 0; i < 2; i++ {
			if c, _ := peerCount(tn.url(i)); c != 1 {
				t.Fatalf("node%d has %d peers, want only the other good node", i, c)
			}
		}
		tn.kill9(2)
	}

	// A certificate from an organization CA the genesis does not list.
	foreign, err := identity.NewRootCA("org2", identity.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	install(issue(foreign, identity.CertRequest{Role: identity.RoleNode, Name: "node2", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}))
	refused("unknown CA")

	// An expired certificate from the node's own organization CA.
	org, err := identity.LoadCA(filepath.Join(dir, "orgs", "org2", "ca.crt"), filepath.Join(dir, "orgs", "org2", "ca.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	install(issue(org, identity.CertRequest{Role: identity.RoleNode, Name: "node2", NotBefore: time.Now().Add(-2 * time.Hour), Validity: time.Hour}))
	refused("expired")

	// Its own certificate back: it joins and catches up.
	install(origCert, origKey)
	tn.restart(2)
	waitFor(t, 30*time.Second, "node2 reconnects", func() bool { c, err := peerCount(tn.url(2)); return err == nil && c == n-1 })
	accts, _ := chain.DevAccounts(1)
	signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
	tx := types.MustSignNewTx(accts[0].Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID), Nonce: 0,
		Gas: 21000, GasFeeCap: big.NewInt(1), To: &recipients[0], Value: big.NewInt(1)})
	raw, _ := tx.MarshalBinary()
	var hash common.Hash
	if err := rpcCall(tn.url(2), &hash, "eth_sendRawTransaction", fmt.Sprintf("%#x", raw)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the transaction sent to node2 is committed on node0", func() bool {
		var r map[string]any
		return rpcCall(tn.url(0), &r, "eth_getTransactionReceipt", hash) == nil && r != nil
	})
	head := tn.waitConverged(30 * time.Second)
	tn.checkAgreement(head, nil)
}

// TestNetworkCommandsFailWithOneLine: wrong input to init, node, testnet
// and ca is one line on stderr and a non-zero exit.
func TestNetworkCommandsFailWithOneLine(t *testing.T) {
	dir := initNetwork(t, "raft", 2)
	home := filepath.Join(dir, "node0")
	badHome := t.TempDir()
	raw, _ := os.ReadFile(filepath.Join(home, "config.json"))
	os.WriteFile(filepath.Join(badHome, "config.json"), []byte(strings.Replace(string(raw), `"rpcAddr": "127.0.0.1:`, `"rpcAddr": "127.0.0.1:x`, 1)), 0o644)
	caDir := filepath.Join(t.TempDir(), "ca")
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("guess\n"), 0o600)
	if out, err := exec.Command(charterBin, "ca", "init-org", "--org", "acme", "--out", caDir, "--password-file", pw).CombinedOutput(); err != nil {
		t.Fatalf("ca init-org: %v %s", err, out)
	}
	if out, err := exec.Command(charterBin, "ca", "issue", "--ca", caDir, "--name", "n1", "--hosts", "127.0.0.1", "--ca-password-file", pw).CombinedOutput(); err != nil {
		t.Fatalf("ca issue: %v %s", err, out)
	}
	if out, err := exec.Command(charterBin, "ca", "verify", "--genesis", filepath.Join(dir, "genesis.json"), "--cert", filepath.Join(home, "tls", "node.crt")).CombinedOutput(); err != nil || !strings.Contains(string(out), "trusted node certificate of org0/node0") {
		t.Fatalf("ca verify of a good certificate: %v %s", err, out)
	}
	// A node whose raft WAL is damaged in the middle refuses to start.
	walHome := filepath.Join(initNetwork(t, "raft", 2), "node0")
	run := exec.Command(charterBin, "node", "--home", walHome)
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	hc, err := node.LoadHomeConfig(walHome)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the node answers", func() bool { _, err := height("http://" + hc.RPCAddr); return err == nil })
	run.Process.Signal(syscall.SIGTERM)
	waitExit(run, 30*time.Second)
	wals, _ := filepath.Glob(filepath.Join(walHome, "data", "raft", "*.wal"))
	if len(wals) != 1 {
		t.Fatalf("raft WAL files: %v", wals)
	}
	wal, _ := os.ReadFile(wals[0])
	for i := 12; i < 20 && i < len(wal); i++ {
		wal[i] ^= 0xff
	}
	os.WriteFile(wals[0], wal, 0o600)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"node with a damaged WAL", []string{"node", "--home", walHome}, "raft wal corrupt"},
		{"init without --out", []string{"init", "--validators", "3"}, "--out"},
		{"init into a network", []string{"init", "--out", dir}, "exists already"},
		{"init with bad engine", []string{"init", "--out", t.TempDir(), "--consensus", "pow"}, "--consensus"},
		{"init with too many orgs", []string{"init", "--out", t.TempDir(), "--validators", "2", "--orgs", "3"}, "--orgs"},
		{"node without a home", []string{"node", "--home", t.TempDir()}, "config.json does not exist"},
		{"node with a bad config", []string{"node", "--home", badHome}, "rpcAddr"},
		{"testnet of another engine", []string{"testnet", "--dir", dir, "--consensus", "bft"}, "raft network"},
		{"ca wrong password", []string{"ca", "issue", "--ca", caDir, "--name", "n2", "--ca-password-file", wrong}, "wrong password"},
		{"ca foreign certificate", []string{"ca", "verify", "--genesis", filepath.Join(dir, "genesis.json"), "--cert", filepath.Join(caDir, "n1.crt")}, "unknown CA"},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, charterBin, c.args...).CombinedOutput()
		cancel()
		if err == nil {
			t.Errorf("%s: exited 0: %s", c.name, out)
			continue
		}
		text := strings.TrimSpace(string(out))
		if !strings.Contains(text, c.want) || strings.Count(text, "\n") > 0 {
			t.Errorf("%s: output %q, want one line containing %q", c.name, text, c.want)
		}
	}
}

// waitAllReach waits until every node is at height h or above.
func (tn *testnet) waitAllReach(h uint64, timeout time.Duration) {
	tn.t.Helper()
	waitFor(tn.t, timeout, fmt.Sprintf("every node at height %d", h), func() bool {
		for i := range tn.ep.Nodes {
			if got, err := height(tn.url(i)); err != nil || got < h {
				return false
			}
		}
		return true
	})
}

// TestBFTAndPoATestnets runs 4-node bft and poa testnets as processes
// under load through a kill -9 of one node (within what each tolerates)
// and its restart: the others go on, it catches up, and every node has
// the same block at every height.
func TestBFTAndPoATestnets(t *testing.T) {
	for _, engine := range []string{"bft", "poa"} {
		t.Run(engine, func(t *testing.T) {
			const n = 4
			dir := initNetwork(t, engine, n, "--block-time", "250ms")
			tn := runTestnet(t, dir)
			waitFor(t, 30*time.Second, "every node connected to every other", func() bool {
				for i := 0; i < n; i++ {
					if c, err := peerCount(tn.url(i)); err != nil || c != n-1 {
						return false
					}
				}
				return true
			})
			watch := watchHeights(tn)
			targets := map[string][]int{}
			for i := 0; i < n; i++ {
				targets[tn.url(i)] = []int{2 * i, 2*i + 1}
			}
			l := startLoad(t, targets, tn.urls(), 20*time.Millisecond)
			time.Sleep(2 * time.Second)
			victim := n - 1
			before, _ := height(tn.url(0))
			tn.kill9(victim)
			waitFor(t, 30*time.Second, "the others go on without the killed node", func() bool {
				h, err := height(tn.url(0))
				return err == nil && h >= before+3
			})
			tn.restart(victim)
			sent, acked := l.finish(tn.urls()[:victim])
			t.Logf("%d sent, %d acknowledged", len(sent), acked)
			if acked == 0 {
				t.Fatal("no transaction acknowledged")
			}
			var top uint64
			for i := 0; i < n; i++ {
				if h, err := height(tn.url(i)); err == nil {
					top = max(top, h)
				}
			}
			tn.waitAllReach(top, 60*time.Second)
			watch.check(t)
			tn.checkAgreement(top, sent)
			t.Logf("%d blocks agree on every node", top+1)

			// Two of four down: more than f, so nothing becomes final (and
			// nothing unsafe happens); with both back, progress resumes.
			watch = watchHeights(tn)
			tn.kill9(n - 1)
			tn.kill9(n - 2)
			var stalled uint64
			waitFor(t, 15*time.Second, "the survivors stop finalizing", func() bool {
				h0, err := height(tn.url(0))
				if err != nil {
					return false
				}
				time.Sleep(1500 * time.Millisecond) // a window with no new final block
				h1, err := height(tn.url(0))
				stalled = h1
				return err == nil && h1 == h0
			})
			stalledAt := time.Now()
			for time.Since(stalledAt) < 3*time.Second {
				for i := 0; i < n-2; i++ {
					if h, err := height(tn.url(i)); err != nil || h > stalled+1 {
						t.Fatalf("node%d finalized height %d with two of four validators down (stalled at %d)", i, h, stalled)
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
			tn.restart(n - 1)
			tn.restart(n - 2)
			l = startLoad(t, targets, tn.urls(), 20*time.Millisecond)
			time.Sleep(time.Second)
			more, acked := l.finish(tn.urls())
			if acked == 0 {
				t.Fatal("no transaction acknowledged after both validators returned")
			}
			top = 0
			for i := 0; i < n; i++ {
				if h, err := height(tn.url(i)); err == nil {
					top = max(top, h)
				}
			}
			if top <= stalled {
				t.Fatalf("no progress after restart: height %d, stalled at %d", top, stalled)
			}
			tn.waitAllReach(top, 60*time.Second)
			watch.check(t)
			tn.checkAgreement(top, append(sent, more...))
			t.Logf("stalled at %d with two down; after restart %d blocks agree on every node", stalled, top+1)
		})
	}
}
