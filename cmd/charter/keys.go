package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/keystore"
	"github.com/charter-ledger/charter/internal/node"
)

const keysUsage = `Usage: charter keys SUBCOMMAND [arguments] [flags]

The signing keys a node holds for its organization's applications (REST
sends on behalf of the clients allowed to use them): DATA/keystore/ of the
node's home, one encrypted file per key version. One password encrypts
them all: --password-file, or the environment variable ` + keystore.EnvPassword + `;
the node needs the same one (--keystore.password-file) and loads the keys
when it starts.

Subcommands:
  add ID --home HOME [--import FILE] [--password-file F]
        make a new key named ID (a-z, 0-9, '-', '_'), or import one from a key file
  list --home HOME [--json]
        every key version: id, address, version, created, retired (never the key)
  rotate ID --home HOME [--password-file F]
        make a new key for ID; the old one is kept, retired (not used for sends)
  move ID --version N --value AMOUNT|all --home HOME [--to ADDR] [--rpc URL] [--password-file F]
        send what a retired version's account holds (to the current version by default)

Run 'charter keys SUBCOMMAND --help' for its flags.
`

func runKeys(args []string, stdout, stderr io.Writer) error {
	return runSubcommand(keysUsage, args, stdout, stderr, subcommand{"add", keysAdd}, subcommand{"list", keysList},
		subcommand{"rotate", keysRotate}, subcommand{"move", keysMove})
}

// keystoreDir is DATA/keystore of the node home given by --home.
func keystoreDir(home string) (string, error) {
	_, dir, err := loadKeysHome(home)
	return dir, err
}

// loadKeysHome reads --home's config.json and returns it with its
// keystore folder.
func loadKeysHome(home string) (*node.HomeConfig, string, error) {
	cfg, dataDir, err := loadNodeHome(home)
	if err != nil {
		return nil, "", err
	}
	return cfg, keystore.Dir(dataDir), nil
}

// inHome resolves a path of a home's config.json against the home.
func inHome(home, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(home, p)
}

// openKeystore opens the keystore of --home with the password of
// --password-file or the environment, for writing a key: a password is
// required, and must open every key there.
func openKeystore(home, pwFile string) (*keystore.Store, string, error) {
	dir, err := keystoreDir(home)
	if err != nil {
		return nil, "", err
	}
	pw, err := keystore.ReadPassword("--password-file", pwFile, os.Getenv)
	if err != nil {
		return nil, "", err
	}
	if len(pw) == 0 {
		return nil, "", fmt.Errorf("--password-file is required: keys are stored encrypted with the keystore password (or set %s)", keystore.EnvPassword)
	}
	s, err := keystore.Open(dir, pw, keystore.Options{})
	switch {
	case errors.Is(err, keystore.ErrWrongPassword):
		return nil, "", fmt.Errorf("%w: one password opens every key of a keystore; check --password-file or %s", err, keystore.EnvPassword)
	case err != nil:
		return nil, "", err
	}
	return s, dir, nil
}

func keysAdd(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter keys add ID --home HOME [--import FILE [--import-password-file F]] [--password-file F]"
	fs := newFlagSet("keys add", stderr)
	home := fs.String("home", "", "the node's home folder (config.json names its data directory)")
	pwFile := fs.String("password-file", "", "the keystore password, on this file's first line (default: $"+keystore.EnvPassword+")")
	imp := fs.String("import", "", "import the key of this file (a Charter key file, 64 hex digits, or a go-ethereum keystore file) instead of making one")
	impPw := fs.String("import-password-file", "", "password of the --import file, on this file's first line")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	id := pos[0]
	if err := keystore.ValidID(id); err != nil {
		return err
	}
	if *impPw != "" && *imp == "" {
		return errors.New("--import-password-file is given without --import: name the key file to import")
	}
	s, _, err := openKeystore(*home, *pwFile)
	if err != nil {
		return err
	}
	var info keystore.Info
	if *imp != "" {
		filePw, err := readPassword("import-password-file", *impPw)
		if err != nil {
			return err
		}
		info, err = s.Import(id, *imp, filePw)
		switch {
		case errors.Is(err, identity.ErrPasswordRequired):
			return fmt.Errorf("--import %s: the file is encrypted; give its password with --import-password-file", *imp)
		case errors.Is(err, keystore.ErrWrongPassword):
			return fmt.Errorf("--import %s: wrong password; check --import-password-file", *imp)
		case err != nil:
			return fmt.Errorf("--import: %w", err)
		}
	} else if info, err = s.Add(id); err != nil {
		return err
	}
	what := "New key"
	if *imp != "" {
		what = "Imported key"
	}
	fmt.Fprintf(stdout, "%s %s (version %d): address %s\nFile: %s\n\n", what, info.ID, info.Version, info.Address.Hex(), info.File)
	printKeyNeeds(stdout, info)
	return nil
}

func keysRotate(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter keys rotate ID --home HOME [--password-file F]"
	fs := newFlagSet("keys rotate", stderr)
	home := fs.String("home", "", "the node's home folder (config.json names its data directory)")
	pwFile := fs.String("password-file", "", "the keystore password, on this file's first line (default: $"+keystore.EnvPassword+")")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	id := pos[0]
	if err := keystore.ValidID(id); err != nil {
		return err
	}
	s, dir, err := openKeystore(*home, *pwFile)
	if err != nil {
		return err
	}
	old, ok := s.Current(id)
	if !ok {
		return fmt.Errorf("no key %q in %s; add it with 'charter keys add %s --home %s'", id, dir, id, *home)
	}
	info, err := s.Rotate(id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Key %s rotated: version %d, address %s, is current (file %s).\n", id, info.Version, info.Address.Hex(), info.File)
	fmt.Fprintf(stdout, "Version %d, address %s, is retired: kept, never used for sends. Move what its account holds to the new address with\n\n  charter keys move %s --version %d --value all --home %s --rpc NODE_RPC\n\n", old.Version, old.Address.Hex(), id, old.Version, *home)
	printKeyNeeds(stdout, info)
	return nil
}

// printKeyNeeds says what a new key's account needs before sends work.
func printKeyNeeds(w io.Writer, info keystore.Info) {
	fmt.Fprintf(w, `Sends with key %s fail until its account has roles in the registry. As an admin of your organization:

  charter members set-roles %s write --key ADMIN_KEY --rpc NODE_RPC

(write,deploy to create contracts), and ether for gas unless the chain's gas is free:

  charter send --to %s --value 1 --key FUNDED_KEY --rpc NODE_RPC

The node loads the key when it starts (restart it), with the keystore password.
`, info.ID, info.Address.Hex(), info.Address.Hex())
}

func keysList(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter keys list --home HOME [--json]"
	fs := newFlagSet("keys list", stderr)
	home := fs.String("home", "", "the node's home folder (config.json names its data directory)")
	jsonOut := fs.Bool("json", false, "print the key versions as JSON")
	setUsage(fs, stderr, syntax)
	if err := parse(fs, args); err != nil {
		return err
	}
	dir, err := keystoreDir(*home)
	if err != nil {
		return err
	}
	infos, err := keystore.ListDir(dir)
	if err != nil {
		return err
	}
	if *jsonOut {
		if infos == nil {
			infos = []keystore.Info{}
		}
		return printValue(stdout, infos)
	}
	if len(infos) == 0 {
		fmt.Fprintf(stdout, "No keys in %s; add one with 'charter keys add ID --home %s'\n", dir, *home)
		return nil
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tVERSION\tADDRESS\tCREATED\tRETIRED")
	for _, i := range infos {
		retired := "-"
		if !i.Current() {
			retired = i.Retired.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", i.ID, i.Version, i.Address.Hex(), i.Created.UTC().Format(time.RFC3339), retired)
	}
	return tw.Flush()
}

func keysMove(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter keys move ID --version N --value AMOUNT|all --home HOME [--to ADDR] [--rpc URL] [--password-file F] [--timeout D]"
	fs := newFlagSet("keys move", stderr)
	home := fs.String("home", "", "the node's home folder (config.json names its data directory and genesis)")
	pwFile := fs.String("password-file", "", "the keystore password, on this file's first line (default: $"+keystore.EnvPassword+")")
	version := fs.Int("version", 0, "the retired version of the key to send from")
	toFlag := fs.String("to", "", "recipient address (default: the key's current version)")
	value := fs.String("value", "", "amount in ether (e.g. 1 or 0.5), in wei with the suffix wei, or all: the balance less the fee")
	nf := addNodeFlags(fs)
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for the receipt")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	id := pos[0]
	if err := keystore.ValidID(id); err != nil {
		return err
	}
	if *version < 1 {
		return errors.New("--version is required: the retired version to send from (charter keys list shows them)")
	}
	if *value == "" {
		return errors.New("--value is required: an amount of ether, or all")
	}
	var wei *big.Int
	if *value != "all" {
		if wei, err = parseEther(*value); err != nil {
			return fmt.Errorf("--value %q: %v, or all", *value, err)
		}
	}
	if *timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", *timeout)
	}
	cfg, _, err := loadKeysHome(*home)
	if err != nil {
		return err
	}
	spec, err := chain.LoadSpec(inHome(*home, cfg.Genesis))
	if err != nil {
		return fmt.Errorf("--home: %w", err)
	}
	s, _, err := openKeystore(*home, *pwFile)
	if err != nil {
		return err
	}
	var from keystore.Info
	for _, i := range s.List() {
		if i.ID == id && i.Version == *version {
			from = i
		}
	}
	cur, ok := s.Current(id)
	switch {
	case !ok || from.ID == "":
		return fmt.Errorf("--version %d: key %q has no such version (charter keys list shows them)", *version, id)
	case from.Current():
		return fmt.Errorf("--version %d is key %s's current version: only retired versions are moved", *version, id)
	}
	to := cur.Address
	if *toFlag != "" {
		if to, err = parseAddr("--to", *toFlag); err != nil {
			return err
		}
	}
	c, err := nf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	chainID, err := c.ec.ChainID(ctx)
	if err != nil {
		return c.wrap(err)
	}
	if chainID.Cmp(spec.Config.ChainID) != 0 {
		return fmt.Errorf("--rpc %s is chain %v, the genesis of --home chain %v; give the RPC of this network's node", *nf.rpc, chainID, spec.Config.ChainID)
	}
	// A legacy transaction at the chain's price, so that the fee is
	// exactly gas × price and "all" leaves nothing behind.
	price := new(big.Int).Add(spec.BaseFeeWei(), spec.MinGasPriceWei())
	// "all" is estimated without value: the balance must also pay the fee.
	gas, err := c.ec.EstimateGas(ctx, ethereum.CallMsg{From: from.Address, To: &to, Value: wei})
	if err != nil {
		return fmt.Errorf("estimate gas: %v (nothing was sent)", c.wrap(err))
	}
	if wei == nil {
		balance, err := c.ec.PendingBalanceAt(ctx, from.Address)
		if err != nil {
			return c.wrap(err)
		}
		fee := new(big.Int).Mul(price, new(big.Int).SetUint64(gas))
		if balance.Cmp(fee) <= 0 {
			return fmt.Errorf("%s (key %s version %d) holds %s wei, no more than the fee of %s wei: nothing to move", from.Address.Hex(), id, from.Version, balance, fee)
		}
		wei = balance.Sub(balance, fee)
	}
	pool := &rpcPool{c: c, ctx: ctx}
	signer := keystore.NewSigner(s, spec, pool, keystore.SignerConfig{MaxInFlight: 1})
	hash, err := signer.SendRetired(ctx, id, from.Version, nil, keystore.TxRequest{To: &to, Value: wei, Gas: gas, GasPrice: price})
	if err != nil {
		return err
	}
	r, err := c.waitReceipt(hash, *timeout)
	if err != nil {
		return err
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return fmt.Errorf("transaction %s failed in block %s", hash.Hex(), r.BlockNumber)
	}
	fmt.Fprintf(stdout, "moved %s wei from key %s version %d (%s) to %s in block %s (tx %s)\n", wei, id, from.Version, from.Address.Hex(), to.Hex(), r.BlockNumber, hash.Hex())
	return nil
}

// rpcPool is a keystore.Pool over a node's JSON-RPC, for the CLI. Its
// errors carry the node's messages, which the signer matches on; a
// failed nonce query makes the next SendTx fail with it rather than send
// with a guessed nonce. One goroutine uses it.
type rpcPool struct {
	c   *client
	ctx context.Context
	err error
}

func (p *rpcPool) PoolNonce(addr common.Address) uint64 {
	n, err := p.c.ec.PendingNonceAt(p.ctx, addr)
	if err != nil {
		p.err = err
	}
	return n
}

func (p *rpcPool) EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error) {
	return p.c.ec.EstimateGas(ctx, msg)
}

func (p *rpcPool) SendTx(tx *types.Transaction) error {
	if p.err != nil {
		return fmt.Errorf("next nonce: %w", p.c.wrap(p.err))
	}
	if err := p.c.ec.SendTransaction(p.ctx, tx); err != nil {
		return p.c.wrap(err)
	}
	return nil
}
