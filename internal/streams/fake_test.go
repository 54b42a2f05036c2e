package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/chaindata"
)

const testChainID = 1337

var (
	addrA = common.HexToAddress("0x00000000000000000000000000000000000000aa")
	addrB = common.HexToAddress("0x00000000000000000000000000000000000000bb")
)

// fakeSource is a ledger of generated blocks: block n has logsPerBlock
// logs, alternately from addrA and addrB, in two transactions.
type fakeSource struct {
	heads *chaindata.Heads
	mu    sync.Mutex
	blks  []*types.Block
	rcpts []types.Receipts
	calls int
	// extra, if set, gives more logs for transaction 1 of block n.
	extra func(n uint64) []*types.Log
}

const logsPerBlock = 3

func newFakeSource(blocks int) *fakeSource {
	return newFakeSourceWith(blocks, nil)
}

func newFakeSourceWith(blocks int, extra func(uint64) []*types.Log) *fakeSource {
	s := &fakeSource{heads: &chaindata.Heads{}, extra: extra}
	s.add(blocks)
	return s
}

// add appends n blocks and wakes the readers; it never waits on them.
func (s *fakeSource) add(n int) {
	s.mu.Lock()
	for range n {
		num := uint64(len(s.blks))
		b := types.NewBlockWithHeader(&types.Header{Number: new(big.Int).SetUint64(num), Time: 1_700_000_000 + num})
		var rs types.Receipts
		for tx := range 2 {
			r := &types.Receipt{TxHash: common.BigToHash(big.NewInt(int64(num*10 + uint64(tx)))), BlockNumber: b.Number(), BlockHash: b.Hash(), TransactionIndex: uint(tx)}
			rs = append(rs, r)
		}
		for i := range logsPerBlock {
			tx := i % 2
			addr := addrA
			if i%2 == 1 {
				addr = addrB
			}
			l := &types.Log{
				Address:     addr,
				Topics:      []common.Hash{common.HexToHash("0x01"), common.BigToHash(big.NewInt(int64(i)))},
				Data:        []byte{byte(num), byte(i)},
				BlockNumber: num,
				TxHash:      rs[tx].TxHash,
				TxIndex:     uint(tx),
				BlockHash:   b.Hash(),
				Index:       uint(i),
			}
			rs[tx].Logs = append(rs[tx].Logs, l)
		}
		if s.extra != nil {
			for _, l := range s.extra(num) {
				l.BlockNumber, l.TxHash, l.TxIndex, l.BlockHash = num, rs[1].TxHash, 1, b.Hash()
				rs[1].Logs = append(rs[1].Logs, l)
			}
		}
		// Logs in a block's receipts come in index order: transaction 0's, then 1's.
		reindex(rs)
		s.blks = append(s.blks, b)
		s.rcpts = append(s.rcpts, rs)
	}
	s.mu.Unlock()
	s.heads.Notify()
}

func reindex(rs types.Receipts) {
	i := uint(0)
	for _, r := range rs {
		for _, l := range r.Logs {
			l.Index = i
			i++
		}
	}
}

func (s *fakeSource) Head() *types.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.blks) == 0 {
		return nil
	}
	return s.blks[len(s.blks)-1].Header()
}

func (s *fakeSource) BlockByNumber(n uint64) *types.Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if n >= uint64(len(s.blks)) {
		return nil
	}
	return s.blks[n]
}

func (s *fakeSource) Receipts(n uint64) (types.Receipts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n >= uint64(len(s.rcpts)) {
		return nil, fmt.Errorf("no block %d", n)
	}
	return s.rcpts[n], nil
}

// ids is every event ID of blocks [from, to) whose address passes keep.
func (s *fakeSource) ids(from, to uint64, keep func(common.Address) bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := from; n < to; n++ {
		for _, r := range s.rcpts[n] {
			for _, l := range r.Logs {
				if keep == nil || keep(l.Address) {
					out = append(out, fmt.Sprintf("%d-%d-%d", testChainID, n, l.Index))
				}
			}
		}
	}
	return out
}

func (s *fakeSource) height() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.blks))
}

// memSink records what it accepts; fail makes it refuse; block makes
// Deliver wait for its context.
type memSink struct {
	mu     sync.Mutex
	got    []string
	fail   bool
	block  bool
	closed bool
	// blocked counts Deliver calls that waited on their context.
	blocked int
}

var memSinks = struct {
	sync.Mutex
	m map[string]*memSink
}{m: map[string]*memSink{}}

func init() {
	RegisterSink("mem", func(cfg json.RawMessage) (chaindata.Sink, error) {
		var c struct{ ID string }
		if err := json.Unmarshal(cfg, &c); err != nil {
			return nil, err
		}
		memSinks.Lock()
		defer memSinks.Unlock()
		s, ok := memSinks.m[c.ID]
		if !ok {
			return nil, fmt.Errorf("no mem sink %q", c.ID)
		}
		return s, nil
	})
}

func newMemSink(t *testing.T) (*memSink, SinkConfig) {
	s := &memSink{}
	id := t.Name() + fmt.Sprint(time.Now().UnixNano())
	memSinks.Lock()
	memSinks.m[id] = s
	memSinks.Unlock()
	raw, _ := json.Marshal(map[string]string{"ID": id})
	return s, SinkConfig{Kind: "mem", Config: raw}
}

func (s *memSink) Deliver(ctx context.Context, evs []chaindata.Event) error {
	s.mu.Lock()
	block, fail := s.block, s.fail
	s.mu.Unlock()
	if block {
		s.mu.Lock()
		s.blocked++
		s.mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	}
	if fail {
		return fmt.Errorf("refused")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		s.got = append(s.got, e.ID)
	}
	return nil
}

func (s *memSink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *memSink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *memSink) set(fail, block bool) {
	s.mu.Lock()
	s.fail, s.block = fail, block
	s.mu.Unlock()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// firstSeen is ids without repeats, in order of first appearance.
func firstSeen(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// receiver is a webhook endpoint on 127.0.0.1 that checks signatures
// and can be down, failing or slow.
type receiver struct {
	t      *testing.T
	secret string
	addr   string

	mu    sync.Mutex
	srv   *http.Server
	mode  string // "ok", "fail", "slow"
	got   []string
	bad   []string
	posts int
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret, mode: "ok"}
	r.up()
	t.Cleanup(r.down)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

func (r *receiver) up() {
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listen %s: %v", addr, err)
	}
	r.addr = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(l)
}

// down closes the listener and every connection: POSTs are refused.
func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *receiver) setMode(m string) {
	r.mu.Lock()
	r.mode = m
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body := make([]byte, 0, 1<<16)
	buf := make([]byte, 1<<14)
	for {
		n, err := req.Body.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil || len(body) > 8<<20 {
			break
		}
	}
	r.mu.Lock()
	mode := r.mode
	r.posts++
	r.mu.Unlock()
	if err := VerifySignature([]byte(r.secret), req.Header.Get(SignatureHeader), body, 5*time.Minute); err != nil {
		r.mu.Lock()
		r.bad = append(r.bad, err.Error())
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var wb WebhookBody
	if err := json.Unmarshal(body, &wb); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ids := make([]string, len(wb.Events))
	for i, e := range wb.Events {
		ids[i] = e.ID
	}
	if got := req.Header.Get(EventIDsHeader); got != strings.Join(ids, ",") {
		r.mu.Lock()
		r.bad = append(r.bad, "event ids header "+got)
		r.mu.Unlock()
	}
	switch mode {
	case "fail":
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	case "slow":
		select {
		case <-time.After(150 * time.Millisecond):
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	r.got = append(r.got, ids...)
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *receiver) badSignatures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bad)
}

func webhookSink(t *testing.T, url, secret string) SinkConfig {
	raw, err := json.Marshal(WebhookConfig{URL: url, Secret: secret, TimeoutMs: 2000})
	if err != nil {
		t.Fatal(err)
	}
	return SinkConfig{Kind: "webhook", Config: raw}
}

func testConfig(t *testing.T, dir string, src *fakeSource) Config {
	return Config{
		Dir:            dir,
		Source:         src,
		Heads:          src.heads,
		ChainID:        testChainID,
		MaxBatchEvents: 7,
		RetryBase:      2 * time.Millisecond,
		RetryMax:       40 * time.Millisecond,
		DeliverTimeout: 3 * time.Second,
		PollInterval:   time.Second,
	}
}

func newTestManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

func statsOf(m *Manager, name string) StreamStats {
	for _, s := range m.Stats() {
		if s.Name == name {
			return s
		}
	}
	return StreamStats{}
}
