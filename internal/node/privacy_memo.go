package node

import (
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/system"
)

// regMemo remembers the registry reads of one state (the head's, or a
// block's) that private transactions make again and again: organizations'
// privacy keys, groups, senders. Reading them from the state trie each
// time was most of the work of sending and of applying a private
// transaction. Safe for concurrent use; a memo never outlives its state.
type regMemo struct {
	mu      sync.Mutex
	header  *types.Header
	reg     *system.State // read under mu: a StateDB is not safe for concurrent use
	keys    map[string]*privacy.PublicKey
	groups  map[common.Hash]memoGroup
	senders map[common.Address]system.Sender
	known   *keyCache // keys read from earlier states
	nodeOrg map[common.Address]string
}

// keyCache keeps organizations' privacy keys across registry states.
type keyCache struct {
	mu   sync.Mutex
	keys map[string]*privacy.PublicKey
}

func (c *keyCache) get(org string) *privacy.PublicKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[org]
}

func (c *keyCache) put(org string, k *privacy.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || len(c.keys) >= maxMemoEntries {
		c.keys = map[string]*privacy.PublicKey{}
	}
	c.keys[org] = k
}

type memoGroup struct {
	g  system.Group
	ok bool
}

// maxMemoEntries bounds each of a memo's maps; beyond it, a map starts
// over.
const maxMemoEntries = 4096

func newRegMemo(reg *system.State, header *types.Header, known *keyCache) *regMemo {
	return &regMemo{header: header, reg: reg, known: known, keys: map[string]*privacy.PublicKey{},
		groups: map[common.Hash]memoGroup{}, senders: map[common.Address]system.Sender{}}
}

// with runs fn on the registry, alone.
func (m *regMemo) with(fn func(reg *system.State)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn(m.reg)
}

// key is org's privacy public key; nil if it has none.
func (m *regMemo) key(org string) (*privacy.PublicKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[org]; ok {
		return k, nil
	}
	// A key read before stays valid while the registry maps its identity
	// to org (a rotation registers a new identity): two slots to read
	// instead of the key's forty.
	if k := m.known.get(org); k != nil {
		if owner, ok := m.reg.PrivacyKeyOrg(k.Identity()); ok && owner == org {
			m.keys[org] = k
			return k, nil
		}
	}
	raw := m.reg.PrivacyKey(org)
	var k *privacy.PublicKey
	if raw != nil {
		var err error
		if k, err = privacy.ParsePublicKey(raw); err != nil {
			return nil, fmt.Errorf("privacy key of %s in the registry: %w", org, err)
		}
	}
	if len(m.keys) >= maxMemoEntries {
		clear(m.keys)
	}
	m.keys[org] = k
	if k != nil {
		m.known.put(org, k)
	}
	return k, nil
}

// org is the organization of node id ("" if not listed or revoked).
func (m *regMemo) org(id common.Address) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodeOrg == nil {
		m.nodeOrg = map[common.Address]string{}
	}
	if o, ok := m.nodeOrg[id]; ok {
		return o
	}
	o := ""
	if nd, ok := m.reg.Node(id); ok && !nd.Revoked {
		o = nd.Org
	}
	if len(m.nodeOrg) >= maxMemoEntries {
		clear(m.nodeOrg)
	}
	m.nodeOrg[id] = o
	return o
}

func (m *regMemo) group(id common.Hash) (system.Group, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.groups[id]; ok {
		return e.g, e.ok
	}
	g, ok := m.reg.Group(id)
	if len(m.groups) >= maxMemoEntries {
		clear(m.groups)
	}
	m.groups[id] = memoGroup{g, ok}
	return g, ok
}

func (m *regMemo) sender(addr common.Address) system.Sender {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.senders[addr]; ok {
		return s
	}
	s := m.reg.SenderOf(addr)
	if len(m.senders) >= maxMemoEntries {
		clear(m.senders)
	}
	m.senders[addr] = s
	return s
}

// headMemo is the memo of the registry at the head. The ledger's head is
// one header value per block (Chain.System answers that very pointer), so
// that the memo is the head's when its header is the head pointer: no
// header is hashed on a path every private transaction takes three times.
// A head whose pointer changed without its block would only make a new
// memo.
func (p *privacyService) headMemo() (*regMemo, error) {
	head := p.n.ledger.Head()
	p.memoMu.Lock()
	defer p.memoMu.Unlock()
	if p.memo != nil && p.memo.header == head {
		return p.memo, nil
	}
	reg, h, err := p.registry()
	if err != nil {
		return nil, err
	}
	p.memo = newRegMemo(reg, h, &p.keys)
	return p.memo, nil
}
