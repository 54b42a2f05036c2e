package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/system"
)

const contractUsage = `Usage: charter contract SUBCOMMAND [arguments] [flags]

The contract registry (0x…0402): names of deployed contracts, their
versions and ABI documents (at most 24576 bytes each).

  charter contract register --name N --address A --abi FILE --key FILE [--rpc URL] [--json] [--no-wait]
        register a new name for your organization (needs the deploy role;
        the address must hold code)
  charter contract upgrade --name N --address A --abi FILE --memo TEXT --key FILE [--rpc URL] [--json] [--no-wait]
        propose a new version of a name (a governance proposal of class
        contracts; an admin proposes)
  charter contract list [--rpc URL] [--block N] [--json]
        every registered name with its newest version
  charter contract show NAME [--rpc URL] [--block N] [--json]
        every version of a name
  charter contract abi NAME [--version V] [--rpc URL] [--block N]
        print a version's ABI document (default: the newest)

A version is deprecated by 'charter gov propose deprecate-contract'.
`

func runContract(args []string, stdout, stderr io.Writer) error {
	return runSubcommand(contractUsage, args, stdout, stderr,
		subcommand{"register", contractRegister}, subcommand{"upgrade", contractUpgrade},
		subcommand{"list", contractList}, subcommand{"show", contractShow}, subcommand{"abi", contractABI})
}

// contractFlags are the flags of a new version: --name, --address, --abi.
type contractFlags struct {
	name, addr, abi *string
}

func addContractFlags(fs *flag.FlagSet) *contractFlags {
	return &contractFlags{
		name: fs.String("name", "", "contract name: 1 to 64 of a-z, A-Z, 0-9, '_', '.', '-'"),
		addr: fs.String("address", "", "address of the deployed contract"),
		abi:  fs.String("abi", "", "file of the contract's ABI document (a compiler's JSON array)"),
	}
}

// read checks the flags and reads the document.
func (f *contractFlags) read() (string, common.Address, []byte, common.Hash, error) {
	if *f.name == "" {
		return "", common.Address{}, nil, common.Hash{}, errors.New("--name is required")
	}
	addr, err := parseAddr("--address", *f.addr)
	if err != nil {
		return "", common.Address{}, nil, common.Hash{}, err
	}
	if *f.abi == "" {
		return "", common.Address{}, nil, common.Hash{}, errors.New("--abi is required: the file of the contract's ABI document")
	}
	st, err := os.Stat(*f.abi)
	if err != nil {
		return "", common.Address{}, nil, common.Hash{}, fmt.Errorf("--abi: %w", err)
	}
	if st.Size() > system.MaxContractABI {
		return "", common.Address{}, nil, common.Hash{}, fmt.Errorf("--abi %s: %d bytes, the registry keeps at most %d", *f.abi, st.Size(), system.MaxContractABI)
	}
	doc, err := os.ReadFile(*f.abi)
	if err != nil {
		return "", common.Address{}, nil, common.Hash{}, fmt.Errorf("--abi: %w", err)
	}
	return *f.name, addr, doc, crypto.Keccak256Hash(doc), nil
}

func contractRegister(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter contract register --name N --address A --abi FILE --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("contract register", stderr)
	cf := addContractFlags(fs)
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, syntax); err != nil {
		return err
	}
	name, addr, doc, hash, err := cf.read()
	if err != nil {
		return err
	}
	if err := sf.check(); err != nil {
		return err
	}
	data, err := system.ContractRegistry.Pack("registerContract", name, addr, doc, [32]byte(hash))
	if err != nil {
		return err
	}
	s, err := sf.dialAndSend(system.ContractsAddress, nil, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	logs := eventLogs(s.receipt, system.ContractsAddress, system.ContractRegistry.Events["ContractRegistered"].ID)
	if len(logs) == 0 {
		return fmt.Errorf("transaction %s succeeded in block %s but made no ContractRegistered event", s.tx.Hash().Hex(), s.receipt.BlockNumber)
	}
	var ev struct {
		ContractName string
		Org          string
		CodeHash     [32]byte
		AbiHash      [32]byte
	}
	if err := system.ContractRegistry.UnpackIntoInterface(&ev, "ContractRegistered", logs[0].Data); err != nil {
		return fmt.Errorf("ContractRegistered event: %v", err)
	}
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "name": name, "version": 1,
			"address": addr, "org": ev.Org, "codeHash": common.Hash(ev.CodeHash), "abiHash": common.Hash(ev.AbiHash)})
	}
	_, err = fmt.Fprintf(stdout, "contract %s version 1 at %s registered by %s (code %s, ABI %s)\n", name, addr.Hex(), ev.Org,
		common.Hash(ev.CodeHash).Hex(), common.Hash(ev.AbiHash).Hex())
	return err
}

func contractUpgrade(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter contract upgrade --name N --address A --abi FILE --memo TEXT --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("contract upgrade", stderr)
	cf := addContractFlags(fs)
	memo := fs.String("memo", "", fmt.Sprintf("why: kept with the proposal and in the audit trail (at most %d bytes)", system.MaxMemoBytes))
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, syntax); err != nil {
		return err
	}
	name, addr, doc, hash, err := cf.read()
	if err != nil {
		return err
	}
	act := &system.UpgradeContract{Name: name, Address: addr, ABI: doc, ABIHash: hash}
	if err := act.Validate(); err != nil {
		return err
	}
	encoded, err := system.Encode(act)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*memo) == "" {
		return errors.New("--memo is required: say why; it is kept with the proposal")
	}
	if err := system.CheckMemo(*memo); err != nil {
		return fmt.Errorf("--memo: %v", err)
	}
	if err := sf.check(); err != nil {
		return err
	}
	data, err := system.Governance.Pack("propose", uint8(system.ActUpgradeContract), encoded, *memo)
	if err != nil {
		return err
	}
	s, err := sf.dialAndSend(system.GovernanceAddress, nil, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	return printProposal(stdout, sf, s, system.ActUpgradeContract.CLIName(),
		fmt.Sprintf("upgrade-contract %s to %s", name, addr.Hex()))
}

// ---- views ----

// contractView is one version as the views give it.
type contractView struct {
	Name       string         `json:"name"`
	Version    uint64         `json:"version"`
	Address    common.Address `json:"address"`
	CodeHash   common.Hash    `json:"codeHash"`
	ABIHash    common.Hash    `json:"abiHash"`
	Org        string         `json:"org"`
	Deprecated bool           `json:"deprecated"`
}

// contractReader reads the registry's views by eth_call at one block.
type contractReader struct {
	c     *client
	block string
}

func (r *contractReader) call(method string, args ...any) ([]any, error) {
	data, err := system.ContractRegistry.Pack(method, args...)
	if err != nil {
		return nil, err
	}
	var out hexutil.Bytes
	if _, err := r.c.callInto(&out, "eth_call", map[string]any{"to": system.ContractsAddress, "data": hexutil.Bytes(data)}, r.block); err != nil {
		return nil, err
	}
	vals, err := system.ContractRegistry.Unpack(method, out)
	if err != nil {
		return nil, fmt.Errorf("%s: unexpected answer: %v", method, err)
	}
	return vals, nil
}

func (r *contractReader) version(name string, v uint64) (contractView, bool, error) {
	vals, err := r.call("contractVersion", name, v)
	if err != nil {
		return contractView{}, false, err
	}
	cv := viewRow(name, vals)
	return cv, cv.Version != 0, nil
}

func (r *contractReader) newest(name string) (contractView, bool, error) {
	vals, err := r.call("contractByName", name)
	if err != nil {
		return contractView{}, false, err
	}
	cv := viewRow(name, vals)
	return cv, cv.Version != 0, nil
}

func viewRow(name string, v []any) contractView {
	return contractView{Name: name, Version: v[0].(uint64), Address: v[1].(common.Address), CodeHash: v[2].([32]byte),
		ABIHash: v[3].([32]byte), Org: v[4].(string), Deprecated: v[5].(bool)}
}

// maxListed bounds the names 'contract list' reads.
const maxListed = 10_000

// openReader dials --rpc for reading at --block.
func openReader(nf *nodeFlags, block string) (*contractReader, error) {
	b := "latest"
	if ba, err := blockArg(block); err != nil {
		return nil, err
	} else if len(ba) > 0 {
		b = ba[0].(string)
	}
	c, err := nf.dial()
	if err != nil {
		return nil, err
	}
	return &contractReader{c: c, block: b}, nil
}

func contractList(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter contract list [--rpc URL] [--block N] [--json]"
	fs := newFlagSet("contract list", stderr)
	nf := addNodeFlags(fs)
	block := fs.String("block", "latest", "the registry as of this block height")
	jsonOut := fs.Bool("json", false, "print the list as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, syntax); err != nil {
		return err
	}
	r, err := openReader(nf, *block)
	if err != nil {
		return err
	}
	defer r.c.Close()
	vals, err := r.call("contractCount")
	if err != nil {
		return err
	}
	n := vals[0].(uint64)
	list := []contractView{}
	for i := uint64(0); i < n && i < maxListed; i++ {
		at, err := r.call("contractAt", i)
		if err != nil {
			return err
		}
		cv, _, err := r.newest(at[0].(string))
		if err != nil {
			return err
		}
		list = append(list, cv)
	}
	if *jsonOut {
		return printValue(stdout, list)
	}
	if len(list) == 0 {
		_, err := fmt.Fprintln(stdout, "no contracts registered")
		return err
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "NAME\tVERSION\tADDRESS\tORGANIZATION\tDEPRECATED")
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", c.Name, c.Version, c.Address.Hex(), c.Org, yesNo(c.Deprecated))
	}
	if n > maxListed {
		fmt.Fprintf(tw, "(%d more not shown)\n", n-maxListed)
	}
	return tw.Flush()
}

func contractShow(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter contract show NAME [--rpc URL] [--block N] [--json]"
	fs := newFlagSet("contract show", stderr)
	nf := addNodeFlags(fs)
	block := fs.String("block", "latest", "the registry as of this block height")
	jsonOut := fs.Bool("json", false, "print the versions as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	r, err := openReader(nf, *block)
	if err != nil {
		return err
	}
	defer r.c.Close()
	last, ok, err := r.newest(pos[0])
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no contract is registered as %q", pos[0])
	}
	versions := make([]contractView, 0, last.Version)
	for v := uint64(1); v <= last.Version; v++ {
		cv, _, err := r.version(pos[0], v)
		if err != nil {
			return err
		}
		versions = append(versions, cv)
	}
	if *jsonOut {
		return printValue(stdout, versions)
	}
	fmt.Fprintf(stdout, "Contract %s of %s, %d version(s)\n\n", last.Name, last.Org, last.Version)
	tw := newTable(stdout)
	fmt.Fprintln(tw, "VERSION\tADDRESS\tCODE HASH\tABI HASH\tDEPRECATED")
	for _, c := range versions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", c.Version, c.Address.Hex(), c.CodeHash.Hex(), c.ABIHash.Hex(), yesNo(c.Deprecated))
	}
	return tw.Flush()
}

func contractABI(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter contract abi NAME [--version V] [--rpc URL] [--block N]"
	fs := newFlagSet("contract abi", stderr)
	nf := addNodeFlags(fs)
	block := fs.String("block", "latest", "the registry as of this block height")
	version := fs.String("version", "", "the version (default: the newest)")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	var v uint64
	if *version != "" {
		if v, err = strconv.ParseUint(*version, 10, 64); err != nil || v == 0 {
			return fmt.Errorf("--version %q: want a positive number", *version)
		}
	}
	r, err := openReader(nf, *block)
	if err != nil {
		return err
	}
	defer r.c.Close()
	cv, ok, err := r.newest(pos[0])
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no contract is registered as %q", pos[0])
	}
	if v == 0 {
		v = cv.Version
	}
	if v > cv.Version {
		return fmt.Errorf("contract %s has versions 1 to %d, not %d", pos[0], cv.Version, v)
	}
	vals, err := r.call("contractAbi", pos[0], v)
	if err != nil {
		return err
	}
	doc := vals[0].([]byte)
	if _, err := stdout.Write(doc); err != nil {
		return err
	}
	if len(doc) > 0 && doc[len(doc)-1] != '\n' {
		_, err = fmt.Fprintln(stdout)
	}
	return err
}
