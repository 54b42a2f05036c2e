package poa

import (
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
	// retime: governance changes the period and turn timeout at a height
	// (never drawn by randomParams, so the seeds keep their scenarios).
	retime bool
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

// The poa simulation runs on simnet.Sim: its chain, its disk that loses
// power, its crash points; this file adds poa's scenario (an authority
// set change decided by governance, a Byzantine non-authority, an
// authority that dies for good) and poa's liveness check.
type simulation struct {
	seed  int64
	p     simParams
	s     *simnet.Sim
	rng   *rand.Rand
	nodes []*simnet.Node
	roles map[*simnet.Node]role
	sigs  sigMemo
	base  Config

	genesisSet []consensus.NodeID
	govHeight  uint64 // block whose commit changes the set
	govChange  ValidatorChange
	// retimeAt is the block whose commit changes the timing to retime.
	retimeAt uint64
	retime   consensus.ParamChange

	dead      *simnet.Node // the validator that stays down after healing, if any
	calmStart uint64       // the highest final height when the network healed
	nextTx    uint64
	seen      [][]byte // messages the Byzantine node overheard
	recent    [][]byte // the last blocks it overheard
}

// StateFile is where the harness keeps a node's poa state.
const simStateFile = "/data/" + StateFileName

func newSimulation(seed int64, p simParams) (*simulation, error) {
	sm := &simulation{seed: seed, p: p, roles: map[*simnet.Node]role{}, sigs: sigMemo{}}
	total := p.validators + p.spare + p.observers
	if p.byzantine {
		total++
	}
	var ids []consensus.NodeID
	for i := 0; i < total; i++ {
		ids = append(ids, crypto.PubkeyToAddress(testKey(i).PublicKey))
		if i < p.validators {
			sm.genesisSet = append(sm.genesisSet, ids[i])
		}
	}
	maxDelay := p.faults.MaxDelay
	sm.base = Config{
		Validators:         sm.genesisSet,
		FinalityDepth:      p.depth,
		PeriodTicks:        2,
		TimeoutTicks:       2*maxDelay + 4,
		BackoffTicks:       2,
		MaxTimeoutTicks:    2*maxDelay + 30,
		FetchIntervalTicks: 2,
		MaxPendingBlocks:   256,
		recoverFn:          sm.sigs.recover,
		mutant:             p.mutant,
	}
	if p.depth == 0 {
		sm.base.FinalityDepth = ZeroFinalityDepth
	}
	crashRate := 0.0
	if p.crashes {
		crashRate = 1.0 / 400
	}
	s, err := simnet.NewSim(simnet.Config{
		Seed:      seed,
		Faults:    p.faults,
		IDs:       ids,
		TickMs:    1,
		MaxTxs:    4,
		StateFile: simStateFile,
		CrashRate: crashRate,
		Open:      sm.open,
		OnCommit:  sm.onCommit,
		Inbound:   sm.overhear,
		Outbound: func(n *simnet.Node, m consensus.Message) bool {
			return sm.roles[n] == byzantine // it acts on its own (byzantineAct)
		},
	})
	if err != nil {
		return nil, err
	}
	sm.s, sm.rng, sm.nodes = s, s.Rand, s.Nodes
	for i, n := range sm.nodes {
		switch {
		case i < p.validators:
			sm.roles[n] = validator
		case i < p.validators+p.spare+p.observers:
			sm.roles[n] = observer
		default:
			sm.roles[n] = byzantine
		}
	}
	if p.setChange {
		// The first spare joins and genesis validator 0 leaves.
		sm.govHeight = 5 + uint64(sm.rng.Intn(10))
		look := p.depth + 4
		changed := append(append([]consensus.NodeID(nil), sm.genesisSet[1:]...), ids[p.validators])
		sm.govChange = ValidatorChange{From: ActivationHeight(sm.govHeight, look), IDs: changed}
	}
	if p.retime {
		sm.retimeAt = 3 + uint64(sm.rng.Intn(10))
		// 300 ms and 1.5 s at the default 100 ms tick: 3 and 15 ticks.
		sm.retime = consensus.ParamChange{From: ActivationHeight(sm.retimeAt, p.depth+4) + uint64(sm.rng.Intn(5)),
			Values: map[string]uint64{"poa.period": 300, "poa.turnTimeout": 1500}}
	}
	return sm, nil
}

// open starts (or restarts) a node's core from its chain and saved state,
// with the validator changes its chain committed (what a real node reads
// back from chain state at start).
func (sm *simulation) open(n *simnet.Node, saved []byte) (consensus.Core, error) {
	cfg := sm.base
	cfg.Key = testKey(n.Index)
	if sm.p.setChange && sm.govHeight > 0 && n.Chain.Height() >= sm.govHeight {
		cfg.ValidatorChanges = []ValidatorChange{sm.govChange}
	}
	if sm.p.retime && n.Chain.Height() >= sm.retimeAt {
		cfg.ParamChanges = []consensus.ParamChange{sm.retime}
	}
	var st PersistentState
	if saved != nil {
		var err error
		if st, err = DecodeState(saved); err != nil {
			return nil, err
		}
	}
	head := headBlock(n.Chain)
	seal := sealAt(n.Chain, n.Chain.Height())
	if n.Chain.Height() == 0 {
		seal = nil
	}
	return NewCore(cfg, head, seal, st)
}

// onCommit: governance executes in block processing on every node.
func (sm *simulation) onCommit(n *simnet.Node, b *types.Block, _ []byte) error {
	if sm.p.setChange && b.NumberU64() == sm.govHeight {
		if err := n.Core.SetValidators(sm.govChange.From, sm.govChange.IDs); err != nil {
			return err
		}
	}
	if sm.p.retime && b.NumberU64() == sm.retimeAt {
		return n.Core.(*Core).SetParams(sm.retime.From, sm.retime.Values)
	}
	return nil
}

// overhear: the Byzantine node keeps what it receives, to replay it.
func (sm *simulation) overhear(n *simnet.Node, _ consensus.NodeID, payload []byte) bool {
	if sm.roles[n] != byzantine {
		return false
	}
	if len(payload) > 0 && payload[0] == kindBlock {
		sm.recent = append(sm.recent, payload)
		if len(sm.recent) > 2 {
			sm.recent = sm.recent[1:]
		}
	}
	if len(sm.seen) < 200 {
		sm.seen = append(sm.seen, payload)
	} else {
		sm.seen[sm.rng.Intn(len(sm.seen))] = payload
	}
	return true
}

func (sm *simulation) honest() []*simnet.Node {
	var out []*simnet.Node
	for _, n := range sm.nodes {
		if sm.roles[n] != byzantine {
			out = append(out, n)
		}
	}
	return out
}

func (sm *simulation) inChaos() bool { return sm.s.Ticks < sm.p.chaosTicks }

func (sm *simulation) chaos() error {
	r := sm.rng.Float64() / sm.p.churn
	switch {
	case sm.p.partitions && r < 0.015:
		groups := [][]*simnet.Node{nil, nil, nil}
		k := 2 + sm.rng.Intn(2)
		for _, n := range sm.nodes {
			g := sm.rng.Intn(k)
			groups[g] = append(groups[g], n)
		}
		sm.s.Partition(groups...)
		sm.s.Logf("partition %s", groupIdx(groups))
	case sm.p.partitions && r < 0.035:
		sm.s.Net.Heal()
		sm.s.Logf("heal")
	case sm.p.crashes && r < 0.045:
		hs := sm.honest()
		sm.s.Crash(hs[sm.rng.Intn(len(hs))])
	case sm.p.crashes && r < 0.075:
		hs := sm.honest()
		if n := hs[sm.rng.Intn(len(hs))]; !n.Up() && n != sm.dead {
			return sm.s.Restart(n)
		}
	}
	return nil
}

func groupIdx(groups [][]*simnet.Node) string {
	var parts []string
	for _, g := range groups {
		var idx []string
		for _, n := range g {
			idx = append(idx, fmt.Sprint(n.Index))
		}
		parts = append(parts, "{"+strings.Join(idx, ",")+"}")
	}
	return strings.Join(parts, " ")
}

// submit makes a client transaction and gossips it to some nodes' pools.
func (sm *simulation) submit() {
	sm.nextTx++
	tx := simnet.Tx(sm.nextTx)
	hs := sm.honest()
	var to []*simnet.Node
	for i, k := 0, 1+sm.rng.Intn(len(hs)); i < k; i++ {
		to = append(to, hs[sm.rng.Intn(len(hs))])
	}
	sm.s.Submit(tx, to...)
}

// byzantineAct makes the non-authority misbehave once.
func (sm *simulation) byzantineAct(b *simnet.Node) {
	hs := sm.honest()
	to := hs[sm.rng.Intn(len(hs))].Addr
	send := func(p []byte) { sm.s.Net.Send(b.Addr, to, p) }
	broadcast := func(p []byte) {
		for _, n := range sm.nodes {
			if n != b {
				sm.s.Net.Send(b.Addr, n.Addr, p)
			}
		}
	}
	pick := func() []byte {
		if len(sm.seen) == 0 {
			return nil
		}
		return sm.seen[sm.rng.Intn(len(sm.seen))]
	}
	pickBlock := func() []byte {
		if len(sm.recent) == 0 || sm.rng.Intn(4) == 0 {
			return pick() // an old one
		}
		return sm.recent[sm.rng.Intn(len(sm.recent))]
	}
	key := testKey(b.Index)
	switch sm.rng.Intn(7) {
	case 0: // replay an overheard message (old blocks, old votes)
		if m := pick(); m != nil {
			send(m)
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
		if sm.rng.Intn(2) == 0 {
			sb, _ = Seal(sb.Block, sb.Ballot, key)
		} else {
			sb.Ballot.Round += uint64(1 + sm.rng.Intn(3)) // the signature no longer matches
		}
		if sm.rng.Intn(2) == 0 {
			send(encodeBlock(sb))
		} else {
			// ... or pretend it is final.
			send(encode(kindBlocks, blocksMsg{Final: toRLP([]SealedBlock{sb})}))
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
		blk := simnet.MakeBlock(parent, b.ID, uint64(sm.s.Now().Unix()), []*types.Transaction{simnet.Tx(1 << 40)}, []byte("forged"))
		sb, _ := Seal(blk, Ballot{blk.NumberU64(), 0}, key)
		broadcast(encodeBlock(sb))
	case 4: // votes for far ballots (it is not an authority)
		broadcast(encode(kindVote, voteMsg{Height: sm.s.Ticks + 5, Round: uint64(sm.rng.Intn(100)), Tip: tipMsg{Height: 1, BallotH: 1, Hash: common.Hash{1}}}))
	case 5: // fetch storms
		send(encode(kindFetch, fetchMsg{From: 1}))
	case 6: // garbage
		junk := make([]byte, 1+sm.rng.Intn(64))
		sm.rng.Read(junk)
		send(junk)
	}
}

// eachTick: chaos, the workload, the Byzantine node; then the calm at
// the end of the chaos.
func (sm *simulation) eachTick(*simnet.Sim) error {
	t := sm.s.Ticks
	if t <= sm.p.chaosTicks {
		if err := sm.chaos(); err != nil {
			return err
		}
	}
	if t == sm.p.chaosTicks+1 {
		if err := sm.calm(); err != nil {
			return err
		}
	}
	if sm.rng.Float64() < 0.3 {
		sm.submit()
	}
	for _, n := range sm.nodes {
		if sm.roles[n] == byzantine && sm.rng.Float64() < 0.3 {
			sm.byzantineAct(n)
		}
	}
	return nil
}

// calm heals the network: every node back (but the one that dies for
// good), mild faults only, no more crashes.
func (sm *simulation) calm() error {
	if sm.p.deadAfter {
		// A validator dies for good (f = 1): it may hold the only copy of
		// blocks nobody else received.
		sm.dead = sm.nodes[1+sm.rng.Intn(sm.p.validators-1)]
		sm.dead.Down = true
		sm.s.Crash(sm.dead)
	}
	if err := sm.s.Heal(simnet.Faults{DropRate: 0.02, DupRate: 0.02, MaxDelay: sm.p.faults.MaxDelay}); err != nil {
		return err
	}
	sm.calmStart = sm.maxFinal()
	return nil
}

// run executes the scenario and returns the first violation.
func (sm *simulation) run() error {
	total := sm.p.chaosTicks + sm.p.calmTicks
	var tickErr error
	sm.s.SetEachTick(func(*simnet.Sim) {
		if tickErr == nil {
			tickErr = sm.eachTick(sm.s)
		}
	})
	for sm.s.Ticks < total {
		sm.s.Step()
		if tickErr != nil {
			return tickErr
		}
		if err := sm.s.Err(); err != nil {
			return err
		}
	}
	calmStart := sm.calmStart
	if err := sm.s.FinalCheck(); err != nil {
		return err
	}
	// Liveness: after healing every honest node finalized past what any
	// node had finalized when the network healed.
	for _, n := range sm.honest() {
		if n == sm.dead {
			continue
		}
		if h := n.Chain.Height(); h < calmStart+5 {
			st := Status{}
			if n.Core != nil {
				st = n.Core.(*Core).Status()
			}
			return fmt.Errorf("liveness: node %d final at %d, want >= %d (status %+v)", n.Index, h, calmStart+5, st)
		}
	}
	if sm.p.setChange {
		// The new validator must have sealed after the change.
		joined := sm.nodes[sm.p.validators].ID
		led := sm.nodes[0].Chain
		sealed := false
		for h := sm.govChange.From; h <= led.Height(); h++ {
			if blockAt(led, h).Coinbase() == joined {
				sealed = true
			}
			if blockAt(led, h).Coinbase() == sm.genesisSet[0] {
				return fmt.Errorf("removed validator sealed block %d", h)
			}
		}
		if led.Height()+1 > sm.govChange.From+10 && !sealed {
			return fmt.Errorf("new validator never sealed after height %d", sm.govChange.From)
		}
	}
	return nil
}

func (sm *simulation) maxFinal() uint64 {
	var m uint64
	for _, n := range sm.honest() {
		m = max(m, n.Chain.Height())
	}
	return m
}

// runSeed runs one seed with parameters drawn from it.
func runSeed(seed int64, adjust func(*simParams)) (err error) {
	p := randomParams(rand.New(rand.NewSource(seed)))
	if adjust != nil {
		adjust(&p)
	}
	sm, err := newSimulation(seed, p)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\nparams: %s\nlast events:\n  %s", err, p, strings.Join(sm.s.Events(), "\n  "))
		}
	}()
	return sm.run()
}
