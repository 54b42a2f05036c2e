package poa

import (
	"crypto/ecdsa"
	"fmt"
	"math/rand"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/simnet"
)

type role int

const (
	validator role = iota
	observer
	byzantine // a non-authority that lies, replays and forges
)

// simParams is one scenario; randomParams draws it from the seed.
type simParams struct {
	validators int // genesis authorities
	spare      int // nodes that start as observers; one joins in a set change
	observers  int
	byzantine  bool
	depth      uint64
	faults     simnet.Faults
	partitions bool
	crashes    bool
	setChange  bool
	churn      float64 // scales the rate of partitions, heals, crashes and restarts
	deadAfter  bool    // one validator stays down for good when the network heals
	chaosTicks uint64
	calmTicks  uint64
	mutant     mutant
}

func (p simParams) String() string {
	return fmt.Sprintf("validators=%d spare=%d observers=%d byzantine=%v depth=%d faults=%+v partitions=%v crashes=%v setChange=%v churn=%v deadAfter=%v chaos=%d calm=%d mutant=%+v",
		p.validators, p.spare, p.observers, p.byzantine, p.depth, p.faults, p.partitions, p.crashes, p.setChange, p.churn, p.deadAfter, p.chaosTicks, p.calmTicks, p.mutant)
}

func randomParams(rng *rand.Rand) simParams {
	p := simParams{
		validators: 3 + rng.Intn(3),
		observers:  rng.Intn(2),
		byzantine:  rng.Intn(2) == 0,
		depth:      uint64(rng.Intn(4)),
		faults: simnet.Faults{
			DropRate: rng.Float64() * 0.2,
			DupRate:  rng.Float64() * 0.1,
			MinDelay: 0,
			MaxDelay: 1 + uint64(rng.Intn(5)),
		},
		partitions: rng.Intn(4) != 0,
		crashes:    rng.Intn(4) != 0,
		setChange:  rng.Intn(4) == 0,
		churn:      []float64{0.5, 1, 3}[rng.Intn(3)],
		deadAfter:  rng.Intn(3) == 0,
		chaosTicks: 250,
		calmTicks:  250,
	}
	if p.setChange {
		p.spare = 1
	}
	return p
}

type simNode struct {
	idx   int
	id    consensus.NodeID
	key   *ecdsa.PrivateKey
	role  role
	up    bool
	core  *Core
	app   *fakeApp
	led   *fakeLedger // survives crashes
	saved []byte      // the state file: survives crashes
	// changes are the validator changes this node's ledger has committed
	// (what a real node reads back from chain state at start).
	changes []ValidatorChange
}

type simulation struct {
	seed  int64
	p     simParams
	net   *simnet.Network
	rng   *rand.Rand
	chk   *simnet.Checker
	nodes []*simNode
	byID  map[consensus.NodeID]*simNode
	ids   []consensus.NodeID
	gen   *types.Block
	sigs  sigMemo
	base  Config

	genesisSet []consensus.NodeID
	govHeight  uint64 // block whose commit changes the set
	govChange  ValidatorChange

	dead   *simNode // the validator that stays down after healing, if any
	nextTx uint64
	seen   [][]byte // messages the Byzantine node overheard
	recent [][]byte // the last blocks it overheard
	log    []string // last events, printed on failure
}

func newSimulation(seed int64, p simParams) *simulation {
	s := &simulation{seed: seed, p: p, chk: simnet.NewChecker(), byID: map[consensus.NodeID]*simNode{}, gen: testGenesis(), sigs: sigMemo{}}
	total := p.validators + p.spare + p.observers
	if p.byzantine {
		total++
	}
	for i := 0; i < total; i++ {
		k := testKey(i)
		n := &simNode{idx: i, id: crypto.PubkeyToAddress(k.PublicKey), key: k, up: true}
		switch {
		case i < p.validators:
			n.role = validator
			s.genesisSet = append(s.genesisSet, n.id)
		case i < p.validators+p.spare+p.observers:
			n.role = observer
		default:
			n.role = byzantine
		}
		n.led = newLedger(s.gen)
		s.nodes = append(s.nodes, n)
		s.byID[n.id] = n
		s.ids = append(s.ids, n.id)
	}
	s.net = simnet.New(seed, s.ids, p.faults)
	s.rng = s.net.Rand()
	maxDelay := p.faults.MaxDelay
	s.base = Config{
		Validators:         s.genesisSet,
		FinalityDepth:      p.depth,
		PeriodTicks:        2,
		TimeoutTicks:       2*maxDelay + 4,
		BackoffTicks:       2,
		MaxTimeoutTicks:    2*maxDelay + 30,
		FetchIntervalTicks: 2,
		MaxPendingBlocks:   256,
		recoverFn:          s.sigs.recover,
		mutant:             p.mutant,
	}
	if p.depth == 0 {
		s.base.FinalityDepth = ZeroFinalityDepth
	}
	if p.setChange {
		// The first spare joins and genesis validator 0 leaves.
		s.govHeight = 5 + uint64(s.rng.Intn(10))
		look := p.depth + 4
		ids := append(append([]consensus.NodeID(nil), s.genesisSet[1:]...), s.nodes[p.validators].id)
		s.govChange = ValidatorChange{From: ActivationHeight(s.govHeight, look), IDs: ids}
	}
	for _, n := range s.nodes {
		if n.role != byzantine {
			if err := s.boot(n); err != nil {
				panic(err)
			}
		}
	}
	return s
}

func (s *simulation) note(format string, args ...any) {
	line := fmt.Sprintf("t=%d ", s.net.Now()) + fmt.Sprintf(format, args...)
	s.log = append(s.log, line)
	if len(s.log) > 60 {
		s.log = s.log[len(s.log)-60:]
	}
}

// boot starts (or restarts) a node's core from its ledger and saved state.
func (s *simulation) boot(n *simNode) error {
	cfg := s.base
	cfg.Key = n.key
	cfg.ValidatorChanges = append([]ValidatorChange(nil), n.changes...)
	var st PersistentState
	if n.saved != nil {
		var err error
		if st, err = DecodeState(n.saved); err != nil {
			return err
		}
	}
	head := n.led.head()
	core, err := NewCore(cfg, head, n.led.seals[len(n.led.seals)-1], st)
	if err != nil {
		return fmt.Errorf("node %d restart: %w", n.idx, err)
	}
	n.core = core
	n.app = newApp(n.led)
	n.up = true
	return nil
}

func (s *simulation) crash(n *simNode) {
	s.note("crash %d", n.idx)
	s.net.Crash(n.id)
	n.up = false
	n.core = nil
	n.app = nil
}

func (s *simulation) restart(n *simNode) error {
	s.note("restart %d", n.idx)
	s.net.Restart(n.id)
	return s.boot(n)
}

func (s *simulation) honest() []*simNode {
	var out []*simNode
	for _, n := range s.nodes {
		if n.role != byzantine {
			out = append(out, n)
		}
	}
	return out
}

// process runs a node's Ready batches until it has none, in the order of
// consensus.Apply, with rare crashes between its steps.
func (s *simulation) process(n *simNode) error {
	for i := 0; n.up && n.core.HasReady(); i++ {
		if i > 500 {
			return fmt.Errorf("node %d: Ready does not settle", n.idx)
		}
		rd := n.core.Ready()
		crashAt := -1
		if s.p.crashes && s.inChaos() && s.rng.Intn(400) == 0 {
			crashAt = s.rng.Intn(3 + len(rd.Commits))
		}
		for j, sb := range rd.Commits {
			if crashAt == j {
				s.crash(n)
				return nil
			}
			if err := s.commit(n, sb.Block, sb.Seal); err != nil {
				return err
			}
		}
		if crashAt == len(rd.Commits) {
			s.crash(n) // committed, the state not saved
			return nil
		}
		if rd.State != nil {
			n.saved = rd.State
		}
		if crashAt == len(rd.Commits)+1 {
			s.crash(n) // committed and saved, messages never sent
			return nil
		}
		for _, m := range rd.Messages {
			if m.Broadcast {
				s.net.Broadcast(n.id, m.Payload)
			} else {
				s.net.Send(n.id, m.To, m.Payload)
			}
		}
		n.core.Advance()
		for _, req := range rd.Serve {
			n.core.Served(req, consensus.ServeFrom(n.led, req))
		}
		if b := rd.Build; b != nil {
			blk, err := n.app.build(b.Parent, s.net.Now(), n.id)
			n.core.Built(*b, blk, err)
		}
		for _, blk := range rd.Verify {
			n.core.Verified(blk.Hash(), n.app.verify(blk))
		}
	}
	return nil
}

func (s *simulation) commit(n *simNode, b *types.Block, seal []byte) error {
	if err := n.app.commit(b, seal); err != nil {
		return fmt.Errorf("node %d: %w", n.idx, err)
	}
	h := b.NumberU64()
	if err := s.chk.Finalized(n.id, h, b.Hash()); err != nil {
		return err
	}
	txs := make([]common.Hash, 0, len(b.Transactions()))
	for _, tx := range b.Transactions() {
		txs = append(txs, tx.Hash())
		s.chk.Acknowledge(tx.Hash()) // the client asking this node gets a receipt
	}
	s.chk.Included(n.id, h, txs)
	if s.p.setChange && h == s.govHeight {
		// Governance executes in block processing on every node.
		if err := n.core.SetValidators(s.govChange.From, s.govChange.IDs); err != nil {
			return fmt.Errorf("node %d: %w", n.idx, err)
		}
		n.changes = append(n.changes, s.govChange)
	}
	return nil
}

func (s *simulation) inChaos() bool { return s.net.Now() < s.p.chaosTicks }

func (s *simulation) deliver(d simnet.Delivery) error {
	n := s.byID[d.To]
	if n.role == byzantine {
		if len(d.Payload) > 0 && d.Payload[0] == kindBlock {
			s.recent = append(s.recent, d.Payload)
			if len(s.recent) > 2 {
				s.recent = s.recent[1:]
			}
		}
		if len(s.seen) < 200 {
			s.seen = append(s.seen, d.Payload)
		} else {
			s.seen[s.rng.Intn(len(s.seen))] = d.Payload
		}
		return nil
	}
	if !n.up {
		return nil
	}
	n.core.Step(d.From, d.Payload)
	return s.process(n)
}

func (s *simulation) chaos() error {
	r := s.rng.Float64() / s.p.churn
	switch {
	case s.p.partitions && r < 0.015:
		groups := [][]consensus.NodeID{nil, nil, nil}
		k := 2 + s.rng.Intn(2)
		for _, id := range s.ids {
			g := s.rng.Intn(k)
			groups[g] = append(groups[g], id)
		}
		s.net.Partition(groups...)
		s.note("partition %v", groupIdx(s, groups))
	case s.p.partitions && r < 0.035:
		s.net.Heal()
		s.note("heal")
	case s.p.crashes && r < 0.045:
		hs := s.honest()
		n := hs[s.rng.Intn(len(hs))]
		if n.up {
			s.crash(n)
		}
	case s.p.crashes && r < 0.075:
		hs := s.honest()
		n := hs[s.rng.Intn(len(hs))]
		if !n.up && n != s.dead {
			return s.restart(n)
		}
	}
	return nil
}

func groupIdx(s *simulation, groups [][]consensus.NodeID) string {
	var parts []string
	for _, g := range groups {
		var idx []string
		for _, id := range g {
			idx = append(idx, fmt.Sprint(s.byID[id].idx))
		}
		parts = append(parts, "{"+strings.Join(idx, ",")+"}")
	}
	return strings.Join(parts, " ")
}

// submit makes a client transaction and gossips it to some nodes' pools.
func (s *simulation) submit() {
	s.nextTx++
	tx := fakeTx(s.nextTx)
	hs := s.honest()
	for i, k := 0, 1+s.rng.Intn(len(hs)); i < k; i++ {
		n := hs[s.rng.Intn(len(hs))]
		if n.up {
			n.app.pool = append(n.app.pool, tx)
		}
	}
}

// byzantineAct makes the non-authority misbehave once.
func (s *simulation) byzantineAct(b *simNode) {
	hs := s.honest()
	to := hs[s.rng.Intn(len(hs))].id
	pick := func() []byte {
		if len(s.seen) == 0 {
			return nil
		}
		return s.seen[s.rng.Intn(len(s.seen))]
	}
	pickBlock := func() []byte {
		if len(s.recent) == 0 || s.rng.Intn(4) == 0 {
			return pick() // an old one
		}
		return s.recent[s.rng.Intn(len(s.recent))]
	}
	switch s.rng.Intn(7) {
	case 0: // replay an overheard message (old blocks, old votes)
		if m := pick(); m != nil {
			s.net.Send(b.id, to, m)
		}
	case 1, 2: // re-seal an overheard block with its own key, or tamper with it
		m := pickBlock()
		if m == nil || m[0] != kindBlock {
			return
		}
		dm, err := decode(m, DefaultMaxMessageBytes)
		if err != nil {
			return
		}
		sb := *dm.block
		if s.rng.Intn(2) == 0 {
			sb, _ = Seal(sb.Block, sb.Ballot, b.key)
		} else {
			sb.Ballot.Round += uint64(1 + s.rng.Intn(3)) // the signature no longer matches
		}
		if s.rng.Intn(2) == 0 {
			s.net.Send(b.id, to, encodeBlock(sb))
		} else {
			// ... or pretend it is final.
			s.net.Send(b.id, to, encode(kindBlocks, blocksMsg{Final: toRLP([]SealedBlock{sb})}))
		}
	case 3: // forge a block on an overheard parent
		m := pickBlock()
		if m == nil || m[0] != kindBlock {
			return
		}
		dm, err := decode(m, DefaultMaxMessageBytes)
		if err != nil {
			return
		}
		parent := dm.block.Block.Header()
		app := newApp(newLedger(s.gen))
		app.exec[parent.Hash()] = dm.block.Block
		app.pool = []*types.Transaction{fakeTx(1 << 40)}
		blk, err := app.build(parent, s.net.Now(), b.id)
		if err != nil {
			return
		}
		sb, _ := Seal(blk, Ballot{blk.NumberU64(), 0}, b.key)
		s.net.Broadcast(b.id, encodeBlock(sb))
	case 4: // votes for far ballots (it is not an authority)
		s.net.Broadcast(b.id, encode(kindVote, voteMsg{Height: s.net.Now() + 5, Round: uint64(s.rng.Intn(100)), Tip: tipMsg{Height: 1, BallotH: 1, Hash: common.Hash{1}}}))
	case 5: // fetch storms
		s.net.Send(b.id, to, encode(kindFetch, fetchMsg{From: 1}))
	case 6: // garbage
		junk := make([]byte, 1+s.rng.Intn(64))
		s.rng.Read(junk)
		s.net.Send(b.id, to, junk)
	}
}

// run executes the scenario and returns the first violation.
func (s *simulation) run() error {
	total := s.p.chaosTicks + s.p.calmTicks
	var calmStart uint64
	for t := uint64(1); t <= total; t++ {
		for {
			d, ok := s.net.NextUntil(t)
			if !ok {
				break
			}
			if err := s.deliver(d); err != nil {
				return err
			}
		}
		s.net.AdvanceTo(t)
		if t <= s.p.chaosTicks {
			if err := s.chaos(); err != nil {
				return err
			}
		}
		if t == s.p.chaosTicks+1 {
			// The network heals: every node back, mild faults only.
			s.note("calm")
			s.net.Heal()
			s.net.SetFaults(simnet.Faults{DropRate: 0.02, DupRate: 0.02, MaxDelay: s.p.faults.MaxDelay})
			if s.p.deadAfter {
				// A validator dies for good (f = 1): it may hold the
				// only copy of blocks nobody else received.
				s.dead = s.nodes[1+s.rng.Intn(s.p.validators-1)]
				if s.dead.up {
					s.crash(s.dead)
				}
			}
			for _, n := range s.honest() {
				if !n.up && n != s.dead {
					if err := s.restart(n); err != nil {
						return err
					}
				}
			}
			calmStart = s.maxFinal()
		}
		if s.rng.Float64() < 0.3 {
			s.submit()
		}
		for _, n := range s.nodes {
			if n.role == byzantine {
				if s.rng.Float64() < 0.3 {
					s.byzantineAct(n)
				}
				continue
			}
			if !n.up {
				continue
			}
			n.core.Tick()
			if err := s.process(n); err != nil {
				return err
			}
		}
		if err := s.chk.Err(); err != nil {
			return err
		}
	}
	if err := s.chk.CheckExactlyOnce(); err != nil {
		return err
	}
	// Liveness: after healing every honest node finalized past what any
	// node had finalized when the network healed.
	for _, n := range s.honest() {
		if n == s.dead {
			continue
		}
		if h := s.chk.Height(n.id); h < calmStart+5 {
			return fmt.Errorf("liveness: node %d final at %d, want >= %d (status %+v)", n.idx, h, calmStart+5, n.core.Status())
		}
	}
	if s.p.setChange {
		// The new validator must have sealed after the change.
		joined := s.nodes[s.p.validators].id
		led := s.nodes[0].led
		sealed := false
		for h := s.govChange.From; h < uint64(len(led.blocks)); h++ {
			if led.blocks[h].Coinbase() == joined {
				sealed = true
			}
			if led.blocks[h].Coinbase() == s.genesisSet[0] {
				return fmt.Errorf("removed validator sealed block %d", h)
			}
		}
		if uint64(len(led.blocks)) > s.govChange.From+10 && !sealed {
			return fmt.Errorf("new validator never sealed after height %d", s.govChange.From)
		}
	}
	return nil
}

func (s *simulation) maxFinal() uint64 {
	var m uint64
	for _, n := range s.honest() {
		m = max(m, s.chk.Height(n.id))
	}
	return m
}

// runSeed runs one seed with parameters drawn from it.
func runSeed(seed int64, adjust func(*simParams)) (err error) {
	p := randomParams(rand.New(rand.NewSource(seed)))
	if adjust != nil {
		adjust(&p)
	}
	s := newSimulation(seed, p)
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nparams: %s\nlast events:\n  %s", err, p, strings.Join(s.log, "\n  "))
		}
	}()
	return s.run()
}
