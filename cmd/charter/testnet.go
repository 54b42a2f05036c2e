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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/charter-ledger/charter/internal/chain"
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
}

// testnet bounds.
const (
	nodeStartTimeout = 60 * time.Second // until every node answers eth_chainId
	nodeStopTimeout  = 30 * time.Second // after SIGTERM, before SIGKILL
)

type testnetNode struct {
	name, org, home string
	cfg             *node.HomeConfig
	cmd             *exec.Cmd
	log             *os.File
	exited          chan struct{}
}

func runTestnet(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("testnet", stderr)
	nf := addNetworkFlags(fs, true)
	dir := fs.String("dir", "", "the network's folder: written by 'charter init' first if it holds no genesis.json")
	indexAll := fs.Bool("index", false, "every node indexes its final blocks into SQL (an SQLite file in its data directory; query with charter sql)")
	if err := parse(fs, args); err != nil {
		return err
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
		if n.cfg.MetricsAddr != "" {
			e.Metrics = "http://" + n.cfg.MetricsAddr + "/metrics"
		}
		ep.Nodes = append(ep.Nodes, e)
	}
	if err := writeJSONAtomic(filepath.Join(abs, EndpointsFile), ep); err != nil {
		stopAll(nodes, stderr)
		return err
	}
	fmt.Fprintf(stdout, "Testnet of %d %s nodes running, chain id %d; endpoints in %s\n", len(nodes), spec.Consensus.Engine, spec.ChainID(), filepath.Join(abs, EndpointsFile))
	for _, e := range ep.Nodes {
		fmt.Fprintf(stdout, "  %-6s %-6s pid %-7d %s  log %s\n", e.Name, e.Org, e.PID, e.RPC, filepath.Join(e.Home, "node.log"))
	}
	fmt.Fprintln(stdout, "A node that dies is not restarted: 'charter node --home HOME' restarts it. Ctrl-C stops all.")

	// Run until a signal; report nodes that die.
	alive := len(nodes)
	died := make(chan *testnetNode, len(nodes))
	for _, n := range nodes {
		go func(n *testnetNode) { <-n.exited; died <- n }(n)
	}
	for alive > 0 {
		select {
		case sig := <-sigs:
			fmt.Fprintf(stdout, "%s: stopping every node\n", sig)
			return stopAll(nodes, stderr)
		case n := <-died:
			alive--
			fmt.Fprintf(stderr, "charter testnet: %s (pid %d) %s; not restarted (see %s; restart with 'charter node --home %s')\n",
				n.name, n.cmd.Process.Pid, n.cmd.ProcessState, filepath.Join(n.home, "node.log"), n.home)
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
		nodes = append(nodes, &testnetNode{name: cfg.Name, org: cfg.Org, home: home, cfg: cfg, exited: make(chan struct{})})
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
	n.cmd = exec.Command(self, append([]string{"node", "--home", n.home}, args...)...)
	n.cmd.Stdout, n.cmd.Stderr = f, f
	// Own process group: a terminal's Ctrl-C reaches only testnet, which
	// stops the nodes in order. The kernel sends SIGTERM to a node whose
	// testnet dies without stopping it.
	n.cmd.SysProcAttr = nodeProcAttr()
	if err := n.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	go func() {
		n.cmd.Wait()
		f.Close()
		close(n.exited)
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
