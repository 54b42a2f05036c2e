package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/console"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
)

// EndpointsFile is what testnet writes once every node answers.
const EndpointsFile = "endpoints.json"

// Endpoints is DIR/endpoints.json (INTERFACE.md).
type Endpoints struct {
	ChainID   uint64     `json:"chainId"`
	Consensus string     `json:"consensus"`
	Nodes     []Endpoint `json:"nodes"`
}

// Endpoint is one node of Endpoints.
type Endpoint struct {
	Name    string `json:"name"`
	Org     string `json:"org"`
	RPC     string `json:"rpc"`
	P2P     string `json:"p2p"`
	Metrics string `json:"metrics"`
	PID     int    `json:"pid"`
	Home    string `json:"home"`
	// Console is the node's web console (RPC + /console/): the view of
	// the node's organization.
	Console string `json:"console"`
}

// testnet bounds.
const (
	nodeStartTimeout = 60 * time.Second // until every node answers eth_chainId
	nodeStopTimeout  = 30 * time.Second // after SIGTERM, before SIGKILL
)

// Restarts under --restart on-failure: the delay before a restart starts
// at restartMinDelay and doubles with every restart up to restartMaxDelay;
// a node that stayed up restartResetAfter before it died starts over at
// restartMinDelay.
const (
	restartMinDelay   = time.Second
	restartMaxDelay   = 30 * time.Second
	restartResetAfter = time.Minute
)

// The values of --restart.
const (
	restartNo        = "no"
	restartOnFailure = "on-failure"
)

type testnetNode struct {
	name, org, home string
	cfg             *node.HomeConfig
	cmd             *exec.Cmd
	log             *os.File
	exited          chan struct{} // closed when cmd has exited
	started         time.Time     // when cmd started
	restarts        int           // restarts so far
	delay           time.Duration // the delay of the last restart; 0 before the first
	memoryLimit     int64         // GOMEMLIMIT of the process; 0: its own choice
}

// testnetGCPercent is the GOGC of a testnet's nodes. A node alone on its
// machine collects at 5x its live heap (cmd/charter's main: +10-18 % in
// the single-node bench); nodes that share one machine share its caches
// and memory bandwidth, and four heaps each five times their live one
// cost them more in fresh pages and cache misses than the collector
// saves: at Go's default, a 4-validator testnet on two cores does 8-17 %
// more public and about 14 % more private transfers (BENCHMARKS.md,
// "Private transfers, fifth round").
const testnetGCPercent = 100

// nodeEnv is the environment of a testnet node: the testnet's own, with
// the node's share of the memory as GOMEMLIMIT (memoryLimit > 0) and
// testnetGCPercent as GOGC, each unless the environment sets it.
func nodeEnv(environ []string, memoryLimit int64) []string {
	env := slices.Clone(environ)
	if memoryLimit > 0 {
		env = append(env, "GOMEMLIMIT="+strconv.FormatInt(memoryLimit, 10))
	}
	if !slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, "GOGC=") }) {
		env = append(env, "GOGC="+strconv.Itoa(testnetGCPercent))
	}
	return env
}

// restartDelay is the delay before restarting a node that failed after
// running for uptime, given the delay of its previous restart (0: none).
func restartDelay(prev, uptime time.Duration) time.Duration {
	if prev <= 0 || uptime >= restartResetAfter {
		return restartMinDelay
	}
	return min(2*prev, restartMaxDelay)
}

// failed tells whether a process ended abnormally: a non-zero exit status
// or a signal (a node exits 0 after a SIGTERM or Ctrl-C of its own).
func failed(st *os.ProcessState) bool {
	return st != nil && !st.Success()
}

func runTestnet(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("testnet", stderr)
	nf := addNetworkFlags(fs, true)
	dir := fs.String("dir", "", "the network's folder: written by 'charter init' first if it holds no genesis.json")
	indexAll := fs.Bool("index", false, "every node indexes its final blocks into SQL (an SQLite file in its data directory; query with charter sql)")
	restart := fs.String("restart", restartNo, "'on-failure': restart a node that exits abnormally (non-zero status or a signal other than a SIGTERM it handled), after 1s doubling to 30s; 'no': report it only")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *restart != restartNo && *restart != restartOnFailure {
		return fmt.Errorf("--restart %q: want %s or %s", *restart, restartNo, restartOnFailure)
	}
	if *dir == "" {
		return errors.New("--dir is required: the network's folder")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	set := flagsSet(fs)
	wantDev, err := nf.devAccountsWanted(set)
	if err != nil {
		return err
	}
	// What every node is started with besides its home.
	var nodeArgs []string
	if *nf.passwordFile != "" {
		pw, err := filepath.Abs(*nf.passwordFile)
		if err != nil {
			return err
		}
		nodeArgs = append(nodeArgs, "--password-file", pw)
	}
	if *nf.allowDevKeys {
		nodeArgs = append(nodeArgs, "--allow-dev-keys")
	}
	if *indexAll {
		nodeArgs = append(nodeArgs, "--index")
	}

	// Init when the folder holds no network yet.
	if _, err := os.Stat(filepath.Join(abs, node.GenesisFile)); errors.Is(err, os.ErrNotExist) {
		opts, err := nf.options(abs, set)
		if err != nil {
			return err
		}
		spec, nodes, err := node.InitNetwork(opts)
		if err != nil {
			return devKeysHint(err)
		}
		printNetwork(stdout, abs, spec, nodes)
	}
	spec, err := chain.LoadSpec(filepath.Join(abs, node.GenesisFile))
	if err != nil {
		return err
	}
	nodes, err := loadTestnet(abs)
	if err != nil {
		return err
	}
	if set["consensus"] && *nf.engine != spec.Consensus.Engine {
		return fmt.Errorf("--consensus %s, but %s holds a %s network; remove it or choose another --dir", *nf.engine, abs, spec.Consensus.Engine)
	}
	if set["validators"] && *nf.validators+*nf.observers != len(nodes) {
		return fmt.Errorf("--validators %d and --observers %d, but %s holds %d nodes; remove it or choose another --dir", *nf.validators, *nf.observers, abs, len(nodes))
	}
	devHow, err := node.DevKeysInGenesis(spec)
	if err != nil {
		return err
	}
	if set["dev-accounts"] || set["no-dev-accounts"] {
		switch {
		case wantDev && devHow == "":
			return fmt.Errorf("--dev-accounts, but the genesis in %s does not fund the development accounts; remove it or choose another --dir", abs)
		case !wantDev && devHow != "":
			return fmt.Errorf("--no-dev-accounts, but the genesis in %s %s the development accounts; remove it or choose another --dir", abs, devHow)
		}
	}
	if devHow != "" {
		fmt.Fprintf(stdout, "Development accounts: the genesis %s the %d accounts of the public test mnemonic (keys printed by 'charter dev'): a local playground, never for anything of value\n",
			devHow, chain.DevAccountCount)
	}
	os.Remove(filepath.Join(abs, EndpointsFile)) // stale from an earlier run

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the charter binary to start nodes: %w", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	// The nodes share the machine: each takes a share of its memory as its
	// limit, unless GOMEMLIMIT says otherwise.
	if os.Getenv("GOMEMLIMIT") == "" {
		limit := nodeMemoryLimit(machineMemory(), len(nodes))
		for _, n := range nodes {
			n.memoryLimit = limit
		}
	}
	for _, n := range nodes {
		if err := n.start(self, nodeArgs); err != nil {
			stopAll(nodes, stderr)
			return err
		}
	}
	// Wait for every node to answer, or one to die, or a signal.
	ctx, cancel := context.WithTimeout(context.Background(), nodeStartTimeout)
	defer cancel()
	for _, n := range nodes {
		if err := n.waitReady(ctx, sigs); err != nil {
			stopAll(nodes, stderr)
			return err
		}
	}
	ep := Endpoints{ChainID: spec.ChainID(), Consensus: spec.Consensus.Engine}
	for _, n := range nodes {
		e := Endpoint{Name: n.name, Org: n.org, RPC: n.apiURL(), P2P: n.cfg.P2PAddr, PID: n.cmd.Process.Pid, Home: n.home}
		e.Console = strings.TrimSuffix(e.RPC, "/") + console.Path
		if n.cfg.MetricsAddr != "" {
			e.Metrics = "http://" + n.cfg.MetricsAddr + "/metrics"
		}
		ep.Nodes = append(ep.Nodes, e)
	}
	epPath := filepath.Join(abs, EndpointsFile)
	if err := writeJSONAtomic(epPath, ep); err != nil {
		stopAll(nodes, stderr)
		return err
	}
	fmt.Fprintf(stdout, "Testnet of %d %s nodes running, chain id %d; endpoints in %s\n", len(nodes), spec.Consensus.Engine, spec.ChainID(), epPath)
	for _, e := range ep.Nodes {
		fmt.Fprintf(stdout, "  %-6s %-6s pid %-7d %s  log %s\n", e.Name, e.Org, e.PID, e.RPC, filepath.Join(e.Home, "node.log"))
	}
	if len(ep.Nodes) > 0 {
		fmt.Fprintf(stdout, "Web console: %s (each node's RPC URL + /console/ shows what its organization sees)\n", ep.Nodes[0].Console)
	}
	if *restart == restartOnFailure {
		fmt.Fprintf(stdout, "A node that fails is restarted after %s, doubling up to %s (kill -TERM PID stops one for good). Ctrl-C stops all.\n", restartMinDelay, restartMaxDelay)
	} else {
		fmt.Fprintln(stdout, "A node that dies is not restarted: 'charter node --home HOME' restarts it (or run testnet with --restart on-failure). Ctrl-C stops all.")
	}

	// Run until a signal; report nodes that die, and restart those that
	// failed under --restart on-failure.
	alive := len(nodes)
	died := make(chan int, len(nodes)) // each node has at most one process at a time
	watch := func(i int) {
		exited := nodes[i].exited
		go func() { <-exited; died <- i }()
	}
	for i := range nodes {
		watch(i)
	}
	due := make(map[int]time.Time) // nodes waiting for their restart
	var timer <-chan time.Time
	for alive > 0 || len(due) > 0 {
		select {
		case sig := <-sigs:
			fmt.Fprintf(stdout, "%s: stopping every node\n", sig)
			return stopAll(nodes, stderr)
		case i := <-died:
			n := nodes[i]
			st, log := n.cmd.ProcessState, filepath.Join(n.home, "node.log")
			alive--
			if *restart != restartOnFailure || !failed(st) {
				fmt.Fprintf(stderr, "charter testnet: %s (pid %d) %s; not restarted (see %s; restart with 'charter node --home %s')\n",
					n.name, n.cmd.Process.Pid, st, log, n.home)
				continue
			}
			n.delay = restartDelay(n.delay, time.Since(n.started))
			n.restarts++
			due[i] = time.Now().Add(n.delay)
			why := "see " + log
			if st.Exited() { // a node that stops by itself says why in its last line
				why += ": " + lastLine(log)
			}
			fmt.Fprintf(stderr, "charter testnet: %s (pid %d) %s; restart %d in %s (%s)\n",
				n.name, n.cmd.Process.Pid, st, n.restarts, n.delay, why)
		case <-timer:
		}
		// Restart the nodes whose delay has passed; arm the timer for the next.
		timer = nil
		var next time.Time
		for i, at := range due {
			if wait := time.Until(at); wait > 0 {
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			delete(due, i)
			n := nodes[i]
			if err := n.start(self, nodeArgs); err != nil {
				n.delay = restartDelay(n.delay, 0)
				n.restarts++
				due[i] = time.Now().Add(n.delay)
				fmt.Fprintf(stderr, "charter testnet: %s: %v; restart %d in %s\n", n.name, err, n.restarts, n.delay)
				if next.IsZero() || due[i].Before(next) {
					next = due[i]
				}
				continue
			}
			alive++
			watch(i)
			ep.Nodes[i].PID = n.cmd.Process.Pid
			if err := writeJSONAtomic(epPath, ep); err != nil {
				fmt.Fprintf(stderr, "charter testnet: update %s with %s's new pid %d: %v\n", epPath, n.name, n.cmd.Process.Pid, err)
			}
		}
		if !next.IsZero() {
			timer = time.After(time.Until(next))
		}
	}
	return errors.New("every node has stopped")
}

// loadTestnet reads the homes node0, node1, ... of a network folder.
func loadTestnet(dir string) ([]*testnetNode, error) {
	var nodes []*testnetNode
	for i := 0; i < 1000; i++ {
		home := filepath.Join(dir, "node"+strconv.Itoa(i))
		if _, err := os.Stat(home); errors.Is(err, os.ErrNotExist) {
			break
		}
		cfg, err := node.LoadHomeConfig(home)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, &testnetNode{name: cfg.Name, org: cfg.Org, home: home, cfg: cfg})
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("%s has a genesis but no node0 folder; is it a folder written by 'charter init'?", dir)
	}
	return nodes, nil
}

// start runs `charter node --home HOME [args]` as its own process, its
// output appended to HOME/node.log.
func (n *testnetNode) start(self string, args []string) error {
	f, err := os.OpenFile(filepath.Join(n.home, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.log = f
	n.exited = make(chan struct{})
	n.started = time.Now()
	n.cmd = exec.Command(self, append([]string{"node", "--home", n.home}, args...)...)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	n.cmd.Env = nodeEnv(os.Environ(), n.memoryLimit)
	// Own process group: a terminal's Ctrl-C reaches only testnet, which
	// stops the nodes in order. The kernel sends SIGTERM to a node whose
	// testnet dies without stopping it.
	n.cmd.SysProcAttr = nodeProcAttr()
	if err := n.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	cmd, exited := n.cmd, n.exited
	go func() {
		cmd.Wait()
		f.Close()
		close(exited)
	}()
	return nil
}

// apiURL is the node's JSON-RPC URL: https when its API serves TLS.
func (n *testnetNode) apiURL() string {
	if n.cfg.API != nil && n.cfg.API.TLS {
		return "https://" + n.cfg.RPCAddr
	}
	return "http://" + n.cfg.RPCAddr
}

// waitReady polls eth_chainId until the node answers (over TLS it trusts
// the node's CA; a node that requires a credential answers 401, which
// says it is up as well).
func (n *testnetNode) waitReady(ctx context.Context, sigs <-chan os.Signal) error {
	url := n.apiURL()
	client := &http.Client{Timeout: 2 * time.Second}
	if strings.HasPrefix(url, "https:") {
		chain, err := identity.ReadCertFile(filepath.Join(n.home, n.cfg.TLSCert))
		if err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
		roots := x509.NewCertPool()
		for _, c := range chain {
			roots.AddCert(c)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`)
	for {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err == nil {
			var r struct {
				Result string `json:"result"`
			}
			err = json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&r)
			resp.Body.Close()
			if err == nil && r.Result != "" || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case <-n.exited:
			return fmt.Errorf("%s exited at start (%s): %s", n.name, n.cmd.ProcessState, lastLine(filepath.Join(n.home, "node.log")))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer eth_chainId on %s within %s; see %s", n.name, url, nodeStartTimeout, filepath.Join(n.home, "node.log"))
		case sig := <-sigs:
			return fmt.Errorf("%s while starting", sig)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopAll sends SIGTERM to every running node and waits for each; a node
// that does not stop in time is killed.
func stopAll(nodes []*testnetNode, stderr io.Writer) error {
	for _, n := range nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	var failed []string
	deadline := time.After(nodeStopTimeout)
	for _, n := range nodes {
		if n.cmd == nil || n.cmd.Process == nil {
			continue
		}
		select {
		case <-n.exited:
		case <-deadline:
			n.cmd.Process.Kill()
			<-n.exited
			failed = append(failed, n.name+" (killed after "+nodeStopTimeout.String()+")")
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("nodes that did not stop cleanly: %s", strings.Join(failed, ", "))
	}
	return nil
}

// lastLine returns the last non-empty line of a log file (bounded read).
func lastLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const tail = 4096
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		f.Seek(st.Size()-tail, io.SeekStart)
	}
	data, _ := io.ReadAll(io.LimitReader(f, tail))
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
