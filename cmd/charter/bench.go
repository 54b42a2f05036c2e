package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/bench"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
)

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	rpcs := fs.String("rpc", "http://127.0.0.1:8545", "JSON-RPC endpoints, comma separated; senders are spread over them (default with --net: every node of the network)")
	txs := fs.Int("txs", 10000, "transactions to measure (not with --duration)")
	duration := fs.Duration("duration", 0, "a sustained run: submit at --rate for this long (e.g. 30s) instead of a fixed --txs; keeps nothing per transaction (latency histograms, per-second series); not with --txs")
	mixFlag := fs.String("mix", "", "--kind mixed: percent shares of each kind of transaction, adding up to 100 (default "+bench.DefaultMix.String()+")")
	metricsFlag := fs.String("metrics", "", "Prometheus /metrics URLs of the nodes, comma separated: their consensus round changes and height are scraped each second (default with --net: every node's)")
	compare := fs.String("compare", "", "also run the same load against this other JSON-RPC endpoint (e.g. geth --dev), alternating with the Charter runs, and print the medians and the ratios charter/other")
	runs := fs.Int("runs", 3, "--compare: runs on each side")
	compareKey := fs.String("compare-key", "", "--compare: file with the hex private key that funds the senders on the other endpoint (default: its first eth_accounts account, through eth_sendTransaction, as geth --dev has)")
	senders := fs.Int("senders", 20, "distinct sending accounts (beyond the 20 funded development accounts, new ones are funded from account 0; on a governed network they need --admin-key to get role write); private-erc20: over all organizations of the group")
	kind := fs.String("kind", "transfer", "transfer, erc20, mixed (transfers, ERC-20 transfers, contract creations and calls to one hot contract, see --mix) or private-erc20 (ERC-20 transfers in a privacy group of the network's first organizations: give --net DIR, or --group-rpc)")
	rate := fs.Float64("rate", 0, "open-loop submission rate in transactions per second; 0 submits as fast as the nodes take them (--duration needs a rate)")
	batch := fs.Int("batch", 100, "raw transactions per JSON-RPC batch request (1: one request per transaction); with --rate a batch holds only transactions already due")
	keysFile := fs.String("keys", "", "file of hex private keys, one per line, mode 0600 (default: accounts of the development mnemonic)")
	adminKey := fs.String("admin-key", "", "key file of an organization admin account (e.g. NET/orgs/org0/admin-account.key): grants write to senders that lack it, and funds them if the funder cannot; private-erc20 with --group-rpc: one per organization of the group, comma separated, in the same order")
	adminPw := fs.String("admin-password-file", "", "password of --admin-key, on this file's first line")
	netDir := fs.String("net", "", "the network's folder ('charter testnet --dir'): its endpoints.json gives the nodes and their organizations, its orgs/ORG/admin-account.key the admins")
	groupRPC := fs.String("group-rpc", "", "private-erc20 without --net: one node endpoint per organization of the privacy group, comma separated (the first deploys the token)")
	groupOrgs := fs.Int("group-orgs", 2, "private-erc20 with --net: the privacy group is the network's first this many organizations")
	privGroup := fs.String("privacy-group", "", "private-erc20: run in this privacy group (base64 id) of exactly the group's organizations; default: one found with priv_findPrivacyGroup, or created")
	withPublic := fs.Bool("with-public", false, "private-erc20: then run public erc20 with the same transactions, senders, rate and endpoints, and print both")
	jsonOut := fs.String("json", "", "also write the result as JSON to this file (with --with-public: {\"private\": ..., \"public\": ..., \"tps_ratio\": ...}; with --compare: every run, the medians and the ratios)")
	htmlOut := fs.String("html", "", "also write a self-contained HTML page charting latency, throughput per second and round changes over time to this file (--compare: of the last Charter run)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the last transaction after submission ends")
	af := addAccessFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	set := flagsSet(fs)
	private := *kind == bench.KindPrivateERC20
	if set["duration"] && set["txs"] {
		return errors.New("--txs and --duration both set the length of the run; give one")
	}
	var mix bench.Mix
	if set["mix"] {
		if *kind != bench.KindMixed {
			return fmt.Errorf("--mix goes with --kind %s", bench.KindMixed)
		}
		var err error
		if mix, err = bench.ParseMix(*mixFlag); err != nil {
			return err
		}
	}
	if *compare == "" && (set["runs"] || set["compare-key"]) {
		return errors.New("--runs and --compare-key go with --compare URL")
	}
	if *compare != "" && (private || *withPublic) {
		return fmt.Errorf("--compare runs public loads; not with --kind %s", bench.KindPrivateERC20)
	}
	if *withPublic && !private {
		return fmt.Errorf("--with-public goes with --kind %s", bench.KindPrivateERC20)
	}
	if *groupRPC != "" && *netDir != "" {
		return errors.New("--group-rpc and --net both name the group's nodes; give one")
	}
	pw, err := readPassword("admin-password-file", *adminPw)
	if err != nil {
		return err
	}
	var net *Endpoints
	if *netDir != "" {
		if net, err = readEndpoints(*netDir); err != nil {
			return err
		}
		// The nodes of a network folder present certificates of their
		// organizations' CAs.
		if af.defaultCAs, err = filepath.Glob(filepath.Join(*netDir, "orgs", "*", "ca.crt")); err != nil {
			return fmt.Errorf("--net: %w", err)
		}
	}
	access, err := af.access()
	if err != nil {
		return err
	}
	endpoints := strings.Split(*rpcs, ",")
	if net != nil && !set["rpc"] {
		endpoints = nil
		for _, n := range net.Nodes {
			endpoints = append(endpoints, n.RPC)
		}
	}
	var metrics []string
	if *metricsFlag != "" {
		metrics = strings.Split(*metricsFlag, ",")
	} else if net != nil {
		for _, n := range net.Nodes {
			if n.Metrics != "" {
				metrics = append(metrics, n.Metrics)
			}
		}
	}
	var group []bench.GroupOrg
	if private {
		if group, err = benchGroup(net, *netDir, *groupOrgs, *groupRPC, *adminKey, pw); err != nil {
			return err
		}
		if *withPublic && !set["rpc"] {
			endpoints = nil // the same nodes as the private run
			for _, g := range group {
				endpoints = append(endpoints, g.Endpoints...)
			}
		}
	}
	var keys []*ecdsa.PrivateKey
	var funder *ecdsa.PrivateKey
	if *keysFile != "" {
		if keys, err = readKeys(*keysFile); err != nil {
			return err
		}
		if len(keys) > 0 {
			funder = keys[0]
		}
	} else {
		if *senders < 1 || *senders > 100_000 {
			return fmt.Errorf("--senders %d is outside [1, 100000]", *senders)
		}
		accts, err := chain.DeriveAccounts(chain.DevMnemonic, *senders)
		if err != nil {
			return err
		}
		for _, a := range accts {
			keys = append(keys, a.Key)
		}
		funder = keys[0]
	}
	var admin *ecdsa.PrivateKey
	switch {
	case private && !*withPublic:
	case *adminKey != "" && !strings.Contains(*adminKey, ","):
		if admin, err = loadAdminKey("--admin-key", *adminKey, pw); err != nil {
			return err
		}
	case net != nil && len(net.Nodes) > 0:
		// The development accounts belong to the first organization.
		path := filepath.Join(*netDir, "orgs", net.Nodes[0].Org, node.AdminAccountFile)
		if _, serr := os.Stat(path); serr == nil {
			if admin, err = loadAdminKey("--net", path, pw); err != nil {
				return err
			}
		}
	}
	cfg := bench.Config{
		Endpoints: endpoints,
		Txs:       *txs,
		Duration:  *duration,
		Mix:       mix,
		Metrics:   metrics,
		Senders:   *senders,
		Kind:      *kind,
		Rate:      *rate,
		Batch:     *batch,
		Funder:    funder,
		Admin:     admin,
		Keys:      keys,
		Timeout:   *timeout,
		Progress:  stderr,
		Dialer:    access,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *compare != "" {
		other := cfg
		other.Endpoints, other.Metrics, other.Dialer, other.Admin = []string{*compare}, nil, nil, nil
		other.FundFromNode = true
		if *compareKey != "" {
			ks, err := readKeys(*compareKey)
			if err != nil {
				return fmt.Errorf("--compare-key: %w", err)
			}
			if len(ks) == 0 {
				return fmt.Errorf("--compare-key %s holds no key", *compareKey)
			}
			other.Funder, other.FundFromNode = ks[0], false
		}
		return runCompare(ctx, stdout, access, cfg, other, *runs, *compare, *jsonOut, *htmlOut)
	}
	var res, pub *bench.Result
	if private {
		pcfg := cfg
		pcfg.Group, pcfg.PrivacyGroup = group, *privGroup
		if res, err = bench.Run(ctx, pcfg); err != nil {
			return access.runError(err)
		}
		scrubResult(access, res)
		printBench(stdout, res)
		if *withPublic {
			cfg.Kind = bench.KindERC20
			if pub, err = bench.Run(ctx, cfg); err != nil {
				return fmt.Errorf("public erc20 after the private run: %w", access.runError(err))
			}
			scrubResult(access, pub)
			printBench(stdout, pub)
			fmt.Fprintf(stdout, "private/public: throughput %.2f, p50 %.2f, p99 %.2f\n",
				ratio(res.TPS, pub.TPS), ratio(res.Latency.P50, pub.Latency.P50), ratio(res.Latency.P99, pub.Latency.P99))
		}
	} else {
		if res, err = bench.Run(ctx, cfg); err != nil {
			return access.runError(err)
		}
		scrubResult(access, res)
		printBench(stdout, res)
	}
	if *jsonOut != "" {
		var out any = res
		if pub != nil {
			out = struct {
				Private  *bench.Result `json:"private"`
				Public   *bench.Result `json:"public"`
				TPSRatio float64       `json:"tps_ratio"`
			}{res, pub, ratio(res.TPS, pub.TPS)}
		}
		data, _ := json.MarshalIndent(out, "", "  ")
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *jsonOut, err)
		}
	}
	if err := writeHTML(*htmlOut, res); err != nil {
		return err
	}
	return checkFailed(res, pub)
}

// checkFailed is an error if a transaction of any of the runs failed.
func checkFailed(runs ...*bench.Result) error {
	for _, r := range runs {
		if r != nil && r.Failed > 0 {
			return fmt.Errorf("%s: %d of %d transactions failed", r.Kind, r.Failed, r.Sent)
		}
	}
	return nil
}

// writeHTML writes res's chart to path, if a path is given.
func writeHTML(path string, res *bench.Result) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	err = bench.WriteHTML(f, res)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	return nil
}

// runCompare runs the load against Charter and the other endpoint in
// turn, prints each run as it ends and then the medians and ratios.
func runCompare(ctx context.Context, stdout io.Writer, access *apiAccess, charterCfg, other bench.Config, runs int, otherURL, jsonOut, htmlOut string) error {
	each := func(side string, k int, res *bench.Result) {
		if side == "charter" {
			scrubResult(access, res)
		}
		where := strings.Join(charterCfg.Endpoints, ",")
		if side == "other" {
			where = otherURL
		}
		fmt.Fprintf(stdout, "run %d of %d, %s (%s):\n", k, runs, side, where)
		printBench(stdout, res)
	}
	c, err := bench.Compare(ctx, bench.Run, charterCfg, other, runs, each)
	if err != nil {
		return access.runError(err)
	}
	bench.WriteComparison(stdout, c)
	if jsonOut != "" {
		data, _ := json.MarshalIndent(c, "", "  ")
		if err := os.WriteFile(jsonOut, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", jsonOut, err)
		}
	}
	if err := writeHTML(htmlOut, c.Charter[len(c.Charter)-1]); err != nil {
		return err
	}
	return checkFailed(append(append([]*bench.Result(nil), c.Charter...), c.Other...)...)
}

// scrubResult removes the token from the submission errors of a run
// before they are printed or written.
func scrubResult(a *apiAccess, res *bench.Result) {
	for i, e := range res.Errors {
		res.Errors[i] = a.scrub(e)
	}
}

func printBench(w io.Writer, res *bench.Result) {
	to := "finality"
	if res.Kind == bench.KindPrivateERC20 {
		to = "private receipt"
	}
	fmt.Fprintf(w, "%s: sent %d, confirmed %d, failed %d in %.2fs over %d blocks\n", res.Kind, res.Sent, res.Confirmed, res.Failed, res.DurationS, res.Blocks)
	fmt.Fprintf(w, "throughput %.1f tx/s; submission to %s p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		res.TPS, to, res.Latency.P50, res.Latency.P95, res.Latency.P99, res.Latency.Max)
	for _, name := range []string{"transfer", "erc20", "create", "hot"} {
		if k := res.ByKind[name]; k != nil {
			fmt.Fprintf(w, "  %-8s sent %d, confirmed %d, failed %d; p50 %.1f ms, p99 %.1f ms\n", name, k.Sent, k.Confirmed, k.Failed, k.Latency.P50, k.Latency.P99)
		}
	}
	if c := res.Consensus; c != nil {
		fmt.Fprintf(w, "consensus: %.0f round changes over %.0f heights (%.3f per height) on the busiest of %d nodes\n", c.RoundChanges, c.Heights, c.PerHeight, len(c.Nodes))
		for _, n := range c.Nodes {
			if n.Error != "" {
				fmt.Fprintf(w, "  metrics %s: %s\n", n.URL, n.Error)
			}
		}
	}
	for _, e := range res.Errors {
		fmt.Fprintf(w, "submission error: %s\n", e)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// maxEndpointsBytes bounds NET/endpoints.json.
const maxEndpointsBytes = 1 << 20

// readEndpoints reads DIR/endpoints.json, which 'charter testnet' writes
// once every node answers.
func readEndpoints(dir string) (*Endpoints, error) {
	path := filepath.Join(dir, EndpointsFile)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--net: %w (is 'charter testnet --dir %s' running?)", err, dir)
	}
	defer f.Close()
	var ep Endpoints
	if err := json.NewDecoder(io.LimitReader(f, maxEndpointsBytes)).Decode(&ep); err != nil {
		return nil, fmt.Errorf("--net: %s: %w", path, err)
	}
	if len(ep.Nodes) == 0 {
		return nil, fmt.Errorf("--net: %s lists no node", path)
	}
	return &ep, nil
}

// benchGroup is the privacy group of a private-erc20 run: from the
// network folder, the first orgs organizations in the order of their first
// node, each with its nodes and its admin key; or one organization per
// --group-rpc endpoint, named by its --admin-key (or derived senders).
func benchGroup(net *Endpoints, dir string, orgs int, groupRPC, adminKeys string, pw []byte) ([]bench.GroupOrg, error) {
	if net == nil {
		if groupRPC == "" {
			return nil, fmt.Errorf("--kind %s needs the group's nodes: --net DIR (a 'charter testnet' folder), or --group-rpc URL,URL with --admin-key FILE,FILE", bench.KindPrivateERC20)
		}
		urls := strings.Split(groupRPC, ",")
		var files []string
		if adminKeys != "" {
			files = strings.Split(adminKeys, ",")
		}
		if len(files) != len(urls) {
			return nil, fmt.Errorf("--admin-key: %d key files for %d --group-rpc endpoints: give one admin key per organization, in the same order", len(files), len(urls))
		}
		group := make([]bench.GroupOrg, len(urls))
		for k, u := range urls {
			admin, err := loadAdminKey("--admin-key", files[k], pw)
			if err != nil {
				return nil, err
			}
			group[k] = bench.GroupOrg{Endpoints: []string{u}, Admin: admin}
		}
		return group, nil
	}
	if orgs < 2 || orgs > bench.MaxGroupOrgs {
		return nil, fmt.Errorf("--group-orgs %d is outside [2, %d]", orgs, bench.MaxGroupOrgs)
	}
	var group []bench.GroupOrg
	index := map[string]int{}
	for _, n := range net.Nodes {
		k, ok := index[n.Org]
		if !ok {
			if len(group) == orgs {
				continue
			}
			k = len(group)
			index[n.Org] = k
			group = append(group, bench.GroupOrg{Name: n.Org})
		}
		group[k].Endpoints = append(group[k].Endpoints, n.RPC)
	}
	if len(group) < orgs {
		return nil, fmt.Errorf("--net: the network has %d organizations, the group needs %d (--group-orgs)", len(group), orgs)
	}
	for k := range group {
		admin, err := loadAdminKey("--net", filepath.Join(dir, "orgs", group[k].Name, node.AdminAccountFile), pw)
		if err != nil {
			return nil, err
		}
		group[k].Admin = admin
	}
	return group, nil
}

func loadAdminKey(flagName, path string, pw []byte) (*ecdsa.PrivateKey, error) {
	key, err := identity.LoadNodeKey(path, pw)
	if err != nil {
		if errors.Is(err, identity.ErrPasswordRequired) {
			return nil, fmt.Errorf("%s: %s: %w; give --admin-password-file FILE", flagName, path, err)
		}
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	return key, nil
}

// maxKeysFileBytes bounds --keys: 100,000 keys (--senders' maximum) of 66
// characters a line, with room for comments.
const maxKeysFileBytes = 16 << 20

// readKeys reads hex private keys, one per line; # starts a comment. A
// file that group or others may read is refused.
func readKeys(path string) ([]*ecdsa.PrivateKey, error) {
	data, err := identity.ReadPrivateFile(path, maxKeysFileBytes)
	if err != nil {
		return nil, fmt.Errorf("--keys: %w", err)
	}
	var keys []*ecdsa.PrivateKey
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, err := crypto.HexToECDSA(strings.TrimPrefix(text, "0x"))
		if err != nil {
			return nil, fmt.Errorf("--keys %s line %d: not a hex private key", path, line)
		}
		keys = append(keys, key)
	}
	return keys, sc.Err()
}
