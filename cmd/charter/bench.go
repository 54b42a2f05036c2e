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
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/bench"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
)

func runBench(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	rpcs := fs.String("rpc", "http://127.0.0.1:8545", "JSON-RPC endpoints, comma separated; senders are spread over them")
	txs := fs.Int("txs", 10000, "transactions to measure")
	senders := fs.Int("senders", 20, "distinct sending accounts (beyond the 20 funded development accounts, new ones are funded from account 0; on a governed network they need --admin-key to get role write)")
	kind := fs.String("kind", "transfer", "transfer or erc20")
	rate := fs.Float64("rate", 0, "open-loop submission rate in transactions per second; 0 submits as fast as the nodes take them")
	batch := fs.Int("batch", 100, "raw transactions per JSON-RPC batch request (1: one request per transaction); with --rate a batch holds only transactions already due")
	keysFile := fs.String("keys", "", "file of hex private keys, one per line, mode 0600 (default: accounts of the development mnemonic)")
	adminKey := fs.String("admin-key", "", "key file of an organization admin account (e.g. NET/orgs/org0/admin-account.key): grants write to senders that lack it, and funds them if the funder cannot")
	adminPw := fs.String("admin-password-file", "", "password of --admin-key, on this file's first line")
	jsonOut := fs.String("json", "", "also write the result as JSON to this file")
	htmlOut := fs.String("html", "", "also write a self-contained HTML page charting latency over time to this file")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the last transaction after submission ends")
	if err := parse(fs, args); err != nil {
		return err
	}
	var keys []*ecdsa.PrivateKey
	var funder *ecdsa.PrivateKey
	if *keysFile != "" {
		var err error
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
	if *adminKey != "" {
		pw, err := readPassword("admin-password-file", *adminPw)
		if err != nil {
			return err
		}
		if admin, err = identity.LoadNodeKey(*adminKey, pw); err != nil {
			if errors.Is(err, identity.ErrPasswordRequired) {
				return fmt.Errorf("--admin-key: %w; give --admin-password-file FILE", err)
			}
			return fmt.Errorf("--admin-key: %w", err)
		}
	}
	cfg := bench.Config{
		Endpoints: strings.Split(*rpcs, ","),
		Txs:       *txs,
		Senders:   *senders,
		Kind:      *kind,
		Rate:      *rate,
		Batch:     *batch,
		Funder:    funder,
		Admin:     admin,
		Keys:      keys,
		Timeout:   *timeout,
		Progress:  stderr,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: sent %d, confirmed %d, failed %d in %.2fs over %d blocks\n", res.Kind, res.Sent, res.Confirmed, res.Failed, res.DurationS, res.Blocks)
	fmt.Fprintf(stdout, "throughput %.1f tx/s; submission to finality p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		res.TPS, res.Latency.P50, res.Latency.P95, res.Latency.P99, res.Latency.Max)
	for _, e := range res.Errors {
		fmt.Fprintf(stdout, "submission error: %s\n", e)
	}
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *jsonOut, err)
		}
	}
	if *htmlOut != "" {
		f, err := os.Create(*htmlOut)
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
	}
	if res.Failed > 0 {
		return fmt.Errorf("%d of %d transactions failed", res.Failed, res.Sent)
	}
	return nil
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
