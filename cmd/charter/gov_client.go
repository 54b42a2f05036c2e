package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/system"
)

// The CLI's JSON-RPC client: reads (query) and signed sends of system
// contract calls (sendFlags), shared by gov, members, usage and send.

const defaultRPC = "http://127.0.0.1:8545"

// readTimeout bounds one read-only command against the node.
const readTimeout = 30 * time.Second

// client is a connection to a node's JSON-RPC.
type client struct {
	url    string
	access *apiAccess
	rc     *gethrpc.Client
	ec     *ethclient.Client
}

// dial connects to the node at url with access a (nil: no token, the
// system's roots).
func dial(url string, a *apiAccess) (*client, error) {
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("--rpc is empty; give the node's JSON-RPC URL, e.g. " + defaultRPC)
	}
	if a == nil {
		a = noAccess()
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	rc, err := a.Dial(ctx, url)
	if err != nil {
		if isAccessError(err) {
			return nil, err
		}
		return nil, fmt.Errorf("--rpc %s: %v", redactURL(url), err)
	}
	return &client{url: redactURL(url), access: a, rc: rc, ec: ethclient.NewClient(rc)}, nil
}

func (c *client) Close() { c.rc.Close() }

// wrap names the node in transport errors and gives refusals of access
// and trust as their one line; errors the node answered (JSON-RPC errors,
// reverts) are returned as they are. The token never appears in what it
// returns.
func (c *client) wrap(err error) error {
	if err == nil {
		return nil
	}
	var rerr gethrpc.Error
	if errors.As(err, &rerr) {
		if s := c.access.scrub(err.Error()); s != err.Error() {
			return errors.New(s)
		}
		return err
	}
	if e := c.access.accessError(c.url, err); e != nil {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer from %s within %s", c.url, readTimeout)
	}
	return fmt.Errorf("no answer from %s: %s (is a node running there? start one with 'charter dev' or give --rpc)", c.url, c.access.scrub(err.Error()))
}

// call makes a JSON-RPC call and returns the raw result.
func (c *client) call(method string, args ...any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	var raw json.RawMessage
	if err := c.rc.CallContext(ctx, &raw, method, args...); err != nil {
		return nil, c.wrap(err)
	}
	return raw, nil
}

// callInto makes a JSON-RPC call and decodes the result into out (large
// numbers in maps kept exact).
func (c *client) callInto(out any, method string, args ...any) (json.RawMessage, error) {
	raw, err := c.call(method, args...)
	if err != nil {
		return nil, err
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return nil, fmt.Errorf("%s: unexpected answer from %s: %v", method, c.url, err)
		}
	}
	return raw, nil
}

// printJSON prints a JSON value indented.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// printValue prints v as indented JSON.
func printValue(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return printJSON(w, raw)
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// ---- sending transactions ----

type sendFlags struct {
	*nodeFlags
	key, pwFile  *string
	json, noWait *bool
	timeout      *time.Duration
}

func addSendFlags(fs *flag.FlagSet) *sendFlags {
	return &sendFlags{
		nodeFlags: addNodeFlags(fs),
		key:       fs.String("key", "", "key file of the sending admin account (secp256k1, PEM as node keys, or 64 hex digits)"),
		pwFile:    fs.String("password-file", "", "password of the key file, on this file's first line"),
		json:      fs.Bool("json", false, "print the outcome as JSON"),
		noWait:    fs.Bool("no-wait", false, "send and print the transaction hash without waiting for its receipt"),
		timeout:   fs.Duration("timeout", 60*time.Second, "how long to wait for the receipt"),
	}
}

// check validates the sending flags before anything is sent.
func (sf *sendFlags) check() error {
	if *sf.key == "" {
		return errors.New("--key is required: the key file of an admin account of your organization")
	}
	if *sf.timeout <= 0 {
		return fmt.Errorf("--timeout %s must be positive", *sf.timeout)
	}
	return nil
}

func (sf *sendFlags) loadKey() (*ecdsa.PrivateKey, error) {
	pw, err := readPassword("password-file", *sf.pwFile)
	if err != nil {
		return nil, err
	}
	key, err := identity.LoadNodeKey(*sf.key, pw)
	if err != nil {
		if errors.Is(err, identity.ErrPasswordRequired) {
			return nil, fmt.Errorf("--key %s: %w (give --password-file)", *sf.key, err)
		}
		return nil, fmt.Errorf("--key: %w", err)
	}
	return key, nil
}

// sentTx is a transaction sent, with its receipt unless --no-wait.
type sentTx struct {
	tx      *types.Transaction
	from    common.Address
	receipt *types.Receipt
}

// send signs a call of a system contract with --key and sends it. It
// estimates gas first: a call the contract refuses is reported with the
// contract's reason and nothing is sent. Unless --no-wait it waits for
// the receipt and reports a failed transaction with the reason a replay
// gives.
func (sf *sendFlags) send(c *client, to common.Address, data []byte) (*sentTx, error) {
	return sf.sendValue(c, to, nil, data)
}

// dialAndSend dials --rpc, sends value wei (nil: none) and data to `to`
// as send does, and hangs up.
func (sf *sendFlags) dialAndSend(to common.Address, value *big.Int, data []byte) (*sentTx, error) {
	c, err := sf.dial()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return sf.sendValue(c, to, value, data)
}

// sendValue is send with value wei attached (nil: none).
func (sf *sendFlags) sendValue(c *client, to common.Address, value *big.Int, data []byte) (*sentTx, error) {
	return sf.sendTo(c, &to, value, data)
}

// sendTo is sendValue where a nil to creates a contract from data.
func (sf *sendFlags) sendTo(c *client, to *common.Address, value *big.Int, data []byte) (*sentTx, error) {
	key, err := sf.loadKey()
	if err != nil {
		return nil, err
	}
	from := crypto.PubkeyToAddress(key.PublicKey)
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	chainID, err := c.ec.ChainID(ctx)
	if err != nil {
		return nil, c.wrap(err)
	}
	msg := ethereum.CallMsg{From: from, To: to, Data: data, Value: value}
	gas, err := c.ec.EstimateGas(ctx, msg)
	if err != nil {
		var rerr gethrpc.Error
		if !errors.As(err, &rerr) {
			return nil, c.wrap(err)
		}
		// The node refused the call: a revert carries the contract's reason.
		return nil, fmt.Errorf("%v (account %s; nothing was sent)", err, from.Hex())
	}
	nonce, err := c.ec.PendingNonceAt(ctx, from)
	if err != nil {
		return nil, c.wrap(err)
	}
	tip, err := c.ec.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, c.wrap(err)
	}
	head, err := c.ec.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, c.wrap(err)
	}
	feeCap := new(big.Int).Set(tip)
	if head.BaseFee != nil {
		feeCap.Add(feeCap, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: to, Data: data, Value: value,
	})
	if err != nil {
		return nil, err
	}
	if err := c.ec.SendTransaction(ctx, tx); err != nil {
		return nil, fmt.Errorf("send: %w", c.wrap(err))
	}
	out := &sentTx{tx: tx, from: from}
	if *sf.noWait {
		return out, nil
	}
	if out.receipt, err = c.waitReceipt(tx.Hash(), *sf.timeout); err != nil {
		return nil, err
	}
	if out.receipt.Status == types.ReceiptStatusFailed {
		msg.Gas = tx.Gas()
		rctx, rcancel := context.WithTimeout(context.Background(), readTimeout)
		defer rcancel()
		if _, err := c.ec.CallContract(rctx, msg, out.receipt.BlockNumber); err != nil {
			return nil, fmt.Errorf("transaction %s failed in block %s: %v", tx.Hash().Hex(), out.receipt.BlockNumber, err)
		}
		return nil, fmt.Errorf("transaction %s failed in block %s (gas used %d of %d); replaying it gives no reason",
			tx.Hash().Hex(), out.receipt.BlockNumber, out.receipt.GasUsed, tx.Gas())
	}
	return out, nil
}

// waitReceipt polls for a transaction's receipt until timeout.
func (c *client) waitReceipt(hash common.Hash, timeout time.Duration) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := c.ec.TransactionReceipt(ctx, hash)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			break
		}
		if !errors.Is(err, ethereum.NotFound) {
			return nil, fmt.Errorf("receipt of %s: %v", hash.Hex(), c.wrap(err))
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	return nil, fmt.Errorf("transaction %s was sent but is not in a block after %s; check it later with eth_getTransactionReceipt or wait longer with --timeout",
		hash.Hex(), timeout)
}

// printNoWait reports a transaction sent with --no-wait.
func printNoWait(w io.Writer, sf *sendFlags, s *sentTx) error {
	if *sf.json {
		return printValue(w, map[string]any{"tx": s.tx.Hash()})
	}
	_, err := fmt.Fprintf(w, "sent transaction %s (not waiting for it)\n", s.tx.Hash().Hex())
	return err
}

// eventLogs returns the logs of a receipt that are the event id of the
// contract at addr.
func eventLogs(r *types.Receipt, addr common.Address, id common.Hash) []*types.Log {
	var out []*types.Log
	for _, l := range r.Logs {
		if l.Address == addr && len(l.Topics) > 0 && l.Topics[0] == id {
			out = append(out, l)
		}
	}
	return out
}

// govLogs returns a receipt's logs of the governance event name.
func govLogs(r *types.Receipt, name string) []*types.Log {
	return eventLogs(r, system.GovernanceAddress, system.Governance.Events[name].ID)
}

func topicUint(h common.Hash) uint64 { return new(big.Int).SetBytes(h[:]).Uint64() }
