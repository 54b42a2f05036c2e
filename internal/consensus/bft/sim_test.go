package bft

// The simulation harness: many cores on one seeded simnet.Network, each
// with a fake deterministic host (real block headers, fake transactions,
// no EVM), crash and restart from saved state, Byzantine behaviours and
// Twins. Everything a run does follows from its seed.

import (
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/rand"
	"sort"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"

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

var genesis = types.NewBlock(&types.Header{Number: new(big.Int), Difficulty: new(big.Int), GasLimit: 30_000_000, Time: 0}, nil, nil, trie.NewStackTrie(nil))

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
)

func (b byzKind) String() string {
	return [...]string{"honest", "silent", "equivocate", "invalid-blocks", "replay", "resign"}[b]
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
	commitWait int
	// A validator-set change decided by block decideAt, in force from
	// from on: validators become newSet (indexes into simKeys).
	setChange *setChange
	slowHost  bool // build and verify answers come back after a few ticks
	lazyDrain bool // handle Ready once per tick, not after every message
	crashes   bool // crash and restart nodes, also between Ready steps
}

type setChange struct {
	decideAt, from uint64
	newSet         []int
}

type world struct {
	cfg     simConfig
	seed    int64
	net     *simnet.Network
	rng     *rand.Rand
	chk     *simnet.Checker
	nodes   []*simNode
	byNet   map[consensus.NodeID]*simNode
	byID    map[consensus.NodeID][]*simNode
	vals0   []consensus.NodeID
	vals1   []consensus.NodeID // after setChange
	tick    uint64
	sigs    map[string]consensus.NodeID
	txSeq   uint64
	txs     map[common.Hash]*txState
	history [][]byte
	errs    []error
	outKey  *ecdsa.PrivateKey
	calm    bool // no more crashes: the liveness phase
	// minTarget is the least height heal waits for.
	minTarget uint64
}

type txState struct {
	at   *simNode
	lost bool // the node crashed before including it: the client got no receipt
	done bool
}

type simNode struct {
	w      *world
	netID  consensus.NodeID
	id     consensus.NodeID
	key    *ecdsa.PrivateKey // nil for observers
	byz    byzKind
	core   *Core
	host   *fakeHost
	saved  []byte // what Storage would hold: survives crashes
	up     bool
	later  []deferred
	copyNo int
	votes  int // prevotes and precommits sent, across restarts
}

type deferred struct {
	due uint64
	fn  func()
}

func (n *simNode) String() string {
	return fmt.Sprintf("node %d (%s, copy %d)", binary.BigEndian.Uint16(n.netID[18:]), n.byz, n.copyNo)
}

func (n *simNode) honest() bool { return n.byz == honest && n.copyNo == 0 && !n.w.isTwin(n) }

func (w *world) isTwin(n *simNode) bool { return len(w.byID[n.id]) > 1 }

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

func netAddr(i int) consensus.NodeID {
	return common.BytesToAddress([]byte{0xee, 0xee, byte(i >> 8), byte(i)})
}

func newWorld(seed int64, cfg simConfig) *world {
	w := &world{cfg: cfg, seed: seed, chk: simnet.NewChecker(), byNet: map[consensus.NodeID]*simNode{},
		byID: map[consensus.NodeID][]*simNode{}, sigs: map[string]consensus.NodeID{}, txs: map[common.Hash]*txState{}}
	for i := 0; i < cfg.validators; i++ {
		w.vals0 = append(w.vals0, keyID(simKeys[i]))
	}
	if sc := cfg.setChange; sc != nil {
		for _, i := range sc.newSet {
			w.vals1 = append(w.vals1, keyID(simKeys[i]))
		}
	}
	// Keys of nodes: validators, then extra keys for observers (and for
	// validators that only join with a set change).
	type spec struct {
		key    *ecdsa.PrivateKey
		byz    byzKind
		copyNo int
		signer bool
	}
	var specs []spec
	for i := 0; i < cfg.validators; i++ {
		b := honest
		if i < len(cfg.byz) {
			b = cfg.byz[i]
		}
		specs = append(specs, spec{key: simKeys[i], byz: b, signer: true})
		if i < cfg.twins {
			specs = append(specs, spec{key: simKeys[i], byz: b, copyNo: 1, signer: true})
		}
	}
	joined := map[int]bool{}
	if sc := cfg.setChange; sc != nil {
		for _, i := range sc.newSet {
			if i >= cfg.validators && !joined[i] {
				joined[i] = true
				specs = append(specs, spec{key: simKeys[i], signer: true})
			}
		}
	}
	for i := 0; i < cfg.observers; i++ {
		specs = append(specs, spec{key: simKeys[len(simKeys)-1-i]})
	}
	var netIDs []consensus.NodeID
	for i, s := range specs {
		n := &simNode{w: w, netID: netAddr(i), id: keyID(s.key), byz: s.byz, copyNo: s.copyNo, up: true}
		if s.signer {
			n.key = s.key
		}
		n.host = newFakeHost(n)
		w.nodes = append(w.nodes, n)
		w.byNet[n.netID] = n
		w.byID[n.id] = append(w.byID[n.id], n)
		netIDs = append(netIDs, n.netID)
	}
	if cfg.outsider {
		w.outKey = simKeys[len(simKeys)-1-cfg.observers]
	}
	w.net = simnet.New(seed, netIDs, cfg.faults)
	w.rng = w.net.Rand()
	for _, n := range w.nodes {
		n.start()
	}
	return w
}

func (w *world) fail(err error) {
	if len(w.errs) < 8 {
		w.errs = append(w.errs, err)
	}
}

// valsAt is the validator set of height h, as every node derives it.
func (w *world) valsAt(h uint64) []consensus.NodeID {
	if sc := w.cfg.setChange; sc != nil && h >= sc.from {
		return w.vals1
	}
	return w.vals0
}

func (w *world) coreConfig(n *simNode) Config {
	head := n.host.head()
	cfg := Config{
		ChainID:               simChainID,
		Self:                  n.id,
		Validators:            w.valsAt(head.Number + 1),
		Recover:               w.recover,
		ProposeTimeoutTicks:   30,
		PrevoteTimeoutTicks:   10,
		PrecommitTimeoutTicks: 10,
		TimeoutDeltaTicks:     10,
		MaxTimeoutTicks:       200,
		CommitWaitTicks:       w.cfg.commitWait,
		RebroadcastTicks:      10,
		SyncRetryTicks:        5,
		MaxSyncBlocks:         8,
		mutation:              w.cfg.mutation,
	}
	if n.key != nil {
		cfg.Signer = NewKeySigner(n.key)
	}
	return cfg
}

// start makes a fresh core from the host's head and the saved state, as a
// node process does at startup.
func (n *simNode) start() {
	w := n.w
	var saved *SavedState
	if n.saved != nil {
		s, err := UnmarshalSavedState(n.saved)
		if err != nil {
			w.fail(fmt.Errorf("%s: saved state: %v", n, err))
			return
		}
		saved = s
	}
	core, err := NewCore(w.coreConfig(n), n.host.chain[len(n.host.chain)-1].Header(), saved)
	if err != nil {
		w.fail(fmt.Errorf("%s: NewCore: %v", n, err))
		return
	}
	n.core = core
	// Changes decided on chain but not in force yet are re-applied, as the
	// node does from its state after a restart.
	if sc := w.cfg.setChange; sc != nil && n.host.head().Number >= sc.decideAt && sc.from > core.Height() {
		if err := core.SetValidators(sc.from, w.vals1); err != nil {
			w.fail(fmt.Errorf("%s: SetValidators after restart: %v", n, err))
		}
	}
	n.drain()
}

func (n *simNode) crash() {
	if !n.up {
		return
	}
	n.up = false
	n.core = nil
	n.later = nil
	n.w.net.Crash(n.netID)
	// The pool is memory. A client whose node crashed before including
	// its transaction got no receipt: nothing is promised for it.
	for _, tx := range n.host.pool {
		if st := n.w.txs[tx.Hash()]; st != nil && st.at == n && !st.done {
			st.lost = true
		}
	}
	n.host.pool = nil
}

func (n *simNode) restart() {
	if n.up {
		return
	}
	n.up = true
	n.w.net.Restart(n.netID)
	n.start()
}

// drain handles Ready batches the way the adapter does.
func (n *simNode) drain() {
	w := n.w
	for i := 0; n.up && n.core != nil && n.core.HasReady(); i++ {
		if i > 1000 {
			panic(fmt.Sprintf("%s: Ready never empties", n))
		}
		rd := n.core.Ready()
		for _, cm := range rd.Commits {
			n.host.commit(cm.Block, cm.Seal)
		}
		if w.cfg.crashes && !w.calm && w.rng.Intn(2000) == 0 {
			n.crash() // after committing, before saving
			return
		}
		if rd.State != nil {
			n.saved = rd.State
		}
		if w.cfg.crashes && !w.calm && w.rng.Intn(2000) == 0 {
			n.crash() // after saving, before sending
			return
		}
		for _, m := range rd.Messages {
			n.out(m)
		}
		if br := rd.Build; br != nil {
			round := n.core.Round()
			b, err := n.host.build(br, round)
			n.answer(func() { n.core.Built(*br, b, err) })
		}
		for _, b := range rd.Verify {
			b := b
			err := n.host.verify(b)
			n.answer(func() { n.core.Verified(b.Hash(), err) })
		}
		n.core.Advance()
		for _, s := range rd.Serve {
			var blocks []consensus.SealedBlock
			for h := s.From; h < s.From+uint64(s.Count); h++ {
				b, seal := n.host.blockByNumber(h)
				if b == nil {
					break
				}
				blocks = append(blocks, consensus.SealedBlock{Block: b, Seal: seal})
			}
			n.core.Served(s, blocks)
		}
	}
}

// answer runs fn now, or a few ticks later with a slow host.
func (n *simNode) answer(fn func()) {
	if n.w.cfg.slowHost && n.w.rng.Intn(3) == 0 {
		n.later = append(n.later, deferred{due: n.w.tick + uint64(1+n.w.rng.Intn(8)), fn: fn})
		return
	}
	fn()
}

func (n *simNode) tick() {
	if !n.up || n.core == nil {
		return
	}
	var keep []deferred
	for _, d := range n.later {
		if d.due <= n.w.tick {
			d.fn()
		} else {
			keep = append(keep, d)
		}
	}
	n.later = keep
	n.core.Tick()
	n.drain()
	if n.byz == byzReplay {
		n.replayOld()
	}
}

func (n *simNode) deliver(from consensus.NodeID, payload []byte) {
	if !n.up || n.core == nil {
		return
	}
	src := n.w.byNet[from]
	id := from
	if src != nil {
		id = src.id
	}
	n.core.Step(id, payload)
	if !n.w.cfg.lazyDrain {
		n.drain()
	}
}

// out sends one core message, applying the node's Byzantine behaviour.
func (n *simNode) out(m consensus.Message) {
	typ := PeekType(m.Payload)
	w := n.w
	if len(w.history) < 512 {
		w.history = append(w.history, m.Payload)
	} else {
		w.history[w.rng.Intn(len(w.history))] = m.Payload
	}
	if typ == MsgPrevote || typ == MsgPrecommit {
		n.votes++
	}
	switch n.byz {
	case byzSilent:
		return
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
						w.net.Send(n.netID, to.netID, m.Payload)
					case 1:
						w.net.Send(n.netID, to.netID, alt)
					case 2:
						w.net.Send(n.netID, to.netID, alt)
						w.net.Send(n.netID, to.netID, m.Payload)
					}
				}
				return
			}
		}
	case byzResign:
		if m.Broadcast && (typ == MsgPrevote || typ == MsgPrecommit) {
			mm, err := decodeMessage(m.Payload)
			if err == nil {
				for k := 0; k < 2; k++ {
					sig := signRandomNonce(w.rng, n.key, mm.digest(simChainID))
					n.broadcast(encodeVote(mm.typ, mm.height, mm.round, mm.hash, sig))
				}
			}
		}
	}
	if m.Broadcast {
		n.broadcast(m.Payload)
	} else {
		n.sendTo(m.To, m.Payload)
	}
}

func (n *simNode) broadcast(p []byte) {
	for _, to := range n.w.nodes {
		if to != n {
			n.w.net.Send(n.netID, to.netID, p)
		}
	}
}

// sendTo sends to every copy of a consensus id (twins share one).
func (n *simNode) sendTo(id consensus.NodeID, p []byte) {
	for _, to := range n.w.byID[id] {
		if to != n {
			n.w.net.Send(n.netID, to.netID, p)
		}
	}
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
		alt := n.host.buildAlt(mm.block)
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

func (n *simNode) replayOld() {
	w := n.w
	if len(w.history) == 0 || w.rng.Intn(3) != 0 {
		return
	}
	p := w.history[w.rng.Intn(len(w.history))]
	to := w.nodes[w.rng.Intn(len(w.nodes))]
	if to != n {
		w.net.Send(n.netID, to.netID, p)
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
		if n.up && n.core != nil {
			h = max(h, n.core.Height())
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
		parent := types.NewBlockWithHeader(&types.Header{Number: new(big.Int).SetUint64(h - 1)})
		var src *simNode
		for _, n := range w.nodes {
			if n.up && n.core != nil && n.core.Height() == h {
				src = n
			}
		}
		if src != nil {
			parent = src.host.chain[len(src.host.chain)-1]
		}
		b := w.nodes[0].host.makeBlock(parent, []byte("forged"), nil)
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
	if n := w.byID[from]; len(n) > 0 {
		to.deliver(n[0].netID, p)
	} else {
		to.deliver(from, p)
	}
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

// ---- the fake host ----

type fakeHost struct {
	n         *simNode
	chain     []*types.Block
	seals     [][]byte
	committed map[common.Hash]uint64
	pool      []*types.Transaction
	mine      map[common.Hash]bool // submitted to this node by a client
}

func newFakeHost(n *simNode) *fakeHost {
	return &fakeHost{n: n, chain: []*types.Block{genesis}, seals: [][]byte{nil},
		committed: map[common.Hash]uint64{}, mine: map[common.Hash]bool{}}
}

func (h *fakeHost) head() Head {
	b := h.chain[len(h.chain)-1]
	return Head{Number: b.NumberU64(), Hash: b.Hash()}
}

func (h *fakeHost) blockByNumber(num uint64) (*types.Block, []byte) {
	if num >= uint64(len(h.chain)) {
		return nil, nil
	}
	return h.chain[num], h.seals[num]
}

var invalidMark = []byte("invalid!")

func (h *fakeHost) makeBlock(parent *types.Block, salt []byte, txs []*types.Transaction) *types.Block {
	header := &types.Header{
		ParentHash: parent.Hash(),
		Number:     new(big.Int).Add(parent.Number(), common.Big1),
		Time:       max(parent.Time(), h.n.w.tick*tickLen/1000),
		Coinbase:   h.n.id,
		GasLimit:   30_000_000,
		Difficulty: new(big.Int),
		Extra:      salt,
	}
	return types.NewBlock(header, &types.Body{Transactions: txs}, nil, trie.NewStackTrie(nil))
}

func (h *fakeHost) build(br *consensus.BuildRequest, round int64) (*types.Block, error) {
	parent := h.chain[len(h.chain)-1]
	if parent.Hash() != br.Parent.Hash() {
		return nil, fmt.Errorf("build on %s, head is %s", br.Parent.Hash(), parent.Hash())
	}
	var txs []*types.Transaction
	for _, tx := range h.pool {
		if _, done := h.committed[tx.Hash()]; !done && len(txs) < maxTxBlock {
			txs = append(txs, tx)
		}
	}
	salt := append([]byte(nil), h.n.netID[:4]...)
	salt = binary.BigEndian.AppendUint64(salt, uint64(round))
	if h.n.byz == byzInvalid {
		salt = append(salt, invalidMark...)
	}
	return h.makeBlock(parent, salt, txs), nil
}

// buildAlt is a second, different block for the same slot.
func (h *fakeHost) buildAlt(b *types.Block) *types.Block {
	parent := h.chain[len(h.chain)-1]
	if parent.Hash() != b.ParentHash() {
		parent = types.NewBlockWithHeader(&types.Header{Number: new(big.Int).Sub(b.Number(), common.Big1)})
	}
	salt := append([]byte("alt"), b.Extra()...)
	return h.makeBlock(parent, salt, nil)
}

func (h *fakeHost) verify(b *types.Block) error {
	parent := h.chain[len(h.chain)-1]
	if b.NumberU64() != parent.NumberU64()+1 || b.ParentHash() != parent.Hash() {
		return errors.New("not on head")
	}
	if len(b.Extra()) >= len(invalidMark) && string(b.Extra()[len(b.Extra())-len(invalidMark):]) == string(invalidMark) {
		return errors.New("invalid block")
	}
	if b.Time() < parent.Time() {
		return errors.New("time goes back")
	}
	seen := map[common.Hash]bool{}
	for _, tx := range b.Transactions() {
		if _, done := h.committed[tx.Hash()]; done || seen[tx.Hash()] {
			return errors.New("transaction included twice")
		}
		seen[tx.Hash()] = true
	}
	return nil
}

func (h *fakeHost) commit(b *types.Block, seal []byte) {
	w := h.n.w
	parent := h.chain[len(h.chain)-1]
	if b.NumberU64() != parent.NumberU64()+1 || b.ParentHash() != parent.Hash() {
		w.fail(fmt.Errorf("%s: commit of block %d that does not extend head %d", h.n, b.NumberU64(), parent.NumberU64()))
		return
	}
	if w.cfg.checkSeals {
		vs, _ := NewValidatorSet(w.valsAt(b.NumberU64()))
		if _, err := verifyCertificate(simChainID, vs, vs.Quorum(), w.recover, b.NumberU64(), b.Hash(), seal); err != nil {
			w.fail(fmt.Errorf("%s: seal of block %d: %v", h.n, b.NumberU64(), err))
		}
	}
	if err := h.verify(b); err != nil && w.cfg.mutation == mutNone && len(w.errs) == 0 {
		// 2f+1 precommits mean f+1 correct validators verified it.
		w.fail(fmt.Errorf("%s: committed block %d fails verification: %v", h.n, b.NumberU64(), err))
	}
	h.chain = append(h.chain, b)
	h.seals = append(h.seals, seal)
	var hashes []common.Hash
	for _, tx := range b.Transactions() {
		hashes = append(hashes, tx.Hash())
		h.committed[tx.Hash()] = b.NumberU64()
		if h.mine[tx.Hash()] {
			w.chk.Acknowledge(tx.Hash()) // the client gets its receipt
			if st := w.txs[tx.Hash()]; st != nil {
				st.done = true
			}
		}
	}
	keep := h.pool[:0]
	for _, tx := range h.pool {
		if _, done := h.committed[tx.Hash()]; !done {
			keep = append(keep, tx)
		}
	}
	h.pool = keep
	w.chk.Included(h.n.netID, b.NumberU64(), hashes)
	if err := w.chk.Finalized(h.n.netID, b.NumberU64(), b.Hash()); err != nil {
		w.fail(err)
	}
	if sc := w.cfg.setChange; sc != nil && b.NumberU64() == sc.decideAt && h.n.core != nil {
		if err := h.n.core.SetValidators(sc.from, w.vals1); err != nil {
			w.fail(fmt.Errorf("%s: SetValidators: %v", h.n, err))
		}
	}
}

// submit gives a new transaction to one node, as a client would; the pool
// gossips it to every node that is up (so several proposers may include
// it: exactly-once is the host's and consensus's job).
func (w *world) submit() {
	var cands []*simNode
	for _, n := range w.nodes {
		if n.up && n.honest() && n.key != nil {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return
	}
	n := cands[w.rng.Intn(len(cands))]
	w.txSeq++
	to := common.Address{0x42}
	tx := types.NewTx(&types.LegacyTx{Nonce: w.txSeq, Gas: 21000, GasPrice: new(big.Int), To: &to, Value: big.NewInt(w.seed)})
	for _, m := range w.nodes {
		if m.up && m.key != nil {
			m.host.pool = append(m.host.pool, tx)
		}
	}
	n.host.mine[tx.Hash()] = true
	w.txs[tx.Hash()] = &txState{at: n}
}

// ---- running ----

// step runs one tick: deliveries due, then every node's Tick.
func (w *world) step() {
	w.tick++
	t := w.tick * tickLen
	for {
		d, ok := w.net.NextUntil(t)
		if !ok {
			break
		}
		if n := w.byNet[d.To]; n != nil {
			n.deliver(d.From, d.Payload)
		}
	}
	w.net.AdvanceTo(t)
	w.outsiderJunk()
	for _, n := range w.nodes {
		n.tick()
	}
}

func (w *world) err() error {
	if len(w.errs) > 0 {
		return w.errs[0]
	}
	return w.chk.Err()
}

// honestFollowers are the nodes whose progress liveness is about: honest
// validators (of the final set) and observers, not twins.
func (w *world) honestFollowers() []*simNode {
	var out []*simNode
	for _, n := range w.nodes {
		if n.honest() {
			out = append(out, n)
		}
	}
	return out
}

func (w *world) minHeight(ns []*simNode) uint64 {
	var ids []consensus.NodeID
	for _, n := range ns {
		ids = append(ids, n.netID)
	}
	return w.chk.MinHeight(ids)
}

func (w *world) maxHeight() uint64 {
	var h uint64
	for _, n := range w.nodes {
		h = max(h, w.chk.Height(n.netID))
	}
	return h
}

// chaos runs ticks with random partitions, heals, crashes and restarts
// (crashing at most maxDown nodes at once) and a transaction workload.
func (w *world) chaos(ticks uint64, maxDown int) {
	end := w.tick + ticks
	for w.tick < end {
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
				if !n.up {
					down++
				}
			}
			if down < maxDown {
				w.nodes[w.rng.Intn(len(w.nodes))].crash()
			}
		case r < 8 && w.cfg.crashes:
			w.nodes[w.rng.Intn(len(w.nodes))].restart()
		}
		w.step()
		if w.err() != nil {
			return
		}
	}
}

func (w *world) randomPartition(groups int) {
	g := make([][]consensus.NodeID, groups)
	for _, n := range w.nodes {
		i := w.rng.Intn(groups)
		g[i] = append(g[i], n.netID)
	}
	w.net.Partition(g...)
}

// recover heals everything and checks liveness: every honest node reaches
// a height above the highest height any node had, and every transaction a
// client gave to a node that did not crash is included.
func (w *world) heal(quiet simnet.Faults, limit uint64) error {
	w.calm = true
	w.net.Heal()
	w.net.SetFaults(quiet)
	for _, n := range w.nodes {
		n.restart()
	}
	target := max(w.maxHeight()+3, w.minTarget)
	followers := w.honestFollowers()
	end := w.tick + limit
	for w.tick < end {
		w.step()
		if err := w.err(); err != nil {
			return err
		}
		if w.minHeight(followers) >= target && w.pendingTxs() == 0 {
			return nil
		}
	}
	var lag []string
	for _, n := range followers {
		if n.core == nil {
			lag = append(lag, fmt.Sprintf("%s down", n))
			continue
		}
		lag = append(lag, fmt.Sprintf("\n%s %s", n, n.core.describe()))
	}
	sort.Strings(lag)
	return fmt.Errorf("liveness: after healing for %d ticks, want height %d on all honest nodes, %d transactions pending: %v",
		limit, target, w.pendingTxs(), lag)
}

func (w *world) pendingTxs() int {
	p := 0
	for _, st := range w.txs {
		if !st.done && !st.lost {
			p++
		}
	}
	return p
}

func (w *world) finalCheck() error {
	if err := w.err(); err != nil {
		return err
	}
	return w.chk.CheckExactlyOnce()
}
