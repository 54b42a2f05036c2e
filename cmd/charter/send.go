package main

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/params"
)

// runSend transfers ether: what a member uses to give a newly admitted
// organization's admin gas for its governance transactions.
func runSend(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("send", stderr)
	to := fs.String("to", "", "recipient address")
	value := fs.String("value", "", "amount in ether (decimal, e.g. 1 or 0.5), or in wei with the suffix wei")
	sf := addSendFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *to == "" || *value == "" {
		return errors.New("--to and --value are required")
	}
	addr, err := parseAddr("--to", *to)
	if err != nil {
		return err
	}
	wei, err := parseEther(*value)
	if err != nil {
		return fmt.Errorf("--value %q: %v", *value, err)
	}
	if err := sf.check(); err != nil {
		return err
	}
	sent, err := sf.dialAndSend(addr, wei, nil)
	if err != nil {
		return err
	}
	if *sf.noWait {
		return printNoWait(stdout, sf, sent)
	}
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": sent.tx.Hash(), "block": sent.receipt.BlockNumber.Uint64(), "from": sent.from, "to": addr, "wei": wei.String()})
	}
	fmt.Fprintf(stdout, "sent %s wei from %s to %s in block %s (tx %s)\n", wei, sent.from.Hex(), addr.Hex(), sent.receipt.BlockNumber, sent.tx.Hash().Hex())
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
