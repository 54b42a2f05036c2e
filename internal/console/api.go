package console

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/chaindata"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// APIConfig is what the console's endpoints read.
type APIConfig struct {
	// Chain is the node's chain as JSON-RPC sees it. Required.
	Chain rpc.Backend
	// Contracts is the contract registry as of the head; nil: no
	// contract is named and nothing is decoded.
	Contracts chaindata.Contracts
	// Ready is the node's readiness, as its /readyz answers; nil: ready.
	Ready func() (bool, string)
	// Peers lists the connected peers with what each last reported of
	// its readiness; nil: none.
	Peers func() []Peer
	// History is the ring of the node's counters the node samples (the
	// last hour of the charts); nil: none kept.
	History *History
	// SQLIndex tells whether the node keeps an SQL index (POST
	// /api/v1/sql answers).
	SQLIndex bool
	// Roots are the organizations' root certificates (PEM) the registry
	// holds at the head, by organization; nil: none shown.
	Roots func() (map[string]string, error)
	// Gatherer is the node's metrics registry; the health answer carries
	// the counters the page charts (nil: none).
	Gatherer prometheus.Gatherer
	// Seal reads the consensus seal of a committed block (nil: only the
	// engine is told).
	Seal func(number uint64, hash common.Hash) (*Seal, error)
	// Node names the node: its name, organization and consensus engine.
	Node NodeInfo
	// CallTimeout bounds the re-execution that finds a failed
	// transaction's revert reason (default 5 s).
	CallTimeout time.Duration
	// Log receives internal errors (nil: slog.Default()).
	Log *slog.Logger
}

// NodeInfo names the node that serves the console.
type NodeInfo struct {
	Name      string `json:"name"`
	Org       string `json:"org"`
	Consensus string `json:"consensus"`
	// ID is the node's id (its consensus address); empty on a node
	// without a network identity.
	ID string `json:"id,omitempty"`
	// CertExpires is when the node's TLS certificate expires (nil:
	// none, charter dev).
	CertExpires *time.Time `json:"certExpires,omitempty"`
}

// MaxContracts bounds the registry list one request returns.
const MaxContracts = 1000

type api struct {
	cfg    APIConfig
	signer types.Signer
	mux    *http.ServeMux
}

// NewAPI returns the handler of APIPath. Every endpoint is GET and needs
// the role read when an identity is in the request's context (behind
// auth.Middleware); without one (an open node, charter dev) it serves
// everyone, as the REST gateway does.
func NewAPI(cfg APIConfig) (http.Handler, error) {
	if cfg.Chain == nil {
		return nil, errors.New("console: APIConfig.Chain is required")
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &api{cfg: cfg, signer: types.LatestSignerForChainID(cfg.Chain.ChainSpec().Config.ChainID), mux: http.NewServeMux()}
	a.mux.HandleFunc("GET "+APIPath+"tx/{hash}", a.serve("GET /api/console/tx/{hash}", a.transaction))
	a.mux.HandleFunc("GET "+APIPath+"contracts", a.serve("GET /api/console/contracts", a.contracts))
	a.mux.HandleFunc("GET "+APIPath+"block/{number}/seal", a.serve("GET /api/console/block/{number}/seal", a.seal))
	a.mux.HandleFunc("GET "+APIPath+"contracts/{name}", a.serve("GET /api/console/contracts/{name}", a.contract))
	a.mux.HandleFunc("GET "+APIPath+"certificates", a.serve("GET /api/console/certificates", a.certificates))
	a.mux.HandleFunc("GET "+APIPath+"health", a.serve("GET /api/console/health", a.health))
	a.mux.HandleFunc("GET "+APIPath+"validators", a.serve("GET /api/console/validators", a.validators))
	a.mux.HandleFunc("GET "+APIPath+"history", a.serve("GET /api/console/history", a.history))
	a.mux.HandleFunc("GET "+APIPath+"usage/{from}/{to}", a.serve("GET /api/console/usage/{from}/{to}", a.usage))
	a.mux.HandleFunc("POST "+APIPath+"draft", a.draft)
	a.mux.HandleFunc(APIPath, func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no such console endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a.mux, nil
}

// statusError is an answer other than 200.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func fail(status int, format string, args ...any) error {
	return &statusError{status: status, msg: fmt.Sprintf(format, args...)}
}

// admit names the request what in the access log and lets it on if its
// caller holds the role read (a node without authentication has no
// caller); otherwise it answers 403 and tells so.
func admit(w http.ResponseWriter, r *http.Request, what string) bool {
	if e := auth.EntryOf(r.Context()); e != nil {
		e.What = what
	}
	if who := auth.FromContext(r.Context()); who != nil {
		if err := auth.Allow(who, what, system.RoleRead); err != nil {
			problem(w, http.StatusForbidden, err.Error())
			return false
		}
	}
	return true
}

func (a *api) serve(what string, h func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !admit(w, r, what) {
			return
		}
		if len(r.URL.RawQuery) > 0 {
			problem(w, http.StatusBadRequest, "this endpoint takes no query parameters")
			return
		}
		out, err := h(r)
		if err != nil {
			var se *statusError
			if !errors.As(err, &se) {
				a.cfg.Log.Error("Console API", "what", what, "err", err)
				se = &statusError{status: http.StatusInternalServerError, msg: "internal error"}
			}
			problem(w, se.status, se.msg)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(out)
	}
}

// problem writes an RFC 9457 problem document.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail})
}

// Named is a registered contract as the console shows it.
type Named struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
}

// DecodedTx is a committed transaction decoded by the registry's ABIs.
type DecodedTx struct {
	Hash        string         `json:"hash"`
	BlockNumber uint64         `json:"blockNumber"`
	BlockHash   string         `json:"blockHash"`
	Index       int            `json:"index"`
	From        string         `json:"from"`
	To          *string        `json:"to"`
	Contract    *Named         `json:"contract,omitempty"`
	Created     *string        `json:"contractAddress,omitempty"`
	Value       string         `json:"value"`
	Nonce       uint64         `json:"nonce"`
	Gas         uint64         `json:"gas"`
	GasUsed     uint64         `json:"gasUsed"`
	Status      string         `json:"status"`
	Input       string         `json:"input"`
	Method      string         `json:"method,omitempty"`
	Args        []DecodedArg   `json:"args,omitempty"`
	Revert      string         `json:"revertReason,omitempty"`
	Events      []DecodedEvent `json:"events"`
	Note        string         `json:"note,omitempty"`
}

// DecodedArg is one argument of a call or an event.
type DecodedArg struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// DecodedEvent is one log, with its event and arguments when the emitting
// contract is registered with an ABI.
type DecodedEvent struct {
	Index    uint         `json:"logIndex"`
	Address  string       `json:"address"`
	Contract *Named       `json:"contract,omitempty"`
	Event    string       `json:"event,omitempty"`
	Args     []DecodedArg `json:"args,omitempty"`
	Topics   []string     `json:"topics"`
	Data     string       `json:"data"`
}

// maxInputShown bounds the input's hex the answer repeats (a transaction
// is at most 128 KiB; the page shows the start).
const maxInputShown = 4096

func (a *api) transaction(r *http.Request) (any, error) {
	raw := r.PathValue("hash")
	if len(raw) != 66 || !strings.HasPrefix(raw, "0x") {
		return nil, fail(http.StatusBadRequest, "hash: want 0x and 64 hex digits, got %q", truncate(raw, 80))
	}
	hash := common.HexToHash(raw)
	if hash.Hex() != strings.ToLower(raw) {
		return nil, fail(http.StatusBadRequest, "hash: %q is not hex", truncate(raw, 80))
	}
	b := a.cfg.Chain
	number, idx, ok := b.GetTransaction(hash)
	if !ok {
		if b.PoolTransaction(hash) != nil {
			return nil, fail(http.StatusNotFound, "transaction %s is waiting in the pool", hash.Hex())
		}
		return nil, fail(http.StatusNotFound, "no transaction %s in the chain", hash.Hex())
	}
	blk := b.BlockByNumber(number)
	if blk == nil || idx >= len(blk.Transactions()) {
		return nil, fmt.Errorf("block %d lacks transaction %d", number, idx)
	}
	receipts, err := b.GetReceipts(number)
	if err != nil || idx >= len(receipts) {
		return nil, fmt.Errorf("receipts of block %d: %v", number, err)
	}
	tx, rc := blk.Transactions()[idx], receipts[idx]
	from, _ := types.Sender(a.signer, tx)
	out := &DecodedTx{
		Hash: hash.Hex(), BlockNumber: number, BlockHash: blk.Hash().Hex(), Index: idx, From: from.Hex(),
		Value: tx.Value().String(), Nonce: tx.Nonce(), Gas: tx.Gas(), GasUsed: rc.GasUsed, Status: "success",
		Events: []DecodedEvent{},
	}
	if rc.Status != types.ReceiptStatusSuccessful {
		out.Status = "failed"
	}
	in := tx.Data()
	if len(in) > maxInputShown {
		out.Input = "0x" + common.Bytes2Hex(in[:maxInputShown]) + "…"
	} else {
		out.Input = "0x" + common.Bytes2Hex(in)
	}
	if rc.ContractAddress != (common.Address{}) {
		s := rc.ContractAddress.Hex()
		out.Created = &s
	}
	var contract chaindata.Contract
	var known bool
	if to := tx.To(); to != nil {
		s := to.Hex()
		out.To = &s
		if a.cfg.Contracts != nil {
			if contract, known = a.cfg.Contracts.ByAddress(*to); known {
				out.Contract = &Named{Name: contract.Name, Version: contract.Version}
			}
		}
	}
	if known && contract.ABI != nil && len(in) >= 4 {
		if m, err := contract.ABI.MethodById(in[:4]); err == nil {
			out.Method = m.Sig
			if vals, err := m.Inputs.Unpack(in[4:]); err == nil {
				out.Args = args(m.Inputs, vals)
			}
		}
	}
	for _, l := range rc.Logs {
		ev := DecodedEvent{Index: l.Index, Address: l.Address.Hex(), Topics: make([]string, len(l.Topics)), Data: "0x" + common.Bytes2Hex(l.Data)}
		for i, t := range l.Topics {
			ev.Topics[i] = t.Hex()
		}
		if a.cfg.Contracts != nil {
			if c, ok := a.cfg.Contracts.ByAddress(l.Address); ok {
				ev.Contract = &Named{Name: c.Name, Version: c.Version}
				if e, named, ok := chaindata.DecodeEvent(c, l); ok {
					ev.Event = e.Sig
					for _, in := range e.Inputs {
						ev.Args = append(ev.Args, DecodedArg{Name: in.Name, Type: in.Type.String(), Value: named[in.Name]})
					}
				}
			}
		}
		out.Events = append(out.Events, ev)
	}
	if out.Status == "failed" {
		out.Revert, out.Note = a.revertReason(r.Context(), blk, tx, contract)
	}
	return out, nil
}

func args(params abi.Arguments, vals []any) []DecodedArg {
	out := make([]DecodedArg, 0, len(params))
	for i, p := range params {
		if i >= len(vals) {
			break
		}
		name := p.Name
		if name == "" {
			name = fmt.Sprintf("arg%d", i)
		}
		out = append(out, DecodedArg{Name: name, Type: p.Type.String(), Value: chaindata.JSONValue(vals[i])})
	}
	return out
}

// revertReason runs tx again on the state before its block (without the
// transactions before it in the block, which the page says) to read the
// reason it reverted with: Error(string), or a custom error of the
// contract's ABI.
func (a *api) revertReason(ctx context.Context, blk *types.Block, tx *types.Transaction, c chaindata.Contract) (string, string) {
	const note = "revert reason from running the transaction again on the state before its block"
	if blk.NumberU64() == 0 {
		return "", ""
	}
	parent := a.cfg.Chain.HeaderByNumber(blk.NumberU64() - 1)
	if parent == nil {
		return "", "the block before is not held: no revert reason"
	}
	st, err := a.cfg.Chain.StateAt(parent.Root)
	if err != nil {
		return "", "the state before the block is not kept: no revert reason"
	}
	msg, err := core.TransactionToMessage(tx, a.signer, blk.BaseFee())
	if err != nil {
		return "", ""
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	defer cancel()
	res, err := a.cfg.Chain.Call(ctx, blk.Header(), st, msg)
	if err != nil || res == nil || res.Err == nil {
		return "", "running it again did not fail (it may depend on the transactions before it in its block)"
	}
	data := res.Revert()
	if reason, err := abi.UnpackRevert(data); err == nil {
		return reason, note
	}
	if c.ABI != nil && len(data) >= 4 {
		for _, e := range c.ABI.Errors {
			if string(e.ID[:4]) == string(data[:4]) {
				if vals, err := e.Inputs.Unpack(data[4:]); err == nil {
					parts := make([]string, 0, len(vals))
					for _, v := range args(e.Inputs, vals) {
						parts = append(parts, fmt.Sprintf("%s=%v", v.Name, v.Value))
					}
					return e.Name + "(" + strings.Join(parts, ", ") + ")", note
				}
			}
		}
	}
	if len(data) > 0 {
		return "0x" + common.Bytes2Hex(data[:min(len(data), 256)]), note
	}
	return res.Err.Error(), note
}

// ContractEntry is one registered version as the console lists it.
type ContractEntry struct {
	Name       string `json:"name"`
	Version    uint64 `json:"version"`
	Address    string `json:"address"`
	Org        string `json:"org"`
	Deprecated bool   `json:"deprecated"`
	HasABI     bool   `json:"hasAbi"`
	ABIHash    string `json:"abiHash"`
}

func (a *api) contracts(*http.Request) (any, error) {
	out := []ContractEntry{}
	if a.cfg.Contracts == nil {
		return out, nil
	}
	all := a.cfg.Contracts.All()
	for i, c := range all {
		if i == MaxContracts {
			break
		}
		out = append(out, ContractEntry{Name: c.Name, Version: c.Version, Address: c.Address.Hex(), Org: c.Org,
			Deprecated: c.Deprecated, HasABI: c.ABI != nil, ABIHash: c.ABIHash.Hex()})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

// Health is what GET /api/console/health answers.
type Health struct {
	Node   NodeInfo `json:"node"`
	Ready  bool     `json:"ready"`
	Reason string   `json:"reason,omitempty"`
	Peers  int      `json:"peers"`
	// PeerList are the connected peers (at most MaxPeers).
	PeerList []Peer `json:"peerList"`
	Pending  int    `json:"pending"`
	Queued   int    `json:"queued"`
	Head     uint64 `json:"head"`
	// HeadAge is how long ago the head was made; absent at the genesis,
	// whose time is the chain's configuration, not a block's making.
	HeadAge *float64 `json:"headAgeSeconds,omitempty"`
	Index   bool     `json:"sqlIndex"`
	// Caller is who asks: absent on an open node (charter dev, a
	// loopback testnet), where the node's organization is the view.
	Caller *Caller `json:"caller,omitempty"`
	// Metrics are the node's counters now, for the page to chart their
	// rates between two answers: committed transactions, and the count
	// and sum of the finality latency histogram.
	Metrics *Counters `json:"metrics,omitempty"`
}

// Counters are monotonic counters of the node's metrics.
type Counters struct {
	TxCommitted     float64 `json:"txCommitted"`
	FinalityCount   uint64  `json:"finalityCount"`
	FinalitySeconds float64 `json:"finalitySeconds"`
	Time            float64 `json:"time"` // Unix seconds of the reading
}

// Caller is the identity a request was authenticated as.
type Caller struct {
	Name  string   `json:"name"`
	Org   string   `json:"org"`
	Roles []string `json:"roles"`
}

func (a *api) health(r *http.Request) (any, error) {
	h := &Health{Node: a.cfg.Node, Ready: true, Index: a.cfg.SQLIndex}
	if who := auth.FromContext(r.Context()); who != nil {
		h.Caller = &Caller{Name: who.Name(), Org: who.Org, Roles: who.Roles.Names()}
	}
	if a.cfg.Ready != nil {
		h.Ready, h.Reason = a.cfg.Ready()
	}
	h.PeerList = []Peer{}
	if a.cfg.Peers != nil {
		ps := a.cfg.Peers()
		h.Peers = len(ps)
		h.PeerList = ps[:min(len(ps), MaxPeers)]
	}
	h.Pending, h.Queued = a.cfg.Chain.PoolStats()
	if a.cfg.Gatherer != nil {
		h.Metrics = counters(a.cfg.Gatherer)
	}
	head := a.cfg.Chain.CurrentHeader()
	h.Head = head.Number.Uint64()
	if h.Head > 0 {
		age := time.Since(time.Unix(int64(head.Time), 0)).Seconds()
		h.HeadAge = &age
	}
	return h, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Seal is how a block was decided: the engine, and on bft the round and
// the validators whose precommit signatures form its commit certificate
// (checked against the validator set of the height).
type Seal struct {
	Engine  string   `json:"engine"`
	Round   *int64   `json:"round,omitempty"`
	Signers []string `json:"signers"`
	// Validators is the validator set of the height (bft), in the
	// engine's order.
	Validators []string `json:"validators,omitempty"`
	// MissedRounds are the proposers of the rounds before the deciding
	// one, in round order (at most MaxMissedRounds): each let its round
	// pass without a decision (silent, late or refused).
	MissedRounds []string `json:"missedRounds,omitempty"`
	Note         string   `json:"note,omitempty"`
}

// MaxMissedRounds bounds Seal.MissedRounds.
const MaxMissedRounds = 64

func (a *api) seal(r *http.Request) (any, error) {
	raw := r.PathValue("number")
	n, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "number: %q is not a block number", truncate(raw, 40))
	}
	h := a.cfg.Chain.HeaderByNumber(n)
	if h == nil {
		return nil, fail(http.StatusNotFound, "no block %d in the chain", n)
	}
	if a.cfg.Seal == nil {
		return &Seal{Engine: a.cfg.Node.Consensus, Signers: []string{}}, nil
	}
	return a.cfg.Seal(n, h.Hash())
}

// Certificate is a root certificate of an organization as the console
// lists it.
type Certificate struct {
	Org         string    `json:"org"`
	Subject     string    `json:"subject"`
	NotBefore   time.Time `json:"notBefore"`
	NotAfter    time.Time `json:"notAfter"`
	Fingerprint string    `json:"fingerprint"` // SHA-256 of the DER
	Error       string    `json:"error,omitempty"`
}

// maxCertificates bounds the list (the registry holds at most a few per
// organization).
const maxCertificates = 4096

func (a *api) certificates(*http.Request) (any, error) {
	out := []Certificate{}
	if a.cfg.Roots == nil {
		return out, nil
	}
	roots, err := a.cfg.Roots()
	if err != nil {
		return nil, err
	}
	orgs := make([]string, 0, len(roots))
	for o := range roots {
		orgs = append(orgs, o)
	}
	sort.Strings(orgs)
	for _, org := range orgs {
		rest := []byte(roots[org])
		for len(out) < maxCertificates {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			sum := sha256.Sum256(blk.Bytes)
			c := Certificate{Org: org, Fingerprint: "0x" + hex.EncodeToString(sum[:])}
			if cert, err := x509.ParseCertificate(blk.Bytes); err != nil {
				c.Error = err.Error()
			} else {
				c.Subject, c.NotBefore, c.NotAfter = cert.Subject.String(), cert.NotBefore.UTC(), cert.NotAfter.UTC()
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// ContractDoc is the newest version of a registered contract with its ABI
// document.
type ContractDoc struct {
	ContractEntry
	ABI json.RawMessage `json:"abi"`
}

func (a *api) contract(r *http.Request) (any, error) {
	name := r.PathValue("name")
	if a.cfg.Contracts == nil {
		return nil, fail(http.StatusNotFound, "no contract registered as %q", truncate(name, 80))
	}
	c, ok := a.cfg.Contracts.ByName(name)
	if !ok {
		return nil, fail(http.StatusNotFound, "no contract registered as %q", truncate(name, 80))
	}
	out := &ContractDoc{ContractEntry: ContractEntry{Name: c.Name, Version: c.Version, Address: c.Address.Hex(), Org: c.Org,
		Deprecated: c.Deprecated, HasABI: c.ABI != nil, ABIHash: c.ABIHash.Hex()}, ABI: json.RawMessage("null")}
	if c.ABIJSON != nil && json.Valid(c.ABIJSON) {
		out.ABI = c.ABIJSON
	}
	return out, nil
}

// ReadCounters reads the counters the console charts from g.
func ReadCounters(g prometheus.Gatherer) *Counters { return counters(g) }

// counters reads the counters the console charts from g.
func counters(g prometheus.Gatherer) *Counters {
	c := &Counters{Time: float64(time.Now().UnixMilli()) / 1000}
	families, err := g.Gather()
	if err != nil && len(families) == 0 {
		return c
	}
	for _, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		m := f.GetMetric()[0]
		switch f.GetName() {
		case "charter_transactions_committed_total":
			c.TxCommitted = m.GetCounter().GetValue()
		case "charter_finality_latency_seconds":
			c.FinalityCount, c.FinalitySeconds = m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
		}
	}
	return c
}
