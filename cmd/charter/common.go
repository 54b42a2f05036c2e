package main

import (
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
	"github.com/charter-ledger/charter/internal/rpc"
)

type flagT = flag.Flag

type logFlags struct{ level, format *string }

func addLogFlags(fs *flag.FlagSet) *logFlags {
	return &logFlags{
		level:  fs.String("log.level", "info", "log level: debug, info, warn, error"),
		format: fs.String("log.format", "text", "log format: text or json"),
	}
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*l.level)); err != nil {
		return nil, fmt.Errorf("--log.level %q: want debug, info, warn or error", *l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(*l.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log.format %q: want text or json", *l.format)
}

// loadOrCreateNodeKey reads DIR/nodekey (hex secp256k1, or a node key
// file; one that group or others may read is refused), creating it 0600
// on first use.
func loadOrCreateNodeKey(dir string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, "nodekey")
	key, err := identity.LoadNodeKey(path, nil)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if key, err = crypto.GenerateKey(); err != nil {
		return nil, err
	}
	if err := crypto.SaveECDSA(path, key); err != nil {
		return nil, fmt.Errorf("write node key: %w", err)
	}
	return key, nil
}

func runVersion(_ []string, stdout, _ io.Writer) error {
	fmt.Fprintf(stdout, "charter %s\n", rpc.Version)
	return nil
}

// serveNode starts n and runs it until SIGINT or SIGTERM (a clean stop,
// nil) or a reason the node cannot go on (returned after a clean stop, so
// run prints it as the one line). Signals are watched before the node
// starts, so one that arrives during start-up still stops it cleanly.
// started runs once the node serves.
func serveNode(n *node.Node, logger *slog.Logger, started func(), beforeStop ...func()) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := n.Start(); err != nil {
		return err
	}
	started()
	select {
	case sig := <-sigs:
		logger.Info("Shutting down", "signal", sig.String())
		for _, f := range beforeStop {
			f()
		}
		n.Stop()
		return nil
	case err := <-n.Fatal():
		n.Stop()
		return err
	}
}

// subcommand is one SUBCOMMAND of a command such as charter keys.
type subcommand struct {
	name string
	run  func(args []string, stdout, stderr io.Writer) error
}

// runSubcommand runs the subcommand args[0] names: with no argument, or
// -h, --help or help, it prints usage (and an empty call is a usage
// error); an unknown name is an error listing the known ones.
func runSubcommand(usage string, args []string, stdout, stderr io.Writer, subs ...subcommand) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	names := make([]string, len(subs))
	for i, s := range subs {
		if s.name == args[0] {
			return s.run(args[1:], stdout, stderr)
		}
		names[i] = s.name
	}
	want := names[len(names)-1]
	if len(names) > 1 {
		want = strings.Join(names[:len(names)-1], ", ") + " or " + want
	}
	return fmt.Errorf("unknown subcommand %q; want %s", args[0], want)
}

// loadNodeHome reads --home's config.json: the config and the node's data
// directory (resolved against the home).
func loadNodeHome(home string) (*node.HomeConfig, string, error) {
	if home == "" {
		return nil, "", errors.New("--home is required: the node's home folder (with config.json, written by 'charter init')")
	}
	cfg, err := node.LoadHomeConfig(home)
	if err != nil {
		return nil, "", fmt.Errorf("--home: %w", err)
	}
	return cfg, inHome(home, cfg.DataDir), nil
}
