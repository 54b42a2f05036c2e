package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/node"
	"github.com/charter-ledger/charter/internal/snapshot"
)

const snapshotUsage = `charter snapshot export [--height H] [--rpc URL] FILE | verify FILE [--genesis FILE | --home DIR] | import FILE --home DIR`

// runSnapshot is `charter snapshot export|verify|import`.
func runSnapshot(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("say what to do: %s", snapshotUsage)
	}
	switch args[0] {
	case "export":
		return runSnapshotExport(args[1:], stdout, stderr)
	case "verify":
		return runSnapshotVerify(args[1:], stdout, stderr)
	case "import":
		return runSnapshotImport(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintf(stderr, "Usage: %s\n", snapshotUsage)
		return nil
	}
	return fmt.Errorf("unknown snapshot command %q: %s", args[0], snapshotUsage)
}

// runSnapshotExport asks a running node for the snapshot of a height and
// writes it to FILE through FILE.partial, renamed only once the whole
// stream, trailer included, has arrived.
func runSnapshotExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot export", stderr)
	nf := addNodeFlags(fs)
	height := fs.String("height", "latest", "the block height to snapshot (default: the node's head)")
	setUsage(fs, stderr, "charter snapshot export [--height H] [--rpc URL] FILE: the node's state at a height, chunked and proved, with the block's certificate")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("give the file to write: charter snapshot export [--height H] FILE")
	}
	if *height != "latest" {
		if _, err := strconv.ParseUint(*height, 10, 64); err != nil {
			return fmt.Errorf("--height %q is not a block number", *height)
		}
	}
	file := pos[0]
	if _, err := os.Stat(file); err == nil {
		return fmt.Errorf("%s exists; give a new file name or remove it", file)
	}
	api, err := nf.rest(node.SnapshotPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api.base+"?height="+url.QueryEscape(*height), nil)
	if err != nil {
		return err
	}
	if api.a.token != "" {
		req.Header.Set("Authorization", "Bearer "+api.a.token)
	}
	resp, err := api.a.http.Do(req)
	if err != nil {
		if e := api.a.runError(err); isAccessError(e) {
			return e
		}
		return fmt.Errorf("cannot reach the node at %s: %s; is it running, and is --rpc right?", redactURL(*nf.rpc), api.a.scrub(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		switch resp.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("the node at %s does not serve snapshots (%s): is it a Charter node of this version?", redactURL(*nf.rpc), resp.Status)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("the node refused (%s): %s; snapshot export needs the admin role", resp.Status, strings.TrimSpace(api.a.scrub(string(msg))))
		}
		return fmt.Errorf("the node refused (%s): %s", resp.Status, strings.TrimSpace(api.a.scrub(string(msg))))
	}
	partial := file + ".partial"
	out, err := os.OpenFile(partial, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", partial, err)
	}
	n, cerr := io.Copy(out, resp.Body)
	if cerr == nil {
		cerr = out.Sync()
	}
	if err := out.Close(); cerr == nil {
		cerr = err
	}
	if cerr != nil {
		os.Remove(partial)
		return fmt.Errorf("the snapshot stream broke after %d bytes: %v; run the export again", n, cerr)
	}
	m, err := openSnapshot(partial)
	if err != nil {
		os.Remove(partial)
		return fmt.Errorf("the node sent an incomplete snapshot (%v); see its log and run the export again", err)
	}
	if err := os.Rename(partial, file); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(file)); err == nil {
		d.Sync()
		d.Close()
	}
	b, _ := m.Header.DecodeBlock()
	fmt.Fprintf(stdout, "snapshot of block %d (%s) written to %s: %d chunks, %d bytes\n", b.NumberU64(), b.Hash().Hex(), file, m.Trailer.Chunks, n)
	return nil
}

func openSnapshot(path string) (*snapshot.Manifest, error) {
	sf, f, err := snapshot.OpenFile(path)
	if err != nil {
		return nil, err
	}
	f.Close()
	return &sf.Manifest, nil
}

// snapshotSpec loads the chain spec from --genesis or a node home's
// config.json, and the data directory of the home.
func snapshotSpec(genesis, home string) (*chain.Spec, string, error) {
	var dataDir string
	if home != "" {
		hc, err := node.LoadHomeConfig(home)
		if err != nil {
			return nil, "", err
		}
		if genesis == "" {
			genesis = resolveHome(home, hc.Genesis)
		}
		dataDir = resolveHome(home, hc.DataDir)
	}
	if genesis == "" {
		return nil, "", errors.New("give the network's genesis: --genesis FILE or --home DIR (a node home written by 'charter init')")
	}
	spec, err := chain.LoadSpec(genesis)
	if err != nil {
		return nil, "", fmt.Errorf("genesis %s: %w", genesis, err)
	}
	return spec, dataDir, nil
}

func resolveHome(home, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(home, p)
}

func openSnapshotFile(path string) (*snapshot.File, func(), error) {
	sf, f, err := snapshot.OpenFile(path)
	if err != nil {
		return nil, nil, err
	}
	return sf, func() { f.Close() }, nil
}

// runSnapshotVerify checks a snapshot file against a network's genesis.
func runSnapshotVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot verify", stderr)
	genesis := fs.String("genesis", "", "the network's genesis file")
	home := fs.String("home", "", "a node home of the network (its genesis is used)")
	setUsage(fs, stderr, "charter snapshot verify FILE [--genesis FILE | --home DIR]: check a snapshot's certificate (against the network's genesis when given) and every chunk's proof")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("give the snapshot file: charter snapshot verify FILE [--genesis GENESIS]")
	}
	sf, done, err := openSnapshotFile(pos[0])
	if err != nil {
		return err
	}
	defer done()
	var trust snapshot.Trust
	if *genesis == "" && *home == "" {
		// Checked against itself only: the chain and validators the
		// snapshot's own state names.
		trust = snapshot.Trust{ChainID: sf.Manifest.Header.ChainID}
		fmt.Fprintln(stderr, "warning: no --genesis or --home: the snapshot is checked against the validators its own state names, not against a network's genesis")
	} else {
		spec, _, err := snapshotSpec(*genesis, *home)
		if err != nil {
			return err
		}
		g, err := ledger.GenesisBlock(spec)
		if err != nil {
			return err
		}
		trust = snapshot.TrustFromSpec(spec, g.Hash())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := snapshot.VerifyFile(ctx, sf, trust)
	if err != nil {
		return fmt.Errorf("%s is refused: %w", pos[0], err)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	signers := make([]string, len(rep.Signers))
	for i, s := range rep.Signers {
		signers[i] = s.Hex()
	}
	fmt.Fprintf(stdout, "snapshot valid: block %d %s, state root %s, %s certified by %s; %d chunks, %d accounts, %d storage slots\n",
		rep.Height, rep.Hash.Hex(), rep.Root.Hex(), rep.Engine, strings.Join(signers, ","), rep.Chunks, rep.Accounts, rep.Slots)
	return nil
}

// runSnapshotImport makes a snapshot the ledger of a node home whose data
// directory holds none; the node then follows the chain from the
// snapshot's height.
func runSnapshotImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("snapshot import", stderr)
	home := fs.String("home", "", "the node home to import into (its data directory must hold no ledger)")
	setUsage(fs, stderr, "charter snapshot import FILE --home DIR: start a node's ledger from a verified snapshot")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *home == "" {
		return errors.New("give the snapshot file and the node home: charter snapshot import FILE --home DIR")
	}
	spec, dataDir, err := snapshotSpec("", *home)
	if err != nil {
		return err
	}
	g, err := ledger.GenesisBlock(spec)
	if err != nil {
		return err
	}
	sf, done, err := openSnapshotFile(pos[0])
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := snapshot.Import(ctx, &sf.Manifest, sf.RawChunk, dataDir, spec, ledger.Options{}, snapshot.TrustFromSpec(spec, g.Hash()))
	if errors.Is(err, ledger.ErrNotEmpty) {
		return fmt.Errorf("%w; import only into a node that has no ledger yet", err)
	}
	if err != nil {
		return fmt.Errorf("%s is refused: %w", pos[0], err)
	}
	fmt.Fprintf(stdout, "imported block %d (%s) into %s; start the node to follow the chain from there\n", b.NumberU64(), b.Hash().Hex(), dataDir)
	return nil
}
