package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// fakeChain is what the fake nodes of a privacy group share: the
// registry's accounts, the group, and the private transactions ordered by
// their markers, applied in order with Besu's nonce rule.
type fakeChain struct {
	chainID *big.Int
	ids     map[string][]byte // org → privacy identity
	roles   map[common.Address]account

	mu       sync.Mutex
	group    []byte
	nonces   map[common.Address]uint64   // next private nonce
	receipts map[common.Hash]fakeReceipt // by marker
	sent     int
	refuse   string // a refusal of every eea_sendRawTransaction
	delay    time.Duration

	// Private log filters: the token's Transfer logs in order, each
	// visible with its receipt; a filter is a position in them.
	logs         []fakeLog
	filters      map[string]int
	noFilters    bool   // priv_newFilter fails (a node without private filters)
	filterFail   string // priv_getFilterChanges fails with this, when set
	receiptCalls int    // priv_getTransactionReceipt calls answered
	revert       bool   // a transfer of a sender other than the token's owner with a nonce of 1 mod 3 reverts (status 0, no log)
}

type fakeLog struct {
	marker  common.Hash // a private log names its marker as its transaction
	block   uint64
	visible time.Time
}

type fakeReceipt struct {
	rc      privateReceipt
	visible time.Time
}

type fakeNode struct {
	c   *fakeChain
	org string
}

type fakeEth struct{ n *fakeNode }

func (e fakeEth) ChainId() *hexutil.Big { return (*hexutil.Big)(e.n.c.chainID) }

func (e fakeEth) GetBlockByNumber(string, bool) map[string]any {
	return map[string]any{"baseFeePerGas": (*hexutil.Big)(big.NewInt(7))}
}

func (e fakeEth) MaxPriorityFeePerGas() *hexutil.Big { return (*hexutil.Big)(big.NewInt(1)) }

type fakeCharter struct{ n *fakeNode }

func (f fakeCharter) Members() map[string]any {
	var orgs []map[string]any
	for name, id := range f.n.c.ids {
		orgs = append(orgs, map[string]any{"name": name, "privacyKey": base64.StdEncoding.EncodeToString(id)})
	}
	return map[string]any{"organizations": orgs}
}

func (f fakeCharter) Account(a common.Address) account {
	if acct, ok := f.n.c.roles[a]; ok {
		return acct
	}
	return account{Roles: []string{}, EffectiveRoles: []string{"read"}}
}

type fakePriv struct{ n *fakeNode }

func (p fakePriv) FindPrivacyGroup(members []string) []privacyGroup {
	c := p.n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.group == nil {
		return []privacyGroup{}
	}
	return []privacyGroup{{ID: base64.StdEncoding.EncodeToString(c.group), Members: members}}
}

func (p fakePriv) CreatePrivacyGroup(arg map[string]any) (string, error) {
	c := p.n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(arg["addresses"].([]any)) != len(c.ids) {
		return "", errors.New("addresses: want every organization")
	}
	c.group = crypto.Keccak256([]byte("group"))
	return base64.StdEncoding.EncodeToString(c.group), nil
}

func (p fakePriv) GetTransactionCount(a common.Address, group string) (hexutil.Uint64, error) {
	c := p.n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if group != base64.StdEncoding.EncodeToString(c.group) {
		return 0, fmt.Errorf("privacy group %s not found", group)
	}
	return hexutil.Uint64(c.nonces[a]), nil
}

func (p fakePriv) GetTransactionReceipt(marker common.Hash) (*privateReceipt, error) {
	if marker == (common.Hash{}) {
		return nil, errors.New("invalid marker")
	}
	if marker == notRunMarker {
		return nil, notRunError{}
	}
	c := p.n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.receiptCalls++
	r, ok := c.receipts[marker]
	if !ok || time.Now().Before(r.visible) {
		return nil, nil
	}
	return &r.rc, nil
}

func (p fakePriv) NewFilter(group string, crit map[string]any) (string, error) {
	c := p.n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.noFilters {
		return "", errors.New("the method priv_newFilter does not exist/is not available")
	}
	if group != base64.StdEncoding.EncodeToString(c.group) || crit["address"] == nil {
		return "", fmt.Errorf("filter of group %s on %v: want the group's token", group, crit)
	}
	id := fmt.Sprintf("0x%x", len(c.filters)+1)
	c.filters[id] = len(c.logs)
	return id, nil
}

func (p fakePriv) GetFilterChanges(group, id string) ([]map[string]any, error) {
	c := p.n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	pos, ok := c.filters[id]
	switch {
	case !ok:
		return nil, errors.New("filter not found")
	case c.filterFail != "":
		return nil, errors.New(c.filterFail)
	}
	out := []map[string]any{}
	now := time.Now()
	for ; pos < len(c.logs) && !now.Before(c.logs[pos].visible); pos++ {
		out = append(out, map[string]any{"transactionHash": c.logs[pos].marker, "blockNumber": hexutil.Uint64(c.logs[pos].block)})
	}
	c.filters[id] = pos
	return out, nil
}

func (p fakePriv) UninstallFilter(group, id string) bool {
	c := p.n.c
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.filters[id]
	delete(c.filters, id)
	return ok
}

type fakeEEA struct{ n *fakeNode }

// SendRawTransaction checks the transaction as a node does and "applies"
// it at once, its receipt visible after the chain's delay.
func (e fakeEEA) SendRawTransaction(raw hexutil.Bytes) (common.Hash, error) {
	c := e.n.c
	tx, err := privtx.Decode(raw)
	if err != nil {
		return common.Hash{}, err
	}
	from, err := tx.Sender(c.chainID)
	if err != nil {
		return common.Hash{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refuse != "" {
		return common.Hash{}, errors.New(c.refuse)
	}
	switch {
	case !bytes.Equal(tx.PrivateFrom, c.ids[e.n.org]):
		return common.Hash{}, fmt.Errorf("privateFrom is not this node's organization %s", e.n.org)
	case c.roles[from].Org != e.n.org:
		return common.Hash{}, fmt.Errorf("not permitted: sender %s is not an account of organization %s", from, e.n.org)
	case !bytes.Equal(tx.PrivacyGroupID, c.group) || tx.Restriction != privtx.Restricted:
		return common.Hash{}, errors.New("wrong group or restriction")
	}
	c.sent++
	marker := crypto.Keccak256Hash([]byte("marker"), raw)
	rc := privateReceipt{Status: 1, BlockNumber: hexutil.Uint64(1 + c.sent/50)}
	if tx.Nonce != c.nonces[from] {
		rc.Status = 0 // out of order: Besu rejects it
	} else {
		c.nonces[from]++
		if c.revert && from != crypto.PubkeyToAddress(PrivateSenderKey("org0", 0).PublicKey) && tx.Nonce%3 == 1 {
			rc.Status = 0 // reverted: the nonce is used, nothing logged
		}
		if tx.To == nil {
			a := crypto.CreateAddress(from, tx.Nonce)
			rc.ContractAddress = &a
		}
	}
	visible := time.Now().Add(c.delay)
	c.receipts[marker] = fakeReceipt{rc: rc, visible: visible}
	if rc.Status == 1 && tx.To != nil {
		c.logs = append(c.logs, fakeLog{marker: marker, block: uint64(rc.BlockNumber), visible: visible})
	}
	return marker, nil
}

// startFakeGroup serves one fake node per organization; every sender the
// bench derives is registered with write and deploy in its organization.
func startFakeGroup(t *testing.T, orgs []string, senders int) (*fakeChain, []GroupOrg) {
	t.Helper()
	return startFakeGroupBehind(t, orgs, senders, nil)
}

// startFakeGroupBehind is startFakeGroup with each node's handler wrapped
// by wrap (nil: none).
func startFakeGroupBehind(t *testing.T, orgs []string, senders int, wrap func(http.Handler) http.Handler) (*fakeChain, []GroupOrg) {
	t.Helper()
	c := &fakeChain{chainID: big.NewInt(1337), ids: map[string][]byte{}, roles: map[common.Address]account{},
		nonces: map[common.Address]uint64{}, receipts: map[common.Hash]fakeReceipt{}, delay: 3 * time.Millisecond, filters: map[string]int{}}
	var group []GroupOrg
	for k, org := range orgs {
		c.ids[org] = crypto.Keccak256([]byte(org))
		for i := 0; i < sendersOf(senders, len(orgs), k); i++ {
			a := crypto.PubkeyToAddress(PrivateSenderKey(org, i).PublicKey)
			roles := []string{"read", "write", "deploy"}
			c.roles[a] = account{Org: org, Roles: roles, EffectiveRoles: roles}
		}
		srv := gethrpc.NewServer()
		n := &fakeNode{c: c, org: org}
		for name, svc := range map[string]any{"eth": fakeEth{n}, "charter": fakeCharter{n}, "priv": fakePriv{n}, "eea": fakeEEA{n}} {
			if err := srv.RegisterName(name, svc); err != nil {
				t.Fatal(err)
			}
		}
		var h http.Handler = srv
		if wrap != nil {
			h = wrap(srv)
		}
		hs := httptest.NewServer(h)
		t.Cleanup(hs.Close)
		t.Cleanup(srv.Stop)
		group = append(group, GroupOrg{Name: org, Endpoints: []string{hs.URL}})
	}
	return c, group
}

func TestPrivateERC20AgainstFakeNodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  float64
		batch int
	}{{"as fast as possible", 0, 50}, {"paced", 2000, 20}, {"one per request", 0, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			c, group := startFakeGroup(t, []string{"org0", "org1"}, 7)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := Run(ctx, Config{Kind: KindPrivateERC20, Txs: 300, Senders: 7, Rate: tc.rate, Batch: tc.batch,
				Group: group, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != KindPrivateERC20 || res.Sent != 300 || res.Confirmed != 300 || res.Failed != 0 || res.TPS <= 0 || len(res.Errors) != 0 {
				t.Fatalf("result %+v", res)
			}
			l := res.Latency
			// Every receipt became visible 3 ms after its submission.
			if !(l.P50 >= 3 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) || len(res.Points) != 300 {
				t.Fatalf("latency %+v, %d points", l, len(res.Points))
			}
			// 1 deploy + 6 hand-outs + 300 transfers, every one in nonce order.
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.sent != 307 {
				t.Fatalf("the nodes took %d private transactions, want 307", c.sent)
			}
			for _, r := range c.receipts {
				if r.rc.Status != 1 {
					t.Fatalf("a private transaction was out of nonce order: %+v", r.rc)
				}
			}
		})
	}
}

// TestPrivateERC20ConfirmsByLogs: on nodes with private log filters the
// transfers are confirmed by their logs, without a receipt request; a
// transfer that fails (no log) is found by receipt once the watch goes
// quiet; on nodes without filters, and when a filter fails in the middle
// of a run, every transfer is still confirmed, by receipt.
func TestPrivateERC20ConfirmsByLogs(t *testing.T) {
	run := func(t *testing.T, c *fakeChain, group []GroupOrg, txs int) (*Result, int) {
		t.Helper()
		c.mu.Lock()
		before := c.receiptCalls
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := Run(ctx, Config{Kind: KindPrivateERC20, Txs: txs, Senders: 6, Batch: 10, Group: group, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return res, c.receiptCalls - before
	}
	t.Run("by logs", func(t *testing.T) {
		c, group := startFakeGroup(t, []string{"org0", "org1"}, 6)
		res, calls := run(t, c, group, 200)
		if res.Confirmed != 200 || res.Failed != 0 || len(res.Points) != 200 || res.Latency.P50 < 3 {
			t.Fatalf("result %+v", res)
		}
		// The setup's receipts (deployment and hand-outs, on both nodes)
		// are read by receipt; no transfer is.
		c.mu.Lock()
		defer c.mu.Unlock()
		if calls >= 100 {
			t.Fatalf("%d receipt requests for a run confirmed by logs", calls)
		}
		if len(c.filters) != 0 {
			t.Fatalf("%d filters left installed", len(c.filters))
		}
	})
	t.Run("a failed transfer", func(t *testing.T) {
		c, group := startFakeGroup(t, []string{"org0", "org1"}, 6)
		c.revert = true
		start := time.Now()
		res, _ := run(t, c, group, 60)
		if res.Failed == 0 || res.Confirmed+res.Failed != 60 || len(res.Errors) == 0 || !strings.Contains(res.Errors[0], "failed (status 0)") {
			t.Fatalf("result %+v", res)
		}
		if time.Since(start) > 15*time.Second {
			t.Fatal("the failed transfers were waited for until the timeout")
		}
	})
	t.Run("no filters", func(t *testing.T) {
		c, group := startFakeGroup(t, []string{"org0", "org1"}, 6)
		c.noFilters = true
		res, calls := run(t, c, group, 100)
		if res.Confirmed != 100 || res.Failed != 0 || calls < 100 {
			t.Fatalf("result %+v, %d receipt requests", res, calls)
		}
	})
	t.Run("a filter fails", func(t *testing.T) {
		c, group := startFakeGroup(t, []string{"org0", "org1"}, 6)
		c.delay = 50 * time.Millisecond
		go func() {
			time.Sleep(100 * time.Millisecond)
			c.mu.Lock()
			c.filterFail = "filter not found"
			c.mu.Unlock()
		}()
		res, calls := run(t, c, group, 300)
		if res.Confirmed != 300 || res.Failed != 0 || calls == 0 {
			t.Fatalf("result %+v, %d receipt requests", res, calls)
		}
	})
}

func TestPrivateERC20SecondRunContinuesNonces(t *testing.T) {
	_, group := startFakeGroup(t, []string{"a", "b", "c"}, 5)
	for run := 0; run < 2; run++ {
		res, err := Run(context.Background(), Config{Kind: KindPrivateERC20, Txs: 40, Senders: 5, Batch: 10, Group: group, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Confirmed != 40 || res.Failed != 0 {
			t.Fatalf("run %d: %+v", run, res)
		}
	}
}

func TestPrivateERC20RefusedCountsAsFailed(t *testing.T) {
	c, group := startFakeGroup(t, []string{"org0", "org1"}, 2)
	// Setup passes, then the nodes refuse: the failures are counted and
	// the reason reported, without waiting for the timeout.
	cfg := Config{Kind: KindPrivateERC20, Txs: 20, Senders: 2, Batch: 5, Group: group, Timeout: time.Minute}
	r := &privRunner{cfg: cfg}
	for _, g := range group {
		cl, err := gethrpc.Dial(g.Endpoints[0])
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		r.orgs = append(r.orgs, &privOrg{GroupOrg: g, clients: []*gethrpc.Client{cl}})
	}
	if err := r.prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.refuse = "not permitted: account lacks role write"
	c.mu.Unlock()
	start := time.Now()
	res, err := r.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Confirmed != 0 || res.Failed != 20 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "lacks role write") {
		t.Fatalf("result %+v", res)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("refused transactions were waited for")
	}
}

func TestPrivateERC20SendersMustBeOfTheirOrganization(t *testing.T) {
	c, group := startFakeGroup(t, []string{"org0", "org1"}, 4)
	// org1's second sender is an account of org0.
	a := crypto.PubkeyToAddress(PrivateSenderKey("org1", 1).PublicKey)
	c.roles[a] = account{Org: "org0", Roles: []string{"write"}, EffectiveRoles: []string{"write"}}
	_, err := Run(context.Background(), Config{Kind: KindPrivateERC20, Txs: 10, Senders: 4, Batch: 10, Group: group, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "organization org0, not of org1") {
		t.Fatalf("got %v", err)
	}
	// An unregistered sender and no admin: ErrRolesMissing, nothing sent.
	delete(c.roles, a)
	_, err = Run(context.Background(), Config{Kind: KindPrivateERC20, Txs: 10, Senders: 4, Batch: 10, Group: group, Timeout: 5 * time.Second})
	if !errors.Is(err, ErrRolesMissing) {
		t.Fatalf("got %v", err)
	}
	if c.sent != 0 {
		t.Fatalf("%d private transactions sent before the roles were checked", c.sent)
	}
}

func TestPoller(t *testing.T) {
	c, group := startFakeGroup(t, []string{"org0", "org1"}, 2)
	cl, err := gethrpc.Dial(group[1].Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	now := time.Now()
	c.mu.Lock()
	var markers []common.Hash
	for i := 0; i < 2*pollBatch+3; i++ {
		h := crypto.Keccak256Hash([]byte{byte(i), byte(i >> 8)})
		markers = append(markers, h)
		if i%2 == 0 { // every other one has a receipt
			c.receipts[h] = fakeReceipt{rc: privateReceipt{Status: hexutil.Uint64(i % 4 / 2), BlockNumber: 7}, visible: now}
		}
	}
	c.mu.Unlock()
	p := &poller{client: cl}
	for i, h := range markers {
		p.add(i, h)
	}
	got, err := p.round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The first round asks for the oldest pollBatch only.
	if len(got) != pollBatch/2 || p.pending() != len(markers)-pollBatch/2 {
		t.Fatalf("round 1: %d receipts, %d pending", len(got), p.pending())
	}
	for _, g := range got {
		if g.index%2 != 0 || g.index >= pollBatch || g.block != 7 || g.status != uint64(g.index%4/2) {
			t.Fatalf("receipt %+v", g)
		}
	}
	// Those without a receipt stay first in line; the next round reaches
	// past them only as far as pollBatch allows.
	got, err = p.round(context.Background())
	if err != nil || len(got) != pollBatch/4 {
		t.Fatalf("round 2: %d receipts, %v", len(got), err)
	}
	// A node's error is the round's error.
	p.queue = append([]pollItem{{-1, common.Hash{}}}, p.queue...)
	if _, err := p.round(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid marker") {
		t.Fatalf("a node's error: %v", err)
	}
}

// notRunMarker is answered as a node answers a request its batch's time
// budget left unrun.
var notRunMarker = common.Hash{0xee}

type notRunError struct{}

func (notRunError) Error() string {
	return "batch time budget exhausted: the requests of this batch ran for 10s (--rpc.batch-timeout); request not run"
}
func (notRunError) ErrorCode() int { return -32005 }

// A request the node's batch budget left unrun is asked again, not the
// run's end.
func TestPollerAsksAgainWhatANodeDidNotRun(t *testing.T) {
	c, group := startFakeGroup(t, []string{"org0", "org1"}, 2)
	cl, err := gethrpc.Dial(group[1].Endpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ready := crypto.Keccak256Hash([]byte("ready"))
	c.mu.Lock()
	c.receipts[ready] = fakeReceipt{rc: privateReceipt{Status: 1, BlockNumber: 3}, visible: time.Now()}
	c.mu.Unlock()
	p := &poller{client: cl}
	p.add(0, notRunMarker)
	p.add(1, ready)
	got, err := p.round(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].index != 1 || p.pending() != 1 || p.queue[0].marker != notRunMarker {
		t.Fatalf("got %+v, %d pending", got, p.pending())
	}
}

func TestPrivateSigning(t *testing.T) {
	o := &privOrg{identity: crypto.Keccak256([]byte("org0")), keys: []*ecdsa.PrivateKey{PrivateSenderKey("org0", 0)}, nonces: []uint64{41}}
	r := &privRunner{chainID: big.NewInt(5150), group: crypto.Keccak256([]byte("g"))}
	to := common.HexToAddress("0x1234")
	raw, err := r.signPrivate(o, 0, &to, privateTransferGas, []byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := privtx.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	from, err := tx.Sender(big.NewInt(5150))
	if err != nil || from != crypto.PubkeyToAddress(o.keys[0].PublicKey) {
		t.Fatalf("sender %s, %v", from, err)
	}
	if _, err := tx.Sender(big.NewInt(5151)); !errors.Is(err, privtx.ErrChainID) {
		t.Fatalf("another chain: %v", err)
	}
	if tx.Nonce != 41 || o.nonces[0] != 42 || *tx.To != to || tx.Gas != privateTransferGas || tx.GasPrice.Sign() != 0 || tx.Value.Sign() != 0 ||
		!bytes.Equal(tx.PrivateFrom, o.identity) || !bytes.Equal(tx.PrivacyGroupID, r.group) || tx.PrivateFor != nil ||
		tx.Restriction != privtx.Restricted || !bytes.Equal(tx.Data, []byte{1, 2, 3}) {
		t.Fatalf("signed %+v", tx)
	}
	// Derived sender keys are stable and distinct per organization and index.
	if !PrivateSenderKey("org0", 3).Equal(PrivateSenderKey("org0", 3)) || PrivateSenderKey("org0", 3).Equal(PrivateSenderKey("org1", 3)) ||
		PrivateSenderKey("org0", 3).Equal(PrivateSenderKey("org0", 4)) {
		t.Fatal("derived sender keys")
	}
}

func TestPrivateConfigValidate(t *testing.T) {
	key := PrivateSenderKey("x", 0)
	two := []GroupOrg{{Name: "a", Endpoints: []string{"http://127.0.0.1:1"}}, {Name: "b", Endpoints: []string{"http://127.0.0.1:2"}}}
	ok := Config{Kind: KindPrivateERC20, Txs: 10, Senders: 4, Batch: 10, Group: two}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"no group", func(c *Config) { c.Group = nil }, "--net DIR"},
		{"one organization", func(c *Config) { c.Group = c.Group[:1] }, "2 to 16 organizations"},
		{"fewer senders than organizations", func(c *Config) { c.Senders = 1 }, "at least one per organization"},
		{"no endpoint", func(c *Config) { c.Group = []GroupOrg{two[0], {Name: "b"}} }, "no node endpoint"},
		{"bad URL", func(c *Config) { c.Group = []GroupOrg{two[0], {Name: "b", Endpoints: []string{"127.0.0.1:2"}}} }, "not an http"},
		{"twice", func(c *Config) { c.Group = []GroupOrg{two[0], two[0]} }, "twice"},
		{"nameless", func(c *Config) { c.Group = []GroupOrg{two[0], {Endpoints: []string{"http://x"}}} }, "its name, its admin key"},
		{"too few keys", func(c *Config) {
			c.Group = []GroupOrg{two[0], {Name: "b", Endpoints: []string{"http://x"}, Keys: []*ecdsa.PrivateKey{key}}}
		}, "1 sender keys for 2 senders"},
		{"bad group id", func(c *Config) { c.PrivacyGroup = "abc" }, "--privacy-group"},
		{"bad kind", func(c *Config) { c.Kind = "private" }, "want transfer, erc20, mixed or private-erc20"},
		{"bad batch", func(c *Config) { c.Batch = 0 }, "--batch"},
	} {
		c := ok
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	if n := []int{sendersOf(7, 2, 0), sendersOf(7, 2, 1), sendersOf(5, 3, 2)}; n[0] != 4 || n[1] != 3 || n[2] != 1 {
		t.Fatalf("sendersOf: %v", n)
	}
}
