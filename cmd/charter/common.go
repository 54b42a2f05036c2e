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
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"

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

// loadOrCreateNodeKey reads DIR/nodekey (hex secp256k1), creating it 0600
// on first use.
func loadOrCreateNodeKey(dir string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, "nodekey")
	key, err := crypto.LoadECDSA(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("node key %s: %v", path, err)
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
