// Package bench is Charter's load generator: it signs transfers, ERC-20
// transfers or private ERC-20 transfers ahead of time, submits them over
// JSON-RPC to one or more nodes (open loop at a fixed rate, or as fast as
// the nodes take them), watches the chain for their blocks (the private
// receipts, for private transfers), and reports throughput and
// submission-to-finality latency.
package bench

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/bench/token"
)

// Kinds of load.
const (
	KindTransfer = "transfer"
	KindERC20    = "erc20"
	// KindPrivateERC20: ERC-20 transfers inside a privacy group of the
	// organizations of Config.Group (see private.go).
	KindPrivateERC20 = "private-erc20"
)

// Config of one run.
type Config struct {
	Endpoints []string      // JSON-RPC URLs; transactions are spread over them by sender (not used by KindPrivateERC20)
	Txs       int           // transactions to measure (without Duration)
	Duration  time.Duration // >0: a sustained run, Rate transactions per second for this long instead of Txs (public kinds)
	Mix       Mix           // KindMixed: the shares of each kind of transaction; zero: DefaultMix
	Metrics   []string      // Prometheus /metrics URLs of the nodes: consensus round changes and height are scraped each second
	// FundFromNode funds poor senders from the endpoint's own first
	// account (eth_accounts, eth_sendTransaction), as on geth --dev,
	// instead of from Funder.
	FundFromNode bool
	Senders      int                 // distinct sending accounts (KindPrivateERC20: over all of Group, spread evenly)
	Kind         string              // transfer, erc20, mixed or private-erc20
	Rate         float64             // transactions per second, open loop; 0: as fast as possible
	Batch        int                 // raw transactions per JSON-RPC batch request
	Funder       *ecdsa.PrivateKey   // funds senders that have no ether (dev account 0)
	Admin        *ecdsa.PrivateKey   // an organization admin: grants senders the roles they lack, funds them when Funder cannot; nil: none
	Keys         []*ecdsa.PrivateKey // sender keys; at least Senders (not used by KindPrivateERC20)
	Timeout      time.Duration       // how long to wait for the last transaction
	Progress     io.Writer           // a progress line every second; nil: none
	Dialer       Dialer              // connects to the endpoints; nil: no credential, the system's roots

	// Group is, for KindPrivateERC20, one entry per organization of the
	// privacy group (2 to MaxGroupOrgs); the first deploys the token.
	Group []GroupOrg
	// PrivacyGroup is the id (base64) of an existing privacy group of
	// exactly Group's organizations to run in; "": one is found with
	// priv_findPrivacyGroup, or created with priv_createPrivacyGroup.
	PrivacyGroup string
}

// Dialer connects the load generator to a node's JSON-RPC: it carries
// how the run authenticates (a bearer token header, a client certificate)
// and which certificates it trusts. Run calls Dial once per endpoint
// before any load, from one goroutine, and closes the clients when it
// returns; every request of the run goes through the clients Dial
// returned, so whatever they carry rides on each request (a header is the
// whole per-request cost of a token). Dial's errors are returned wrapped
// with the endpoint.
type Dialer interface {
	Dial(ctx context.Context, url string) (*gethrpc.Client, error)
}

// plainDialer dials with go-ethereum's defaults.
type plainDialer struct{}

func (plainDialer) Dial(ctx context.Context, url string) (*gethrpc.Client, error) {
	return gethrpc.DialContext(ctx, url)
}

// dialer is the Dialer of the run.
func (c *Config) dialer() Dialer {
	if c.Dialer == nil {
		return plainDialer{}
	}
	return c.Dialer
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Kind != KindTransfer && c.Kind != KindERC20 && c.Kind != KindMixed && c.Kind != KindPrivateERC20:
		return fmt.Errorf("--kind %q: want transfer, erc20, mixed or private-erc20", c.Kind)
	case len(c.Endpoints) == 0 && c.Kind != KindPrivateERC20:
		return errors.New("no JSON-RPC endpoint given (--rpc)")
	case c.Duration < 0 || c.Duration > maxDuration:
		return fmt.Errorf("--duration %s is outside [0, %s]", c.Duration, maxDuration)
	case c.Duration > 0 && c.Rate <= 0:
		return errors.New("--duration needs --rate: a sustained run submits at a fixed rate")
	case c.Duration > 0 && c.Kind == KindPrivateERC20:
		return fmt.Errorf("--duration is not supported with --kind %s; give --txs", KindPrivateERC20)
	case c.Duration > 0 && c.Rate*c.Duration.Seconds() > maxDurationTxs:
		return fmt.Errorf("--rate %v for --duration %s is more than %d transactions", c.Rate, c.Duration, maxDurationTxs)
	case c.Duration == 0 && (c.Txs < 1 || c.Txs > 10_000_000):
		return fmt.Errorf("--txs %d is outside [1, 10000000]", c.Txs)
	case len(c.Metrics) > maxMetricsURLs:
		return fmt.Errorf("--metrics: %d URLs, at most %d", len(c.Metrics), maxMetricsURLs)
	case c.Senders < 1 || c.Senders > 100_000:
		return fmt.Errorf("--senders %d is outside [1, 100000]", c.Senders)
	case c.Rate < 0:
		return fmt.Errorf("--rate %v is negative", c.Rate)
	case c.Batch < 1 || c.Batch > 1000:
		return fmt.Errorf("--batch %d is outside [1, 1000]", c.Batch)
	}
	if c.Kind == KindPrivateERC20 {
		return c.validateGroup()
	}
	if c.Kind == KindMixed && c.Mix != (Mix{}) {
		sum := 0
		for _, v := range c.Mix.Shares {
			if v < 0 {
				return fmt.Errorf("--mix %s: a negative share", c.Mix)
			}
			sum += v
		}
		if sum != 100 {
			return fmt.Errorf("--mix %s: the shares add up to %d, want 100", c.Mix, sum)
		}
	}
	for _, u := range c.Metrics {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return fmt.Errorf("--metrics %q is not an http:// or https:// URL", u)
		}
	}
	if len(c.Keys) < c.Senders {
		return fmt.Errorf("%d sender keys for %d senders", len(c.Keys), c.Senders)
	}
	return checkURLs(c.Endpoints)
}

// checkURLs refuses an endpoint that is not an http(s):// or ws(s):// URL.
func checkURLs(urls []string) error {
	for _, e := range urls {
		ok := false
		for _, scheme := range []string{"http://", "https://", "ws://", "wss://"} {
			ok = ok || strings.HasPrefix(e, scheme)
		}
		if !ok {
			return fmt.Errorf("endpoint %q is not an http://, https://, ws:// or wss:// URL", e)
		}
	}
	return nil
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Bounds of a sustained run (Config.Duration).
const (
	maxDuration    = 24 * time.Hour
	maxDurationTxs = 1_000_000_000
)

// Point is one transaction's latency, for a chart over time.
type Point struct {
	SentMs    float64 `json:"sent_ms"` // since the first submission
	LatencyMs float64 `json:"latency_ms"`
}

// Result of a run.
type Result struct {
	Kind      string   `json:"kind"`
	Endpoints int      `json:"endpoints"`
	Senders   int      `json:"senders"`
	Rate      float64  `json:"rate"`
	Sent      int      `json:"sent"`
	Confirmed int      `json:"confirmed"`
	Failed    int      `json:"failed"` // refused on submission, reverted, or never included
	TPS       float64  `json:"tps"`
	Latency   Latency  `json:"latency_ms"`
	Blocks    int      `json:"blocks"`
	DurationS float64  `json:"duration_s"`
	Points    []Point  `json:"-"`                // a uniform sample of at most 20,000 confirmed transactions
	Errors    []string `json:"errors,omitempty"` // the first few distinct submission errors

	Mix       string              `json:"mix,omitempty"`               // KindMixed: the shares
	ByKind    map[string]*KindRun `json:"by_kind,omitempty"`           // KindMixed: per kind of transaction
	Series    []Second            `json:"per_second,omitempty"`        // one entry per second of the run
	Consensus *Consensus          `json:"consensus,omitempty"`         // with Config.Metrics: round changes per height
	TargetS   float64             `json:"duration_target_s,omitempty"` // Config.Duration
}

// KindRun is the part of a mixed run of one kind of transaction.
type KindRun struct {
	Sent      int     `json:"sent"`
	Confirmed int     `json:"confirmed"`
	Failed    int     `json:"failed"`
	Latency   Latency `json:"latency_ms"`
}

// Run executes a benchmark.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Kind == KindPrivateERC20 {
		return runPrivate(ctx, cfg)
	}
	clients := make([]*gethrpc.Client, len(cfg.Endpoints))
	dialer := cfg.dialer()
	for i, url := range cfg.Endpoints {
		c, err := dialer.Dial(ctx, url)
		if err != nil {
			return nil, fmt.Errorf("connect %s: %w", url, err)
		}
		defer c.Close()
		clients[i] = c
	}
	r := &runner{cfg: cfg, clients: clients, gas: txKindGas}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	return r.run(ctx)
}

type runner struct {
	cfg     Config
	clients []*gethrpc.Client
	chainID *big.Int
	signer  types.Signer
	feeCap  *big.Int
	tip     *big.Int
	token   common.Address
	hot     common.Address // KindMixed: the hot contract
	senders []common.Address
	nonces  []uint64 // the next nonce of each sender before the measured transactions
	total   int      // transactions of the run: Txs, or Rate × Duration
	pattern [100]uint8
	txs     []*types.Transaction // pre-signed (a run of Txs); nil: signed as they are sent (Duration)
	flight  *inflight
	errMu   sync.Mutex
	errs    map[string]bool
	refused [numTxKinds]atomic.Int64
	sentN   [numTxKinds]atomic.Int64
	gas     [numTxKinds]uint64 // gas limit of each kind: txKindGas, raised by measureGas
	needOrg string             // KindPrivateERC20: the organization every sender must belong to
}

func (r *runner) call(ctx context.Context, result any, method string, args ...any) error {
	return r.clients[0].CallContext(ctx, result, method, args...)
}

// prepare reads the chain, funds senders and deploys the token as needed,
// and signs every transaction.
func (r *runner) prepare(ctx context.Context) error {
	if err := r.readChain(ctx); err != nil {
		return err
	}
	keys := r.cfg.Keys[:r.cfg.Senders]
	r.senders = make([]common.Address, len(keys))
	r.nonces = make([]uint64, len(keys))
	for i, k := range keys {
		r.senders[i] = crypto.PubkeyToAddress(k.PublicKey)
	}
	if err := r.readNonces(ctx); err != nil {
		return err
	}
	// Roles first: nothing is sent while a sender cannot transact.
	if err := r.grantRoles(ctx); err != nil {
		return err
	}
	if err := r.fund(ctx); err != nil {
		return err
	}
	// The funder may be a sender too: its nonce moved.
	if err := r.readNonces(ctx); err != nil {
		return err
	}
	if r.cfg.Kind == KindERC20 || r.cfg.Kind == KindMixed {
		if err := r.deployToken(ctx); err != nil {
			return err
		}
	}
	r.plan()
	return nil
}

// readChain reads the chain id and the fees public transactions pay.
func (r *runner) readChain(ctx context.Context) error {
	var id hexutil.Big
	if err := r.call(ctx, &id, "eth_chainId"); err != nil {
		return fmt.Errorf("eth_chainId: %w", err)
	}
	r.chainID = id.ToInt()
	r.signer = types.LatestSignerForChainID(r.chainID)
	var head struct {
		BaseFee *hexutil.Big `json:"baseFeePerGas"`
	}
	if err := r.call(ctx, &head, "eth_getBlockByNumber", "latest", false); err != nil {
		return fmt.Errorf("latest block: %w", err)
	}
	var tip hexutil.Big
	if err := r.call(ctx, &tip, "eth_maxPriorityFeePerGas"); err != nil {
		return fmt.Errorf("eth_maxPriorityFeePerGas: %w", err)
	}
	r.tip = tip.ToInt()
	base := new(big.Int)
	if head.BaseFee != nil {
		base = head.BaseFee.ToInt()
	}
	r.feeCap = new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), r.tip)
	return nil
}

func (r *runner) readNonces(ctx context.Context) error {
	batch := make([]gethrpc.BatchElem, len(r.senders))
	res := make([]hexutil.Uint64, len(r.senders))
	for i, a := range r.senders {
		batch[i] = gethrpc.BatchElem{Method: "eth_getTransactionCount", Args: []any{a, "pending"}, Result: &res[i]}
	}
	if err := r.batchCall(ctx, batch); err != nil {
		return fmt.Errorf("read nonces: %w", err)
	}
	for i := range res {
		r.nonces[i] = uint64(res[i])
	}
	return nil
}

// batchCall runs a batch on the first endpoint (see batchCall).
func (r *runner) batchCall(ctx context.Context, batch []gethrpc.BatchElem) error {
	return batchCall(ctx, r.clients[0], batch)
}

// fund gives each sender without enough ether 1 ETH from the funder, or
// from the admin when the funder has too little for all of them.
func (r *runner) fund(ctx context.Context) error {
	batch := make([]gethrpc.BatchElem, len(r.senders))
	bals := make([]hexutil.Big, len(r.senders))
	for i, a := range r.senders {
		batch[i] = gethrpc.BatchElem{Method: "eth_getBalance", Args: []any{a, "latest"}, Result: &bals[i]}
	}
	if err := r.batchCall(ctx, batch); err != nil {
		return fmt.Errorf("read balances: %w", err)
	}
	need := new(big.Int).Mul(big.NewInt(params.Ether), big.NewInt(1))
	var poor []common.Address
	for i, b := range bals {
		if b.ToInt().Cmp(new(big.Int).Div(need, big.NewInt(10))) < 0 {
			poor = append(poor, r.senders[i])
		}
	}
	if len(poor) == 0 {
		return nil
	}
	if r.cfg.FundFromNode {
		return r.fundFromNode(ctx, poor, need)
	}
	// What funding them costs: the value and the gas at the fee cap.
	total := new(big.Int).Mul(new(big.Int).Add(need, new(big.Int).Mul(r.feeCap, big.NewInt(21000))), big.NewInt(int64(len(poor))))
	key, err := r.chooseFunder(ctx, total)
	if err != nil {
		return fmt.Errorf("%d senders have no ether: %w", len(poor), err)
	}
	funder := crypto.PubkeyToAddress(key.PublicKey)
	var n hexutil.Uint64
	if err := r.call(ctx, &n, "eth_getTransactionCount", funder, "pending"); err != nil {
		return err
	}
	txs := make([]*types.Transaction, len(poor))
	for k, to := range poor {
		to := to
		txs[k] = types.MustSignNewTx(key, r.signer, &types.DynamicFeeTx{ChainID: r.chainID, Nonce: uint64(n) + uint64(k), Gas: 21000,
			GasFeeCap: r.feeCap, GasTipCap: r.tip, To: &to, Value: need})
	}
	return r.submitAndWait(ctx, txs, "fund senders")
}

// fundFromNode sends value to each of poor from the endpoint's first
// account with eth_sendTransaction: the node signs (geth --dev's
// prefunded developer account, charter dev's development accounts).
func (r *runner) fundFromNode(ctx context.Context, poor []common.Address, value *big.Int) error {
	var accts []common.Address
	if err := r.call(ctx, &accts, "eth_accounts"); err != nil {
		return fmt.Errorf("%d senders have no ether; fund them from the node's account: eth_accounts: %w", len(poor), err)
	}
	if len(accts) == 0 {
		return fmt.Errorf("%d senders have no ether and the node has no account to fund them from (eth_accounts is empty): give a funded key", len(poor))
	}
	// The nonces are given, one request at a time: a node that picks
	// them from its pool may give one twice while it resets the pool after
	// a block (geth --dev then answers "replacement transaction
	// underpriced").
	var nonce hexutil.Uint64
	if err := r.call(ctx, &nonce, "eth_getTransactionCount", accts[0], "pending"); err != nil {
		return fmt.Errorf("fund senders from %s: eth_getTransactionCount: %w", accts[0], err)
	}
	hashes := make([]common.Hash, len(poor))
	for k, to := range poor {
		if err := r.call(ctx, &hashes[k], "eth_sendTransaction", map[string]any{
			"from": accts[0], "to": to, "value": (*hexutil.Big)(value), "gas": hexutil.Uint64(21000),
			"nonce": nonce + hexutil.Uint64(k)}); err != nil {
			return fmt.Errorf("fund senders from %s (eth_sendTransaction): %w", accts[0], err)
		}
	}
	return r.waitReceipts(ctx, hashes, "fund senders from the node's account")
}

// chooseFunder picks Funder, or Admin when Funder holds less than total
// wei and Admin holds enough.
func (r *runner) chooseFunder(ctx context.Context, total *big.Int) (*ecdsa.PrivateKey, error) {
	balance := func(key *ecdsa.PrivateKey) (*big.Int, error) {
		var b hexutil.Big
		if err := r.call(ctx, &b, "eth_getBalance", crypto.PubkeyToAddress(key.PublicKey), "latest"); err != nil {
			return nil, fmt.Errorf("read balance: %w", err)
		}
		return b.ToInt(), nil
	}
	if r.cfg.Funder == nil && r.cfg.Admin == nil {
		return nil, errors.New("no funder key is given")
	}
	var have *big.Int
	if r.cfg.Funder != nil {
		b, err := balance(r.cfg.Funder)
		if err != nil {
			return nil, err
		}
		if b.Cmp(total) >= 0 || r.cfg.Admin == nil {
			return r.cfg.Funder, nil // a short funder fails with the node's own reason
		}
		have = b
	}
	b, err := balance(r.cfg.Admin)
	if err != nil {
		return nil, err
	}
	if b.Cmp(total) < 0 && r.cfg.Funder != nil && b.Cmp(have) <= 0 {
		return r.cfg.Funder, nil
	}
	return r.cfg.Admin, nil
}

// deployToken deploys the token (and, for KindMixed, the hot contract)
// from the first sender, measures the gas of each kind of transaction on
// this chain, and gives every other sender tokens.
func (r *runner) deployToken(ctx context.Context) error {
	owner := r.cfg.Keys[0]
	deploy := types.MustSignNewTx(owner, r.signer, &types.DynamicFeeTx{ChainID: r.chainID, Nonce: r.nonces[0], Gas: 3_000_000,
		GasFeeCap: r.feeCap, GasTipCap: r.tip, Data: token.DeployData(new(big.Int).Lsh(big.NewInt(1), 200))})
	r.token = crypto.CreateAddress(r.senders[0], r.nonces[0])
	r.nonces[0]++
	txs := []*types.Transaction{deploy}
	if r.cfg.Kind == KindMixed {
		txs = append(txs, types.MustSignNewTx(owner, r.signer, &types.DynamicFeeTx{ChainID: r.chainID, Nonce: r.nonces[0], Gas: 1_000_000,
			GasFeeCap: r.feeCap, GasTipCap: r.tip, Data: hotInitCode}))
		r.hot = crypto.CreateAddress(r.senders[0], r.nonces[0])
		r.nonces[0]++
	}
	if err := r.submitAndWait(ctx, txs, "deploy the token"); err != nil {
		return err
	}
	if r.cfg.Kind == KindMixed {
		var code hexutil.Bytes
		if err := r.call(ctx, &code, "eth_getCode", r.hot, "latest"); err != nil {
			return fmt.Errorf("deploy the hot contract: %w", err)
		}
		if hexutil.Encode(code) != "0x"+hotRuntimeHex {
			return fmt.Errorf("deploy the hot contract: its code at %s is %s", r.hot, code)
		}
	}
	if err := r.measureGas(ctx); err != nil {
		return err
	}
	txs = nil
	for i := 1; i < len(r.senders); i++ {
		txs = append(txs, types.MustSignNewTx(owner, r.signer, &types.DynamicFeeTx{ChainID: r.chainID, Nonce: r.nonces[0], Gas: r.gas[txERC20],
			GasFeeCap: r.feeCap, GasTipCap: r.tip, To: &r.token, Data: token.TransferData(r.senders[i], new(big.Int).Lsh(big.NewInt(1), 100))}))
		r.nonces[0]++
	}
	return r.submitAndWait(ctx, txs, "distribute the token")
}

// measureGas raises the gas limit of each kind of transaction to what
// this chain estimates for it plus a quarter, when that is above
// txKindGas: prices differ between forks (geth --dev's newest fork
// charges far more for a new storage slot than Charter's). The estimates
// are of the dearest case: a transfer to a fresh address, the hot
// counter's first write.
func (r *runner) measureGas(ctx context.Context) error {
	fresh := common.BigToAddress(big.NewInt(0x10000))
	calls := map[int]map[string]any{
		txTransfer: {"to": fresh, "value": (*hexutil.Big)(big.NewInt(1))},
		txERC20:    {"to": r.token, "data": hexutil.Bytes(token.TransferData(fresh, big.NewInt(1)))},
		txCreate:   {"data": hexutil.Bytes(hotInitCode)},
	}
	if r.hot != (common.Address{}) {
		calls[txHot] = map[string]any{"to": r.hot}
	}
	est := make([]hexutil.Uint64, numTxKinds)
	var batch []gethrpc.BatchElem
	for k, call := range calls {
		call["from"] = r.senders[0]
		batch = append(batch, gethrpc.BatchElem{Method: "eth_estimateGas", Args: []any{call}, Result: &est[k]})
	}
	if err := r.batchCall(ctx, batch); err != nil {
		return fmt.Errorf("estimate the gas of each kind of transaction: %w", err)
	}
	for k := range numTxKinds {
		r.gas[k] = max(r.gas[k], uint64(est[k])+uint64(est[k])/4)
	}
	return nil
}

// submitAndWait sends setup transactions and waits for all receipts.
func (r *runner) submitAndWait(ctx context.Context, txs []*types.Transaction, what string) error {
	if len(txs) == 0 {
		return nil
	}
	batch := make([]gethrpc.BatchElem, len(txs))
	for i, tx := range txs {
		raw, _ := tx.MarshalBinary()
		batch[i] = gethrpc.BatchElem{Method: "eth_sendRawTransaction", Args: []any{hexutil.Encode(raw)}, Result: new(common.Hash)}
	}
	if err := r.batchCall(ctx, batch); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	hashes := make([]common.Hash, len(txs))
	for i, tx := range txs {
		hashes[i] = tx.Hash()
	}
	return r.waitReceipts(ctx, hashes, what)
}

// waitReceipts waits for a successful receipt of every transaction, then
// for every endpoint to hold their blocks.
func (r *runner) waitReceipts(ctx context.Context, hashes []common.Hash, what string) error {
	deadline := time.Now().Add(r.cfg.Timeout)
	var last uint64 // the highest block of a receipt
	for _, h := range hashes {
		for {
			var rc *struct {
				Status      hexutil.Uint64 `json:"status"`
				BlockNumber hexutil.Uint64 `json:"blockNumber"`
			}
			if err := r.call(ctx, &rc, "eth_getTransactionReceipt", h); err != nil {
				// geth answers this while it indexes after a start: not yet.
				if !strings.Contains(err.Error(), "transaction indexing is in progress") || time.Now().After(deadline) {
					return fmt.Errorf("%s: %w", what, err)
				}
				rc = nil
			}
			if rc != nil {
				if rc.Status != 1 {
					return fmt.Errorf("%s: transaction %s failed", what, h)
				}
				last = max(last, uint64(rc.BlockNumber))
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: no receipt for %s within %s", what, h, r.cfg.Timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The measured transactions go to every endpoint: each must hold
	// these blocks first, or a sender funded on one node is still poor on
	// another.
	for i, c := range r.clients {
		for {
			var head hexutil.Uint64
			if err := c.CallContext(ctx, &head, "eth_blockNumber"); err != nil {
				return fmt.Errorf("%s: %s: %w", what, r.cfg.Endpoints[i], err)
			}
			if uint64(head) >= last {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %s did not reach block %d within %s", what, r.cfg.Endpoints[i], last, r.cfg.Timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// plan fixes the run's length and kinds, and pre-signs the transactions of
// a run of Txs (a sustained run signs each as it is sent, so that it keeps
// nothing per transaction).
func (r *runner) plan() {
	r.total = r.cfg.Txs
	if r.cfg.Duration > 0 {
		r.total = int(math.Ceil(r.cfg.Rate * r.cfg.Duration.Seconds()))
	}
	mix := Mix{}
	switch r.cfg.Kind {
	case KindTransfer:
		mix.Shares[txTransfer] = 100
	case KindERC20:
		mix.Shares[txERC20] = 100
	default:
		mix = r.cfg.mix()
	}
	r.pattern = mix.pattern()
	if r.cfg.Duration == 0 {
		r.txs = make([]*types.Transaction, r.total)
		for i := range r.txs {
			r.txs[i] = r.txAt(i)
		}
	}
}

// mix is the mix of a KindMixed run.
func (c *Config) mix() Mix {
	if c.Mix == (Mix{}) {
		return DefaultMix
	}
	return c.Mix
}

// kindOf is the kind of transaction i.
func (r *runner) kindOf(i int) int { return int(r.pattern[i%len(r.pattern)]) }

// txAt signs transaction i of the run: round robin over the senders, each
// sender's in nonce order.
func (r *runner) txAt(i int) *types.Transaction {
	s := i % len(r.senders)
	k := r.kindOf(i)
	inner := &types.DynamicFeeTx{ChainID: r.chainID, Nonce: r.nonces[s] + uint64(i/len(r.senders)), Gas: r.gas[k],
		GasFeeCap: r.feeCap, GasTipCap: r.tip}
	recipient := common.BigToAddress(big.NewInt(int64(0x10000 + i%10_000)))
	switch k {
	case txTransfer:
		inner.To, inner.Value = &recipient, big.NewInt(1)
	case txERC20:
		inner.To, inner.Data = &r.token, token.TransferData(recipient, big.NewInt(1))
	case txCreate:
		inner.Data = hotInitCode
	case txHot:
		inner.To = &r.hot
	}
	return types.MustSignNewTx(r.cfg.Keys[s], r.signer, inner)
}

func (r *runner) noteError(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.errs == nil {
		r.errs = make(map[string]bool)
	}
	if len(r.errs) < 5 {
		r.errs[err.Error()] = true
	}
}
