package main

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/params"
)

const sendSyntax = "charter send --key FILE (--to ADDR [--value ETHER] [--call 'f(TYPES)' ARG... | --data HEX] | --deploy FILE [--call 'constructor(TYPES)' ARG...])"

// runSend sends a public transaction: ether (what a member uses to give a
// newly admitted organization's admin gas), a contract call, or a
// contract creation.
func runSend(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", stderr)
	to := fs.String("to", "", "recipient address")
	value := fs.String("value", "", "amount in ether (decimal, e.g. 1 or 0.5), or in wei with the suffix wei")
	deploy := fs.String("deploy", "", "file of contract creation bytecode in hex (solc --bin): create the contract")
	call := fs.String("call", "", "function signature, e.g. 'transfer(address,uint256)', whose arguments follow the flags; with --deploy, 'constructor(TYPES)'")
	data := fs.String("data", "", "call data in hex, instead of --call")
	sf := addSendFlags(fs)
	setUsage(fs, stderr, sendSyntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if (*to == "") == (*deploy == "") {
		return errors.New("give --to ADDR (ether or a call) or --deploy FILE (a contract creation)")
	}
	if *to != "" && *value == "" && *call == "" && *data == "" {
		return errors.New("--to needs --value, --call or --data: what to send")
	}
	wei := new(big.Int)
	if *value != "" {
		if wei, err = parseEther(*value); err != nil {
			return fmt.Errorf("--value %q: %v", *value, err)
		}
	}
	var input []byte
	var addr *common.Address
	if *deploy != "" {
		code, err := readBinFile(*deploy)
		if err != nil {
			return err
		}
		args, err := callInput(*call, *data, pos, true, sendSyntax)
		if err != nil {
			return err
		}
		input = append(code, args...)
	} else {
		a, err := parseAddr("--to", *to)
		if err != nil {
			return err
		}
		addr = &a
		if *call != "" || *data != "" || len(pos) > 0 {
			if input, err = callInput(*call, *data, pos, false, sendSyntax); err != nil {
				return err
			}
		}
	}
	if err := sf.check(); err != nil {
		return err
	}
	c, err := sf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	sent, err := sf.sendTo(c, addr, wei, input)
	if err != nil {
		return err
	}
	if *sf.noWait {
		return printNoWait(stdout, sf, sent)
	}
	block := sent.receipt.BlockNumber
	if addr == nil {
		created := sent.receipt.ContractAddress
		if *sf.json {
			return printValue(stdout, map[string]any{"tx": sent.tx.Hash(), "block": block.Uint64(), "from": sent.from, "contract": created})
		}
		fmt.Fprintf(stdout, "created contract %s in block %s (tx %s)\n", created.Hex(), block, sent.tx.Hash().Hex())
		return nil
	}
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": sent.tx.Hash(), "block": block.Uint64(), "from": sent.from, "to": addr, "wei": wei.String(),
			"gasUsed": sent.receipt.GasUsed, "logs": len(sent.receipt.Logs)})
	}
	if len(input) > 0 {
		fmt.Fprintf(stdout, "called %s from %s in block %s, gas used %d, %d logs (tx %s)\n", addr.Hex(), sent.from.Hex(), block, sent.receipt.GasUsed, len(sent.receipt.Logs), sent.tx.Hash().Hex())
		return nil
	}
	fmt.Fprintf(stdout, "sent %s wei from %s to %s in block %s (tx %s)\n", wei, sent.from.Hex(), addr.Hex(), block, sent.tx.Hash().Hex())
	return nil
}

// parseEther reads "1", "0.5" (ether) or "1000wei".
func parseEther(s string) (*big.Int, error) {
	if w, ok := strings.CutSuffix(s, "wei"); ok {
		v, ok := new(big.Int).SetString(strings.TrimSpace(w), 10)
		if !ok || v.Sign() < 0 {
			return nil, errors.New("want a non-negative whole number of wei")
		}
		return v, nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 {
		return nil, errors.New("want a non-negative amount of ether, e.g. 1 or 0.25")
	}
	r.Mul(r, new(big.Rat).SetInt(big.NewInt(params.Ether)))
	if !r.IsInt() {
		return nil, errors.New("more decimals than wei allow")
	}
	return r.Num(), nil
}
