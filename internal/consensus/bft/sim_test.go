package bft

// The bft simulation runs on simnet.Sim, the harness of every engine: its
// fake chain, its disks that lose power, its crash points, its checkers.
// This file adds what is bft's own: Byzantine validators (equivocation,
// silence, invalid blocks, replays, re-signed votes), Twins (two copies
// of one validator), an outsider's signed junk, a validator-set change,
// and the seals checked at every commit. Everything a run does follows
// from its seed.

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"math/rand"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

const (
	simChainID = 4242
	tickLen    = 10 // virtual milliseconds per tick
	maxTxBlock = 8
)

// Fixed keys, shared read-only by all seeds: validator i has simKeys[i].
var simKeys = func() []*ecdsa.PrivateKey {
	keys := make([]*ecdsa.PrivateKey, 24)
	for i := range keys {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte(fmt.Sprintf("charter bft simulation key %d", i))))
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
}()

func keyID(k *ecdsa.PrivateKey) consensus.NodeID { return crypto.PubkeyToAddress(k.PublicKey) }

var genesis = simnet.Genesis

// byzKind is what a Byzantine validator does on top of (or instead of)
// running the honest core.
type byzKind uint8

const (
	honest     byzKind = iota
	byzSilent          // sends nothing
	byzEquivoc         // two proposals, two votes per slot, to different halves
	byzInvalid         // proposes blocks the host rejects
	byzReplay          // re-sends old messages of anyone, at random
	byzResign          // re-sends its votes with fresh signatures (same vote, other bytes)
	numByzKinds
	// byzPhantom proposes compact blocks of transactions nobody has and
	// answers no request for them (not drawn at random: its own scenario).
	byzPhantom = numByzKinds
)

func (b byzKind) String() string {
	return [...]string{"honest", "silent", "equivocate", "invalid-blocks", "replay", "resign", "phantom"}[b]
}

// simConfig describes one simulated network.
type simConfig struct {
	validators int       // distinct validator keys
	twins      int       // validators 0..twins-1 run as two copies
	observers  int       // non-validator nodes following the chain
	outsider   bool      // a non-validator key sending signed junk
	byz        []byzKind // per validator index (missing = honest)
	faults     simnet.Faults
	mutation   mutation
	checkSeals bool // verify every committed seal with VerifyCertificate
	// Hooks of the scaling benchmark (scale_test.go); nil: none.
	tune       func(n *simNode, cfg *Config)         // adjusts a core's config
	sent       func(n *simNode, m consensus.Message) // sees every message a core sends
	inbound    func(n *simNode, payload []byte)      // sees every message delivered
	commit     func(n *simNode, b *types.Block)      // sees every commit
	commitWait int
	// A validator-set change decided by block decideAt, in force from
	// from on: validators become newSet (indexes into simKeys).
	setChange *setChange
	slowHost  bool // build and verify answers come back after a few ticks
	lazyDrain bool // handle Ready once per tick, not after every message
	crashes   bool // crash and restart nodes, also between Ready steps
	emptyWait int  // Config.EmptyBlockTicks
	// A parameter change decided by block decideAt, in force from from
	// on, as governance hands it to every node.
	params *paramChange
	// maxTxs bounds a block (default maxTxBlock); workTicks is the
	// virtual time of building and verifying (simnet.Config.WorkTicks);
	// pace caps proposals by it (simnet.Config.Pace).
	maxTxs    int
	workTicks func(kind consensus.WorkKind, txs int) uint64
	pace      bool
	// compact: validators send compact proposals; partialSubmit: a
	// transaction reaches each validator only with this probability (at
	// least one), so receivers miss some and fetch them.
	compact       bool
	partialSubmit float64
}

type paramChange struct {
	decideAt, from uint64
	values         map[string]uint64
}

type setChange struct {
	decideAt, from uint64
	newSet         []int
}

// simNode is a node of the world: the harness's node and what bft adds.
type simNode struct {
	*simnet.Node
	w      *world
	id     consensus.NodeID
	key    *ecdsa.PrivateKey // nil for observers
	byz    byzKind
	copyNo int
	votes  int // prevotes and precommits sent, across restarts
}

// core is the node's bft core, nil while it is down.
func (n *simNode) core() *Core {
	if n.Node.Core == nil {
		return nil
	}
	return n.Node.Core.(*Core)
}

func (n *simNode) String() string {
	return fmt.Sprintf("node %d (%s, copy %d)", n.Index, n.byz, n.copyNo)
}

func (n *simNode) honest() bool { return n.byz == honest && n.copyNo == 0 && !n.w.isTwin(n) }

type world struct {
	cfg     simConfig
	seed    int64
	s       *simnet.Sim
	net     *simnet.Network
	rng     *rand.Rand
	nodes   []*simNode
	byNode  map[*simnet.Node]*simNode
	byID    map[consensus.NodeID][]*simNode
	vals0   []consensus.NodeID
	vals1   []consensus.NodeID // after setChange
	sigs    map[string]consensus.NodeID
	txSeq   uint64
	history [][]byte
	outKey  *ecdsa.PrivateKey
	calm    bool // no more crashes: the liveness phase
	// minTarget is the least height heal waits for.
	minTarget uint64
	// commitTicks are the ticks at which each node committed its blocks.
	commitTicks map[*simnet.Node][]uint64
}

func (w *world) isTwin(n *simNode) bool { return len(w.byID[n.id]) > 1 }

// tick is the harness's tick.
func (w *world) tick() uint64 { return w.s.Ticks }

// recover is a per-run memo of RecoverSigner: one simulated signature is
// checked by every node, so this saves most of the elliptic-curve work.
func (w *world) recover(digest common.Hash, sig []byte) (consensus.NodeID, error) {
	k := string(digest[:]) + string(sig)
	if id, ok := w.sigs[k]; ok {
		if id == (consensus.NodeID{}) {
			return id, ErrBadSignature
		}
		return id, nil
	}
	id, err := RecoverSigner(digest, sig)
	if len(w.sigs) > 1<<17 {
		w.sigs = make(map[string]consensus.NodeID)
	}
	w.sigs[k] = id
	return id, err
}

func newWorld(seed int64, cfg simConfig) *world {
	w := &world{cfg: cfg, seed: seed, byNode: map[*simnet.Node]*simNode{},
		byID: map[consensus.NodeID][]*simNode{}, sigs: map[string]consensus.NodeID{}, commitTicks: map[*simnet.Node][]uint64{}}
	for i := 0; i < cfg.validators; i++ {
		w.vals0 = append(w.vals0, keyID(simKeys[i]))
	}
	if sc := cfg.setChange; sc != nil {
		for _, i := range sc.newSet {
			w.vals1 = append(w.vals1, keyID(simKeys[i]))
		}
	}
	// Validators (twins twice), validators that only join with a set
	// change, then observers.
	var nodes []*simNode
	for i := 0; i < cfg.validators; i++ {
		b := honest
		if i < len(cfg.byz) {
			b = cfg.byz[i]
		}
		nodes = append(nodes, &simNode{key: simKeys[i], byz: b})
		if i < cfg.twins {
			nodes = append(nodes, &simNode{key: simKeys[i], byz: b, copyNo: 1})
		}
	}
	joined := map[int]bool{}
	if sc := cfg.setChange; sc != nil {
		for _, i := range sc.newSet {
			if i >= cfg.validators && !joined[i] {
				joined[i] = true
				nodes = append(nodes, &simNode{key: simKeys[i]})
			}
		}
	}
	for i := 0; i < cfg.observers; i++ {
		nodes = append(nodes, &simNode{id: keyID(simKeys[len(simKeys)-1-i])})
	}
	var ids []consensus.NodeID
	for _, n := range nodes {
		n.w = w
		if n.key != nil {
			n.id = keyID(n.key)
		}
		ids = append(ids, n.id)
		w.byID[n.id] = append(w.byID[n.id], n)
	}
	w.nodes = nodes
	if cfg.outsider {
		w.outKey = simKeys[len(simKeys)-1-cfg.observers]
	}
	var inbound func(*simnet.Node, consensus.NodeID, []byte) bool
	if cfg.inbound != nil {
		inbound = func(node *simnet.Node, _ consensus.NodeID, p []byte) bool {
			cfg.inbound(w.byNode[node], p)
			return false
		}
	}
	crashRate := 0.0
	if cfg.crashes {
		crashRate = 1.0 / 1000
	}
	maxTxs := maxTxBlock
	if cfg.maxTxs > 0 {
		maxTxs = cfg.maxTxs
	}
	var work func(*simnet.Node, consensus.WorkKind, int) uint64
	if cfg.workTicks != nil {
		work = func(_ *simnet.Node, kind consensus.WorkKind, txs int) uint64 { return cfg.workTicks(kind, txs) }
	}
	s, err := simnet.NewSim(simnet.Config{
		Seed:      seed,
		Faults:    cfg.faults,
		IDs:       ids,
		TickMs:    tickLen,
		MaxTxs:    maxTxs,
		WorkTicks: work,
		Pace:      cfg.pace,
		StateFile: "/data/" + StateFileName,
		CrashRate: crashRate,
		SlowHost:  cfg.slowHost,
		LazyDrain: cfg.lazyDrain,
		Open:      w.open,
		OnCommit:  w.onCommit,
		Outbound:  w.out,
		Inbound:   inbound,
		EachTick:  w.eachTick,
	})
	if err != nil {
		panic(err) // a node that cannot start at genesis: a broken test
	}
	w.s, w.net, w.rng = s, s.Net, s.Rand
	return w
}

// valsAt is the validator set of height h, as every node derives it.
func (w *world) valsAt(h uint64) []consensus.NodeID {
	if sc := w.cfg.setChange; sc != nil && h >= sc.from {
		return w.vals1
	}
	return w.vals0
}

func (w *world) coreConfig(n *simNode, head uint64) Config {
	cfg := Config{
		ChainID:               simChainID,
		Self:                  n.id,
		Validators:            w.valsAt(head + 1),
		Recover:               w.recover,
		ProposeTimeoutTicks:   30,
		PrevoteTimeoutTicks:   10,
		PrecommitTimeoutTicks: 10,
		TimeoutDeltaTicks:     10,
		MaxTimeoutTicks:       200,
		CommitWaitTicks:       w.cfg.commitWait,
		EmptyBlockTicks:       w.cfg.emptyWait,
		TickInterval:          tickLen * time.Millisecond,
		RebroadcastTicks:      10,
		SyncRetryTicks:        5,
		MaxSyncBlocks:         8,
		Compact:               w.cfg.compact,
		mutation:              w.cfg.mutation,
	}
	if n.key != nil {
		cfg.Signer = NewKeySigner(n.key)
	}
	if w.cfg.tune != nil {
		w.cfg.tune(n, &cfg)
	}
	// A change decided before the start comes with the config, as the
	// node hands it from the registry.
	if pc := w.cfg.params; pc != nil && head >= pc.decideAt {
		cfg.ParamChanges = []consensus.ParamChange{{From: pc.from, Values: pc.values}}
	}
	return cfg
}

// open makes a fresh core from the chain's head and the saved state, as a
// node process does at startup (and bft.New's Open).
func (w *world) open(node *simnet.Node, saved []byte) (consensus.Core, error) {
	n := w.nodes[node.Index]
	if n.Node == nil {
		n.Node = node
		w.byNode[node] = n
		node.Chain.MarkInvalid = n.byz == byzInvalid
	}
	var st *SavedState
	if saved != nil {
		var err error
		if st, err = UnmarshalSavedState(saved); err != nil {
			return nil, err
		}
	}
	head := node.Chain.Head()
	core, err := NewCore(w.coreConfig(n, head.Number.Uint64()), head, st)
	if err != nil {
		return nil, err
	}
	// Changes decided on chain but not in force yet are re-applied, as the
	// node does from its state after a restart.
	if sc := w.cfg.setChange; sc != nil && head.Number.Uint64() >= sc.decideAt && sc.from > core.Height() {
		if err := core.SetValidators(sc.from, w.vals1); err != nil {
			return nil, fmt.Errorf("SetValidators after restart: %v", err)
		}
	}
	return core, nil
}

// onCommit checks the seal of every committed block, and hands the
// decided validator change to the core (from inside the commit, as the
// node does).
func (w *world) onCommit(node *simnet.Node, b *types.Block, seal []byte) error {
	if w.cfg.checkSeals {
		vs, _ := NewValidatorSet(w.valsAt(b.NumberU64()))
		if _, err := verifyCertificate(simChainID, vs, vs.Quorum(), w.recover, b.NumberU64(), b.Hash(), seal); err != nil {
			return fmt.Errorf("seal: %v", err)
		}
	}
	if sc := w.cfg.setChange; sc != nil && b.NumberU64() == sc.decideAt {
		if err := node.Core.SetValidators(sc.from, w.vals1); err != nil {
			return fmt.Errorf("SetValidators: %v", err)
		}
	}
	if pc := w.cfg.params; pc != nil && b.NumberU64() == pc.decideAt {
		if err := node.Core.(consensus.TunableCore).SetParams(pc.from, pc.values); err != nil {
			return fmt.Errorf("SetParams: %v", err)
		}
	}
	w.commitTicks[node] = append(w.commitTicks[node], w.s.Ticks)
	if w.cfg.commit != nil {
		w.cfg.commit(w.byNode[node], b)
	}
	return nil
}

// out sends one core message, applying the node's Byzantine behaviour; it
// reports whether it sent it itself.
func (w *world) out(node *simnet.Node, m consensus.Message) bool {
	n := w.byNode[node]
	typ := PeekType(m.Payload)
	if len(w.history) < 512 {
		w.history = append(w.history, m.Payload)
	} else {
		w.history[w.rng.Intn(len(w.history))] = m.Payload
	}
	if typ == MsgPrevote || typ == MsgPrecommit {
		n.votes++
	}
	if w.cfg.sent != nil {
		w.cfg.sent(n, m)
	}
	switch n.byz {
	case byzSilent:
		return true
	case byzPhantom:
		if typ == MsgTxRequest || typ == MsgTxResponse || (!m.Broadcast && typ == MsgProposal) {
			return true // never helps anyone rebuild
		}
		if m.Broadcast && (typ == MsgProposal || typ == MsgCompactProposal) {
			if mm, err := decodeMessage(m.Payload); err == nil {
				// One phantom block per height and round: re-sent copies
				// are the same bytes.
				phantom := []*types.Transaction{simnet.Tx(1<<40 + mm.height<<16 + uint64(mm.round))}
				parent := n.Chain.Head()
				if mm.block != nil {
					parent = n.parentOf(mm.block)
				}
				b := simnet.MakeBlock(parent, n.id, parent.Time+1, phantom, []byte("phantom"))
				sig, _ := crypto.Sign(Digest(simChainID, MsgProposal, mm.height, mm.round, b.Hash(), -1).Bytes(), n.key)
				w.s.Send(node, consensus.Message{Broadcast: true, Payload: encodeCompactProposal(mm.height, mm.round, -1, b, nil, sig)})
			}
			return true
		}
	case byzEquivoc:
		if m.Broadcast && (typ == MsgProposal || typ == MsgPrevote || typ == MsgPrecommit) {
			if alt := n.conflicting(m); alt != nil {
				// Some peers get one version, some the other, some both
				// (only those can see the equivocation).
				for i, to := range w.nodes {
					if to == n {
						continue
					}
					switch i % 3 {
					case 0:
						w.net.Send(n.Addr, to.Addr, m.Payload)
					case 1:
						w.net.Send(n.Addr, to.Addr, alt)
					case 2:
						w.net.Send(n.Addr, to.Addr, alt)
						w.net.Send(n.Addr, to.Addr, m.Payload)
					}
				}
				return true
			}
		}
	case byzResign:
		if m.Broadcast && (typ == MsgPrevote || typ == MsgPrecommit) {
			mm, err := decodeMessage(m.Payload)
			if err == nil {
				for k := 0; k < 2; k++ {
					sig := signRandomNonce(w.rng, n.key, mm.digest(simChainID))
					w.s.Send(node, consensus.Message{Broadcast: true, Payload: encodeVote(mm.typ, mm.height, mm.round, mm.hash, sig)})
				}
			}
		}
	}
	return false
}

// conflicting signs a second message for the slot of m: another block for
// a proposal, another hash (or nil) for a vote.
func (n *simNode) conflicting(m consensus.Message) []byte {
	mm, err := decodeMessage(m.Payload)
	if err != nil {
		return nil
	}
	switch mm.typ {
	case MsgProposal:
		alt := simnet.MakeBlock(n.parentOf(mm.block), n.id, mm.block.Time(), nil, append([]byte("alt"), mm.block.Extra()...))
		sig, _ := crypto.Sign(Digest(simChainID, MsgProposal, mm.height, mm.round, alt.Hash(), -1).Bytes(), n.key)
		return encodeProposal(mm.height, mm.round, -1, alt, nil, sig)
	default:
		hash := common.Hash{}
		if mm.hash == (common.Hash{}) {
			hash = crypto.Keccak256Hash(m.Payload)
		}
		sig, _ := crypto.Sign(Digest(simChainID, mm.typ, mm.height, mm.round, hash, -1).Bytes(), n.key)
		return encodeVote(mm.typ, mm.height, mm.round, hash, sig)
	}
}

// parentOf is the header of b's parent if this node's chain has it at its
// head, else a stand-in of the right number.
func (n *simNode) parentOf(b *types.Block) *types.Header {
	if head := n.Chain.Head(); head.Hash() == b.ParentHash() {
		return head
	}
	return &types.Header{Number: new(big.Int).Sub(b.Number(), common.Big1), Difficulty: new(big.Int)}
}

// eachTick: the outsider's junk and the replaying validators, between the
// deliveries and the nodes' ticks.
func (w *world) eachTick(*simnet.Sim) {
	w.outsiderJunk()
	for _, n := range w.nodes {
		if n.byz == byzReplay && n.Up() {
			n.replayOld()
		}
	}
}

func (n *simNode) replayOld() {
	w := n.w
	if len(w.history) == 0 || w.rng.Intn(3) != 0 {
		return
	}
	p := w.history[w.rng.Intn(len(w.history))]
	to := w.nodes[w.rng.Intn(len(w.nodes))]
	if to != n {
		w.net.Send(n.Addr, to.Addr, p)
	}
}

// outsiderJunk: a key that is not a validator signs well-formed messages
// for the height honest nodes are at.
func (w *world) outsiderJunk() {
	if w.outKey == nil || w.rng.Intn(4) != 0 {
		return
	}
	var h uint64
	for _, n := range w.nodes {
		if c := n.core(); c != nil {
			h = max(h, c.Height())
		}
	}
	round := int64(w.rng.Intn(3))
	hash := crypto.Keccak256Hash([]byte{byte(w.rng.Intn(256))})
	typ := []MsgType{MsgPrevote, MsgPrecommit, MsgStatus, MsgSyncBlock}[w.rng.Intn(4)]
	if typ == MsgStatus {
		hash = common.Hash{}
	}
	var p []byte
	switch typ {
	case MsgStatus:
		sig, _ := crypto.Sign(Digest(simChainID, typ, h, round, hash, -1).Bytes(), w.outKey)
		p = encodeStatus(h, round, sig)
	case MsgSyncBlock:
		// A forged catch-up block: a certificate of the outsider alone,
		// repeated to look like a quorum.
		parent := &types.Header{Number: new(big.Int).SetUint64(max(h, 1) - 1), Difficulty: new(big.Int)}
		for _, n := range w.nodes {
			if c := n.core(); c != nil && c.Height() == h {
				parent = n.Chain.Head()
			}
		}
		b := simnet.MakeBlock(parent, keyID(w.outKey), 0, nil, []byte("forged"))
		sig, _ := crypto.Sign(Digest(simChainID, MsgPrecommit, h, 0, b.Hash(), -1).Bytes(), w.outKey)
		p = EncodeSyncBlock(b, EncodeCertificate(Certificate{Sigs: [][]byte{sig, sig, sig, sig, sig}}))
	default:
		sig, _ := crypto.Sign(Digest(simChainID, typ, h, round, hash, -1).Bytes(), w.outKey)
		p = encodeVote(typ, h, round, hash, sig)
	}
	to := w.nodes[w.rng.Intn(len(w.nodes))]
	// The outsider is not a network node: inject as if from a peer, half
	// the time from itself (dropped before signature work), half the time
	// as if relayed by a validator (dropped on the signer check).
	from := keyID(w.outKey)
	if w.rng.Intn(2) == 0 {
		from = w.vals0[w.rng.Intn(len(w.vals0))]
	}
	w.s.Deliver(to.Node, from, p)
}

// signRandomNonce signs like crypto.Sign but with a random nonce: a
// different, equally valid signature of the same digest (low S).
func signRandomNonce(rng *rand.Rand, key *ecdsa.PrivateKey, digest common.Hash) []byte {
	curve := crypto.S256()
	N := curve.Params().N
	z := new(big.Int).SetBytes(digest[:])
	for {
		k := new(big.Int).Rand(rng, N)
		if k.Sign() == 0 {
			continue
		}
		rx, ry := curve.ScalarBaseMult(k.FillBytes(make([]byte, 32)))
		if rx.Cmp(N) >= 0 {
			continue
		}
		r := new(big.Int).Set(rx)
		s := new(big.Int).Mul(r, key.D)
		s.Add(s, z)
		s.Mul(s, new(big.Int).ModInverse(k, N))
		s.Mod(s, N)
		if r.Sign() == 0 || s.Sign() == 0 {
			continue
		}
		v := byte(ry.Bit(0))
		if s.Cmp(new(big.Int).Rsh(N, 1)) > 0 {
			s.Sub(N, s)
			v ^= 1
		}
		sig := make([]byte, 65)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:64])
		sig[64] = v
		return sig
	}
}

// submit gives a new transaction to every signing node that is up, as a
// client's node would gossip it (so several proposers may include it:
// exactly-once is the host's and consensus's job).
func (w *world) submit() {
	var to []*simnet.Node
	for _, n := range w.nodes {
		if n.Up() && n.key != nil {
			to = append(to, n.Node)
		}
	}
	if len(to) == 0 {
		return
	}
	w.txSeq++
	if p := w.cfg.partialSubmit; p > 0 {
		some := to[:0:0]
		for _, n := range to {
			if w.rng.Float64() < p {
				some = append(some, n)
			}
		}
		if len(some) == 0 {
			some = to[w.rng.Intn(len(to)):][:1]
		}
		to = some
	}
	w.s.Submit(simnet.Tx(w.txSeq), to...)
}

// step runs one tick.
func (w *world) step() { w.s.Step() }

func (w *world) err() error { return w.s.Err() }

// honestFollowers are the nodes whose progress liveness is about: honest
// validators (of the final set) and observers, not twins.
func (w *world) honestFollowers() []*simnet.Node {
	var out []*simnet.Node
	for _, n := range w.nodes {
		if n.honest() {
			out = append(out, n.Node)
		}
	}
	return out
}

func (w *world) maxHeight() uint64 { return w.s.MaxHeight() }

// chaos runs ticks with random partitions, heals, crashes and restarts
// (crashing at most maxDown nodes at once) and a transaction workload.
func (w *world) chaos(ticks uint64, maxDown int) {
	end := w.tick() + ticks
	for w.tick() < end {
		if w.rng.Intn(15) == 0 {
			w.submit()
		}
		switch r := w.rng.Intn(100); {
		case r < 2:
			w.randomPartition(2 + w.rng.Intn(2))
		case r < 5:
			w.net.Heal()
		case r < 6 && w.cfg.crashes:
			down := 0
			for _, n := range w.nodes {
				if !n.Up() {
					down++
				}
			}
			if down < maxDown {
				w.s.Crash(w.nodes[w.rng.Intn(len(w.nodes))].Node)
			}
		case r < 8 && w.cfg.crashes:
			if err := w.s.Restart(w.nodes[w.rng.Intn(len(w.nodes))].Node); err != nil {
				w.s.Fail(err)
			}
		}
		w.step()
		if w.err() != nil {
			return
		}
	}
}

func (w *world) randomPartition(groups int) {
	g := make([][]*simnet.Node, groups)
	for _, n := range w.nodes {
		i := w.rng.Intn(groups)
		g[i] = append(g[i], n.Node)
	}
	w.s.Partition(g...)
}

// heal ends the chaos and checks liveness: every honest node reaches a
// height above the highest height any node had, and every transaction a
// client gave is included (clients resubmit).
func (w *world) heal(quiet simnet.Faults, limit uint64) error {
	w.calm = true
	if err := w.s.Heal(quiet); err != nil {
		return err
	}
	target := max(w.maxHeight()+3, w.minTarget)
	followers := w.honestFollowers()
	if w.s.RunUntil(limit, 200, func() bool {
		return w.s.MinHeight(followers) >= target && len(w.s.Pending()) == 0
	}) {
		return nil
	}
	if err := w.err(); err != nil {
		return err
	}
	var lag []string
	for _, node := range followers {
		n := w.byNode[node]
		if n.core() == nil {
			lag = append(lag, fmt.Sprintf("%s down", n))
			continue
		}
		lag = append(lag, fmt.Sprintf("\n%s %s", n, n.core().describe()))
	}
	sort.Strings(lag)
	return fmt.Errorf("liveness: after healing for %d ticks, want height %d on all honest nodes, %d transactions pending: %v",
		limit, target, len(w.s.Pending()), lag)
}

func (w *world) finalCheck() error { return w.s.FinalCheck() }
