package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
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

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/node"
)

// The rolling upgrade: a 4-node bft network runs the previous release
// (deploy/PREVIOUS_RELEASE names its commit), and under a steady load each
// node in turn is taken out of the load, drained, stopped with SIGTERM and
// started again from the same home on the binary of this tree, the way
// docs/operations.md tells an operator to. Nothing is lost: every
// transaction a node accepted is committed, the network keeps committing
// while one node is down, no node's height ever goes back, and at the end
// every node holds the same blocks.

// Bounds of one upgrade step (a node's restart may migrate its data first).
const (
	upgradeStart   = 2 * time.Minute  // until a started node answers JSON-RPC
	upgradeCatchUp = 90 * time.Second // until it has every peer and the others' height
	upgradeDrain   = 60 * time.Second // until what a node accepted is committed
	upgradeStop    = 30 * time.Second // after SIGTERM
)

// previousReleaseFile is read relative to the repository root.
const previousReleaseFile = "deploy/PREVIOUS_RELEASE"

func TestRollingUpgradeFromThePreviousRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the rolling upgrade builds the previous release and runs 4 nodes")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	oldBin := previousReleaseBinary(t, root)
	newBin := charterBin

	const n = 4
	dir := filepath.Join(t.TempDir(), "net")
	args := []string{"init", "--validators", strconv.Itoa(n), "--consensus", "bft", "--out", dir, "--dev-accounts",
		"--rpc.port", strconv.Itoa(freePortBase(t, n)), "--p2p.port", strconv.Itoa(freePortBase(t, n)),
		"--metrics.port", strconv.Itoa(freePortBase(t, n))}
	if out, err := exec.Command(oldBin, args...).CombinedOutput(); err != nil {
		t.Fatalf("charter init of the previous release: %v\n%s", err, out)
	}
	nodes := make([]*upNode, n)
	for i := range nodes {
		home := filepath.Join(dir, "node"+strconv.Itoa(i))
		cfg, err := node.LoadHomeConfig(home)
		if err != nil {
			t.Fatalf("the home the previous release wrote: %v", err)
		}
		nodes[i] = &upNode{i: i, home: home, url: "http://" + cfg.RPCAddr}
		t.Cleanup(nodes[i].kill)
	}
	for _, nd := range nodes {
		nd.start(t, oldBin)
	}
	for _, nd := range nodes {
		nd.waitAnswers(t)
	}
	tn := upgradeTestnet(t, nodes)
	waitPeers(t, nodes, n-1)
	hw := watchHeights(tn)

	l := startRollingLoad(t, nodes, 8, 25*time.Millisecond)
	defer l.halt()
	waitFor(t, 60*time.Second, "the previous release commits under load", func() bool {
		h, err := height(nodes[0].url)
		return err == nil && h >= 5 && l.count() >= 50
	})

	for _, nd := range nodes {
		// Out of the load, and every transaction it accepted committed.
		l.route(nd.i, false)
		l.drain(t, nd.i)
		before := maxHeight(nodes, nd.i)
		nd.stop(t)
		waitFor(t, 60*time.Second, fmt.Sprintf("the others commit while node%d is down", nd.i), func() bool {
			return maxHeight(nodes, nd.i) >= before+3
		})
		nd.start(t, newBin)
		nd.waitAnswers(t)
		target := maxHeight(nodes, nd.i)
		waitFor(t, upgradeCatchUp, fmt.Sprintf("upgraded node%d connected to every other and at height %d", nd.i, target), func() bool {
			h, err := height(nd.url)
			c, cerr := peerCount(nd.url)
			return err == nil && cerr == nil && h >= target && c == n-1
		})
		l.route(nd.i, true)
		t.Logf("node%d upgraded at height %d; %d transactions accepted so far", nd.i, target, l.count())
	}
	// The new release alone, under load for a few more blocks.
	from := maxHeight(nodes, -1)
	waitFor(t, 60*time.Second, "the upgraded network commits under load", func() bool { return maxHeight(nodes, -1) >= from+5 })
	waitPeers(t, nodes, n-1)

	sent, acked := l.finish(tn.urls())
	if err := l.err(); err != nil {
		t.Error(err)
	}
	if len(sent) < 100 || acked != len(sent) {
		t.Fatalf("%d of %d accepted transactions committed (want all, and at least 100 sent)", acked, len(sent))
	}
	head := tn.waitConverged(60 * time.Second)
	hw.check(t)
	tn.checkAgreement(head, sent)
	t.Logf("%d transactions, every one committed; %d nodes agree on every block up to %d", len(sent), n, head)
}

// previousReleaseBinary builds `charter` from the commit that
// deploy/PREVIOUS_RELEASE names (or takes CHARTER_PREVIOUS_BIN), skipping
// when this clone does not hold that commit.
func previousReleaseBinary(t *testing.T, root string) string {
	t.Helper()
	if bin := os.Getenv("CHARTER_PREVIOUS_BIN"); bin != "" {
		return bin
	}
	commit, err := readPreviousRelease(filepath.Join(root, previousReleaseFile))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		t.Skipf("the previous release %s (%s) is not in this clone (%v: %s): fetch it (git fetch --unshallow) to test the rolling upgrade from it",
			commit, previousReleaseFile, err, strings.TrimSpace(string(out)))
	}
	// A commit never changes: its binary is kept in the user's cache and
	// built only once.
	var cached string
	if dir, err := os.UserCacheDir(); err == nil {
		cached = filepath.Join(dir, "charter-test", "previous-release", commit, "charter")
		if st, err := os.Stat(cached); err == nil && st.Mode().IsRegular() && st.Mode()&0o100 != 0 {
			t.Logf("previous release %s: %s", commit[:12], cached)
			return cached
		}
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	// The commit's tree, without touching the clone's work tree or worktree list.
	archive := exec.Command("git", "-C", root, "archive", "--format=tar", commit)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var aerr, terr strings.Builder
	archive.Stderr, untar.Stderr = &aerr, &terr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v: %s", commit, err, aerr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("untar %s: %v: %s", commit, err, terr.String())
	}
	// The same build as the README's (no -trimpath, which would rebuild
	// every dependency instead of taking it from the build cache).
	bin := filepath.Join(t.TempDir(), "charter-"+commit[:12])
	build := exec.Command("go", "build", "-o", bin, "./cmd/charter")
	build.Dir = src
	build.Env = append(os.Environ(), "GOWORK=off")
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the previous release %s: %v\n%s", commit, err, out)
	}
	t.Logf("previous release %s built in %s", commit[:12], time.Since(start).Round(time.Second))
	if cached == "" {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o755); err == nil {
		raw, err := os.ReadFile(bin)
		tmp := cached + ".tmp" + strconv.Itoa(os.Getpid())
		if err == nil && os.WriteFile(tmp, raw, 0o755) == nil && os.Rename(tmp, cached) == nil {
			return cached
		}
		os.Remove(tmp)
	}
	return bin
}

// readPreviousRelease returns the full commit hash the file names: its
// first line that is neither empty nor a # comment.
func readPreviousRelease(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("the previous release's commit: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) != 40 || strings.Trim(line, "0123456789abcdef") != "" {
			return "", fmt.Errorf("%s: %q is not a full commit hash (40 hex digits)", path, line)
		}
		return line, nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s names no commit", path)
}

// upNode is one node process of the rolling upgrade, started by the test.
type upNode struct {
	i         int
	home, url string
	cmd       *exec.Cmd
	exited    chan struct{}
}

func (nd *upNode) start(t *testing.T, bin string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(nd.home, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "--- started as %s\n", bin)
	cmd := exec.Command(bin, "node", "--home", nd.home)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node%d: %v", nd.i, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	nd.cmd, nd.exited = cmd, exited
}

func (nd *upNode) waitAnswers(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(upgradeStart)
	for {
		if _, err := height(nd.url); err == nil {
			return
		}
		select {
		case <-nd.exited:
			t.Fatalf("node%d exited at start (%s): %s", nd.i, nd.cmd.ProcessState, lastLogLine(nd.home))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node%d did not answer JSON-RPC within %s: %s", nd.i, upgradeStart, lastLogLine(nd.home))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and wants a clean exit in time.
func (nd *upNode) stop(t *testing.T) {
	t.Helper()
	nd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nd.exited:
		if !nd.cmd.ProcessState.Success() {
			t.Fatalf("node%d did not stop cleanly on SIGTERM (%s): %s", nd.i, nd.cmd.ProcessState, lastLogLine(nd.home))
		}
	case <-time.After(upgradeStop):
		t.Fatalf("node%d did not stop within %s of SIGTERM", nd.i, upgradeStop)
	}
}

func (nd *upNode) kill() {
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nd.exited:
	case <-time.After(upgradeStop):
		nd.cmd.Process.Kill()
		<-nd.exited
	}
}

func lastLogLine(home string) string {
	raw, _ := os.ReadFile(filepath.Join(home, "node.log"))
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return lines[len(lines)-1]
}

// upgradeTestnet describes the nodes as a testnet, for the shared checks.
func upgradeTestnet(t *testing.T, nodes []*upNode) *testnet {
	var ep struct {
		Nodes []map[string]string `json:"nodes"`
	}
	for _, nd := range nodes {
		ep.Nodes = append(ep.Nodes, map[string]string{"name": "node" + strconv.Itoa(nd.i), "rpc": nd.url, "home": nd.home})
	}
	raw, _ := json.Marshal(ep)
	tn := &testnet{t: t}
	if err := json.Unmarshal(raw, &tn.ep); err != nil {
		t.Fatal(err)
	}
	return tn
}

func waitPeers(t *testing.T, nodes []*upNode, want uint64) {
	t.Helper()
	waitFor(t, upgradeCatchUp, "every node connected to every other", func() bool {
		for _, nd := range nodes {
			if c, err := peerCount(nd.url); err != nil || c != want {
				return false
			}
		}
		return true
	})
}

// maxHeight is the highest height among the nodes other than skip that answer.
func maxHeight(nodes []*upNode, skip int) uint64 {
	var top uint64
	for _, nd := range nodes {
		if nd.i == skip {
			continue
		}
		if h, err := height(nd.url); err == nil {
			top = max(top, h)
		}
	}
	return top
}

// rollingLoad sends transfers from development accounts, each through a
// node in the load (a node taken out gets no new sends), moving on to the
// next node in the load when one fails, and remembers which node accepted
// each transaction.
type rollingLoad struct {
	*netLoad
	urls     []string
	routable []bool      // under netLoad.mu
	inflight []int       // sends under way, per node; under netLoad.mu
	byNode   [][]*sentTx // what each node accepted; under netLoad.mu
	failures []string    // senders that gave up; under netLoad.mu
	haltOnce sync.Once
}

func startRollingLoad(t *testing.T, nodes []*upNode, senders int, interval time.Duration) *rollingLoad {
	t.Helper()
	l := &rollingLoad{netLoad: &netLoad{stop: make(chan struct{})}}
	for _, nd := range nodes {
		l.urls = append(l.urls, nd.url)
		l.routable = append(l.routable, true)
	}
	l.inflight = make([]int, len(nodes))
	l.byNode = make([][]*sentTx, len(nodes))
	accts, err := chain.DevAccounts(senders)
	if err != nil {
		t.Fatal(err)
	}
	signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
	for s, a := range accts {
		l.wg.Add(1)
		go func(s int, a chain.DevAccount) {
			defer l.wg.Done()
			if err := l.send(s, a, signer, interval); err != nil {
				l.mu.Lock()
				l.failures = append(l.failures, fmt.Sprintf("sender %d (%s): %v", s, a.Address, err))
				l.mu.Unlock()
			}
		}(s, a)
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
			l.pollReceipts(l.routed())
		}
	}()
	return l
}

// send runs one sender until stop; an error is a sender that could not
// place a transaction anywhere for a whole minute.
func (l *rollingLoad) send(s int, a chain.DevAccount, signer types.Signer, interval time.Duration) error {
	const retryFor = time.Minute
	var nonce uint64
	got := false
	for deadline := time.Now().Add(retryFor); !got; {
		for _, url := range l.routed() {
			c, err := ethclient.Dial(url)
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			nonce, err = c.PendingNonceAt(ctx, a.Address)
			cancel()
			c.Close()
			if err == nil {
				got = true
				break
			}
		}
		if !got && time.Now().After(deadline) {
			return errors.New("no node answered its nonce")
		}
		select {
		case <-l.stop:
			return nil
		case <-time.After(interval):
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for k := 0; k < 100_000; k++ {
		select {
		case <-l.stop:
			return nil
		case <-tick.C:
		}
		to := recipients[k%len(recipients)]
		tx := types.MustSignNewTx(a.Key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID), Nonce: nonce,
			Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
		var lastErr error
		deadline := time.Now().Add(retryFor)
		for attempt := 0; ; attempt++ {
			i, ok := l.pick(s + attempt)
			if ok {
				err := l.sendTo(i, tx)
				if err == nil {
					break
				}
				lastErr = err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("nonce %d not accepted by any node for %s: %v", nonce, retryFor, lastErr)
			}
			select {
			case <-l.stop:
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		}
		nonce++
	}
	return nil
}

// pick returns the k-th node in the load, counting round from k.
func (l *rollingLoad) pick(k int) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for j := 0; j < len(l.urls); j++ {
		i := (k + j) % len(l.urls)
		if l.routable[i] {
			l.inflight[i]++
			return i, true
		}
	}
	return 0, false
}

// sendTo submits tx to node i (counted in flight by pick). A node that
// already knows it, or whose chain is past its nonce, holds it already:
// the transaction counts as accepted there, and the final check proves it
// committed.
func (l *rollingLoad) sendTo(i int, tx *types.Transaction) error {
	defer func() {
		l.mu.Lock()
		l.inflight[i]--
		l.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := ethclient.DialContext(ctx, l.urls[i])
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.SendTransaction(ctx, tx)
	if err != nil && !strings.Contains(err.Error(), "already known") && !strings.Contains(err.Error(), "nonce too low") {
		return err
	}
	st := &sentTx{hash: tx.Hash()}
	l.mu.Lock()
	l.sent = append(l.sent, st)
	l.byNode[i] = append(l.byNode[i], st)
	l.mu.Unlock()
	return nil
}

// route puts node i in or out of the load.
func (l *rollingLoad) route(i int, in bool) {
	l.mu.Lock()
	l.routable[i] = in
	l.mu.Unlock()
}

func (l *rollingLoad) routed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for i, u := range l.urls {
		if l.routable[i] {
			out = append(out, u)
		}
	}
	return out
}

// drain waits until no send to node i is under way and every transaction
// it accepted has a receipt.
func (l *rollingLoad) drain(t *testing.T, i int) {
	t.Helper()
	waitFor(t, upgradeDrain, fmt.Sprintf("every transaction node%d accepted committed", i), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.inflight[i] > 0 {
			return false
		}
		for _, s := range l.byNode[i] {
			if s.block == (common.Hash{}) {
				return false
			}
		}
		return true
	})
}

func (l *rollingLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sent)
}

func (l *rollingLoad) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) == 0 {
		return nil
	}
	return errors.New(strings.Join(l.failures, "; "))
}

// finish stops the senders and waits for the receipts (netLoad.finish).
func (l *rollingLoad) finish(urls []string) ([]*sentTx, int) {
	var sent []*sentTx
	var acked int
	l.haltOnce.Do(func() { sent, acked = l.netLoad.finish(urls) })
	return sent, acked
}

// halt stops the senders when the test ends early.
func (l *rollingLoad) halt() {
	l.haltOnce.Do(func() { close(l.stop); l.wg.Wait() })
}
