package rpc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/event"

	"github.com/charter-ledger/charter/internal/privacy/privstate"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// The privacy identities of three organizations: A and B are members of
// the test groups, C of none.
var (
	orgA = bytes.Repeat([]byte{0xa1}, 32)
	orgB = bytes.Repeat([]byte{0xb2}, 32)
	orgC = bytes.Repeat([]byte{0xc3}, 32)
)

// markerAddr stands for the registry in the fake.
var markerAddr = common.HexToAddress("0x0000000000000000000000000000000000000400")

// privRegistry is what the public chain knows of privacy, shared by the
// fake nodes: the groups and the markers (group and payload of each).
type privRegistry struct {
	mu      sync.Mutex
	groups  map[common.Hash]PrivacyGroup
	markers map[common.Hash]*fakeMarker
	nonce   uint64 // of the node account that signs markers
}

type fakeMarker struct {
	hash   common.Hash
	group  common.Hash
	tx     *privtx.Tx
	inner  []byte // what the private state executes (privtx encoding)
	from   common.Address
	block  *types.Block
	index  int
	result *privstate.BlockResult // nil until applied
}

// fakePrivacy is one node's Privacy over a real privstate.Store in a
// temporary folder: SendRaw puts the marker in a block of the fake chain
// and applies the private transaction at once (or when the test says,
// with deferApply).
type fakePrivacy struct {
	t     testing.TB
	f     *fakeBackend
	reg   *privRegistry
	self  []byte
	store *privstate.Store
	keys  map[common.Address]*ecdsa.PrivateKey
	feed  event.Feed

	mu         sync.Mutex
	deferApply bool
	sendErr    error
}

func newFakePrivacy(t testing.TB, f *fakeBackend, reg *privRegistry, self []byte) *fakePrivacy {
	t.Helper()
	store, err := privstate.Open(t.TempDir(), f.spec, f, privstate.Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	p := &fakePrivacy{t: t, f: f, reg: reg, self: self, store: store, keys: map[common.Address]*ecdsa.PrivateKey{}}
	for _, a := range testAccounts(t) {
		p.keys[a.Address] = a.Key
	}
	return p
}

func newPrivRegistry() *privRegistry {
	return &privRegistry{groups: map[common.Hash]PrivacyGroup{}, markers: map[common.Hash]*fakeMarker{}}
}

// privBackend is a Backend with a Privacy.
type privBackend struct {
	*fakeBackend
	p Privacy
}

func (b *privBackend) Privacy() Privacy { return b.p }

var (
	_ PrivacyBackend = (*privBackend)(nil)
	_ Privacy        = (*fakePrivacy)(nil)
)

func member(g PrivacyGroup, key []byte) bool {
	return slices.ContainsFunc(g.Members, func(m []byte) bool { return bytes.Equal(m, key) })
}

func (p *fakePrivacy) MarkerAddress() common.Address { return markerAddr }

func (p *fakePrivacy) SendRaw(ctx context.Context, raw []byte) (common.Hash, error) {
	p.mu.Lock()
	sendErr, deferApply := p.sendErr, p.deferApply
	p.mu.Unlock()
	if sendErr != nil {
		return common.Hash{}, sendErr
	}
	tx, err := privtx.Decode(raw)
	if err != nil {
		return common.Hash{}, err
	}
	if !bytes.Equal(tx.PrivateFrom, p.self) {
		return common.Hash{}, errors.New("privateFrom is not this node's organization")
	}
	from, err := tx.Sender(p.f.spec.Config.ChainID)
	if err != nil {
		return common.Hash{}, err
	}
	_, ok := p.keys[from]
	if !ok {
		return common.Hash{}, fmt.Errorf("no key for %s", from)
	}
	group := tx.GroupID()
	r := p.reg
	r.mu.Lock()
	g, ok := r.groups[group]
	if !ok && tx.PrivateFor != nil {
		members := [][]byte{tx.PrivateFrom}
		for _, k := range tx.PrivateFor {
			if !slices.ContainsFunc(members, func(m []byte) bool { return bytes.Equal(m, k) }) {
				members = append(members, k)
			}
		}
		g = PrivacyGroup{ID: group, Legacy: true, Members: members, Name: "legacy"}
		r.groups[group] = g
		ok = true
	}
	if !ok || !member(g, p.self) {
		r.mu.Unlock()
		return common.Hash{}, ErrNoPrivacyGroup
	}
	node := testAccounts(p.t)[0]
	data := append(append(append([]byte{}, privateMarkerSelector...), group[:]...), crypto.Keccak256(raw)...)
	mtx := types.MustSignNewTx(node.Key, types.LatestSignerForChainID(p.f.spec.Config.ChainID),
		&types.LegacyTx{Nonce: r.nonce, To: &markerAddr, Gas: 100_000, GasPrice: big.NewInt(1), Data: data})
	r.nonce++
	r.mu.Unlock()
	inner := raw
	blk := p.f.addBlock([]*types.Transaction{mtx}, nil)
	m := &fakeMarker{hash: mtx.Hash(), group: group, tx: tx, inner: inner, from: from, block: blk}
	r.mu.Lock()
	r.markers[m.hash] = m
	r.mu.Unlock()
	if !deferApply {
		if err := p.apply(m); err != nil {
			return common.Hash{}, err
		}
	}
	return m.hash, nil
}

// apply runs a marker's private transaction on the store and publishes
// its logs.
func (p *fakePrivacy) apply(m *fakeMarker) error {
	res, err := p.store.ApplyBlock(m.group, m.block.Header(), []privstate.Tx{{Raw: m.inner, Marker: m.hash}})
	if err != nil {
		return err
	}
	p.reg.mu.Lock()
	m.result = res
	p.reg.mu.Unlock()
	var logs []*types.Log
	for _, r := range res.Receipts {
		logs = append(logs, p.besuLogs(r.Logs)...)
	}
	p.feed.Send(PrivateLogsEvent{Group: m.group, Number: m.block.NumberU64(), Logs: logs})
	return nil
}

// besuLogs name the marker as the transaction of each log (the Logs
// contract).
func (p *fakePrivacy) besuLogs(logs []*types.Log) []*types.Log {
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	out := make([]*types.Log, len(logs))
	for i, l := range logs {
		c := *l
		for _, m := range p.reg.markers {
			if crypto.Keccak256Hash(m.inner) == l.TxHash {
				c.TxHash, c.TxIndex = m.hash, uint(m.index)
			}
		}
		out[i] = &c
	}
	return out
}

func (p *fakePrivacy) Distribute(ctx context.Context, raw []byte) (common.Hash, error) {
	return crypto.Keccak256Hash(raw), nil
}

func (p *fakePrivacy) CreateGroup(ctx context.Context, members [][]byte, name, description string) (common.Hash, error) {
	g := PrivacyGroup{Name: name, Description: description, Members: members}
	if !member(g, p.self) {
		return common.Hash{}, errors.New("the members do not include this node's organization")
	}
	g.ID = crypto.Keccak256Hash([]byte(name), bytes.Join(members, nil))
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	p.reg.groups[g.ID] = g
	return g.ID, nil
}

func (p *fakePrivacy) DeleteGroup(ctx context.Context, id common.Hash) error {
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	if g, ok := p.reg.groups[id]; !ok || !member(g, p.self) {
		return ErrNoPrivacyGroup
	}
	delete(p.reg.groups, id)
	return nil
}

func (p *fakePrivacy) FindGroups(members [][]byte) ([]PrivacyGroup, error) {
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	var out []PrivacyGroup
	for _, g := range p.reg.groups {
		if !member(g, p.self) || len(g.Members) != len(members) {
			continue
		}
		all := true
		for _, m := range members {
			all = all && member(g, m)
		}
		if all {
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b PrivacyGroup) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out, nil
}

func (p *fakePrivacy) Group(id common.Hash) (PrivacyGroup, bool) {
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	g, ok := p.reg.groups[id]
	if !ok || !member(g, p.self) {
		return PrivacyGroup{}, false
	}
	return g, true
}

// storeErr maps the store's errors: nothing of a group is nothing.
func storeErr(err error) error {
	if errors.Is(err, privstate.ErrUnknownGroup) {
		return ErrNoPrivacyGroup
	}
	return err
}

func (p *fakePrivacy) Nonce(group common.Hash, addr common.Address) (uint64, error) {
	n, err := p.store.Nonce(group, addr)
	return n, storeErr(err)
}

func (p *fakePrivacy) marker(hash common.Hash) *fakeMarker {
	p.reg.mu.Lock()
	defer p.reg.mu.Unlock()
	m := p.reg.markers[hash]
	if m == nil {
		return nil
	}
	if g, ok := p.reg.groups[m.group]; !ok || !member(g, p.self) {
		return nil
	}
	return m
}

func (p *fakePrivacy) Receipt(hash common.Hash) (*PrivateReceipt, error) {
	m := p.marker(hash)
	if m == nil {
		return nil, nil
	}
	r, err := p.store.Receipt(m.group, crypto.Keccak256Hash(m.inner))
	if errors.Is(err, privstate.ErrNotFound) || errors.Is(err, privstate.ErrUnknownGroup) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &PrivateReceipt{Marker: m.hash, Group: m.group, Tx: m.tx, Receipt: r}, nil
}

func (p *fakePrivacy) Transaction(hash common.Hash) (*PrivateTransaction, error) {
	m := p.marker(hash)
	if m == nil {
		return nil, nil
	}
	return &PrivateTransaction{Marker: m.hash, Group: m.group, Tx: m.tx, From: m.from, BlockHash: m.block.Hash(),
		BlockNumber: m.block.NumberU64(), Index: 0}, nil
}

func (p *fakePrivacy) Call(ctx context.Context, group common.Hash, number uint64, msg *core.Message) (*core.ExecutionResult, error) {
	if _, ok := p.Group(group); !ok {
		return nil, ErrNoPrivacyGroup
	}
	res, err := p.store.Call(ctx, group, p.f.HeaderByNumber(number), msg)
	return res, storeErr(err)
}

func (p *fakePrivacy) Code(group common.Hash, number uint64, addr common.Address) ([]byte, error) {
	if _, ok := p.Group(group); !ok {
		return nil, ErrNoPrivacyGroup
	}
	code, err := p.store.Code(group, number, addr)
	return code, storeErr(err)
}

func (p *fakePrivacy) Logs(group common.Hash, q privstate.LogQuery) ([]*types.Log, error) {
	if _, ok := p.Group(group); !ok {
		return nil, ErrNoPrivacyGroup
	}
	logs, err := p.store.Logs(group, q)
	if err != nil {
		return nil, storeErr(err)
	}
	return p.besuLogs(logs), nil
}

func (p *fakePrivacy) StateRoot(group common.Hash, number uint64) (common.Hash, error) {
	if _, ok := p.Group(group); !ok {
		return common.Hash{}, ErrNoPrivacyGroup
	}
	root, err := p.store.PrivateRoot(group, number)
	return root, storeErr(err)
}

func (p *fakePrivacy) Head(group common.Hash) (uint64, error) {
	n, _, err := p.store.Head(group)
	if errors.Is(err, privstate.ErrUnknownGroup) {
		return 0, nil
	}
	return n, err
}

func (p *fakePrivacy) SubscribeLogs(ch chan<- PrivateLogsEvent) event.Subscription {
	return p.feed.Subscribe(ch)
}
