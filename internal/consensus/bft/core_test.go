package bft

import (
	"bytes"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/consensus"
)

// fixture drives one core by hand; the other validators are played by
// the test, which signs their messages.
type fixture struct {
	t    *testing.T
	ids  []consensus.NodeID // proposer order
	keys map[consensus.NodeID]*ecdsa.PrivateKey
	self consensus.NodeID
	core *Core
	head Head
}

func newFixture(t *testing.T, n int, self int, mod func(*Config)) *fixture {
	f := &fixture{t: t, keys: map[consensus.NodeID]*ecdsa.PrivateKey{}}
	var ids []consensus.NodeID
	for i := 0; i < n; i++ {
		ids = append(ids, keyID(simKeys[i]))
		f.keys[keyID(simKeys[i])] = simKeys[i]
	}
	vs, err := NewValidatorSet(ids)
	if err != nil {
		t.Fatal(err)
	}
	f.ids = vs.IDs()
	f.self = f.ids[self]
	f.head = Head{Number: 0, Hash: genesis.Hash()}
	cfg := Config{ChainID: simChainID, Signer: NewKeySigner(f.keys[f.self]), Validators: ids}
	if mod != nil {
		mod(&cfg)
	}
	f.core, err = NewCore(cfg, genesis.Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) sign(id consensus.NodeID, d common.Hash) []byte {
	sig, err := crypto.Sign(d[:], f.keys[id])
	if err != nil {
		f.t.Fatal(err)
	}
	return sig
}

func (f *fixture) vote(typ MsgType, who consensus.NodeID, h uint64, r int64, hash common.Hash) []byte {
	return encodeVote(typ, h, r, hash, f.sign(who, Digest(simChainID, typ, h, r, hash, -1)))
}

func (f *fixture) proposal(who consensus.NodeID, h uint64, r, vr int64, b *types.Block, just [][]byte) []byte {
	return encodeProposal(h, r, vr, b, just, f.sign(who, Digest(simChainID, MsgProposal, h, r, b.Hash(), vr)))
}

func (f *fixture) block(salt byte) *types.Block {
	header := &types.Header{ParentHash: f.head.Hash, Number: new(big.Int).SetUint64(f.head.Number + 1),
		Difficulty: new(big.Int), GasLimit: 1, Extra: []byte{salt}}
	return types.NewBlock(header, nil, nil, trie.NewStackTrie(nil))
}

// proposerIndex is the index in ids of the proposer of height h, round r.
func (f *fixture) proposerIndex(h uint64, r int64) int {
	next := f.proposer(h, r)
	for i, id := range f.ids {
		if id == next {
			return i
		}
	}
	return -1
}

func (f *fixture) proposer(h uint64, r int64) consensus.NodeID {
	return f.core.Validators(h).Proposer(h, r)
}

// others returns validators other than self and except.
func (f *fixture) others(except ...consensus.NodeID) []consensus.NodeID {
	var out []consensus.NodeID
next:
	for _, id := range f.ids {
		if id == f.self {
			continue
		}
		for _, e := range except {
			if id == e {
				continue next
			}
		}
		out = append(out, id)
	}
	return out
}

func (f *fixture) step(from consensus.NodeID, p []byte) error {
	f.t.Helper()
	return f.core.Step(from, p)
}

func (f *fixture) mustStep(from consensus.NodeID, p []byte) {
	f.t.Helper()
	if err := f.core.Step(from, p); err != nil {
		f.t.Fatalf("step: %v", err)
	}
}

// ready takes the Ready, answers Verify with valid (unless bad says
// otherwise), and Advances.
func (f *fixture) ready(bad ...common.Hash) consensus.Ready {
	rd := f.core.Ready()
	for _, b := range rd.Verify {
		var err error
		for _, h := range bad {
			if h == b.Hash() {
				err = errors.New("invalid")
			}
		}
		f.core.Verified(b.Hash(), err)
	}
	f.core.Advance()
	return rd
}

// sent returns the votes of typ in msgs, decoded.
func sent(t *testing.T, msgs []consensus.Message, typ MsgType) []*message {
	var out []*message
	for _, m := range msgs {
		if PeekType(m.Payload) != typ {
			continue
		}
		d, err := decodeMessage(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// savedOf decodes the state of a Ready; nil if it has none.
func savedOf(t *testing.T, rd consensus.Ready) *SavedState {
	t.Helper()
	if rd.State == nil {
		return nil
	}
	st, err := UnmarshalSavedState(rd.State)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// drain collects everything the core produces until it is quiet.
func (f *fixture) drain(bad ...common.Hash) consensus.Ready {
	var all consensus.Ready
	for i := 0; f.core.HasReady() && i < 100; i++ {
		rd := f.ready(bad...)
		all.Commits = append(all.Commits, rd.Commits...)
		all.Messages = append(all.Messages, rd.Messages...)
		all.Serve = append(all.Serve, rd.Serve...)
		all.Verify = append(all.Verify, rd.Verify...)
		if rd.Build != nil {
			all.Build = rd.Build
		}
		if rd.State != nil {
			all.State = rd.State
		}
	}
	return all
}

func TestValidatorSet(t *testing.T) {
	for n, want := range map[int][3]int{1: {0, 1, 1}, 3: {0, 3, 2}, 4: {1, 3, 2}, 5: {1, 4, 2}, 6: {1, 5, 3}, 7: {2, 5, 3}, 10: {3, 7, 4}, 100: {33, 67, 34}} {
		var ids []consensus.NodeID
		for i := 0; i < n; i++ {
			ids = append(ids, common.BytesToAddress([]byte{byte(i + 1), 7}))
		}
		vs, err := NewValidatorSet(ids)
		if err != nil {
			t.Fatal(err)
		}
		if got := [3]int{vs.Faulty(), vs.Quorum(), vs.Weak()}; got != want {
			t.Errorf("n=%d: f, quorum, weak = %v, want %v", n, got, want)
		}
		// Any two quorums intersect in more than f validators.
		if 2*vs.Quorum()-n <= vs.Faulty() {
			t.Errorf("n=%d: quorums intersect in %d <= f", n, 2*vs.Quorum()-n)
		}
		// The proposer rotates through everyone, whatever the input order.
		rev := append([]consensus.NodeID(nil), ids...)
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		vr, _ := NewValidatorSet(rev)
		seen := map[consensus.NodeID]bool{}
		for r := int64(0); r < int64(n); r++ {
			if vs.Proposer(9, r) != vr.Proposer(9, r) {
				t.Fatalf("n=%d: proposer depends on list order", n)
			}
			seen[vs.Proposer(9, r)] = true
		}
		if len(seen) != n {
			t.Errorf("n=%d: %d distinct proposers in n rounds", n, len(seen))
		}
	}
	a := common.Address{1}
	for name, ids := range map[string][]consensus.NodeID{"empty": nil, "dup": {a, a}, "zero": {{}}} {
		if _, err := NewValidatorSet(ids); !errors.Is(err, ErrBadValidators) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDigestCoversEveryField(t *testing.T) {
	base := Digest(1, MsgPrevote, 5, 2, common.Hash{9}, -1)
	for name, d := range map[string]common.Hash{
		"chain":      Digest(2, MsgPrevote, 5, 2, common.Hash{9}, -1),
		"type":       Digest(1, MsgPrecommit, 5, 2, common.Hash{9}, -1),
		"height":     Digest(1, MsgPrevote, 6, 2, common.Hash{9}, -1),
		"round":      Digest(1, MsgPrevote, 5, 3, common.Hash{9}, -1),
		"hash":       Digest(1, MsgPrevote, 5, 2, common.Hash{8}, -1),
		"validRound": Digest(1, MsgPrevote, 5, 2, common.Hash{9}, 0),
	} {
		if d == base {
			t.Errorf("digest ignores %s", name)
		}
	}
}

func TestRecoverSignerRejectsMalleated(t *testing.T) {
	d := crypto.Keccak256Hash([]byte("x"))
	sig, _ := crypto.Sign(d[:], simKeys[0])
	if id, err := RecoverSigner(d, sig); err != nil || id != keyID(simKeys[0]) {
		t.Fatalf("good signature: %v %v", id, err)
	}
	// (r, N-s, v^1) is the same signature, malleated: refused.
	N := crypto.S256().Params().N
	s := new(big.Int).SetBytes(sig[32:64])
	mal := append([]byte(nil), sig...)
	new(big.Int).Sub(N, s).FillBytes(mal[32:64])
	mal[64] ^= 1
	if _, err := RecoverSigner(d, mal); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("malleated: %v", err)
	}
	if _, err := RecoverSigner(d, sig[:64]); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("short: %v", err)
	}
}

func TestCertificate(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	b := f.block(1)
	sigs := func(r int64, who ...consensus.NodeID) [][]byte {
		var out [][]byte
		for _, id := range who {
			out = append(out, f.sign(id, Digest(simChainID, MsgPrecommit, 1, r, b.Hash(), -1)))
		}
		return out
	}
	good := EncodeCertificate(Certificate{Round: 2, Sigs: sigs(2, f.ids[0], f.ids[1], f.ids[3])})
	signers, err := VerifyCertificate(simChainID, f.ids, 1, b.Hash(), good)
	if err != nil || len(signers) != 3 {
		t.Fatalf("good certificate: %v %v", signers, err)
	}
	outsider := keyID(simKeys[10])
	f.keys[outsider] = simKeys[10]
	prevote := f.sign(f.ids[3], Digest(simChainID, MsgPrevote, 1, 2, b.Hash(), -1))
	for name, c := range map[string]struct {
		chain  uint64
		height uint64
		hash   common.Hash
		seal   []byte
	}{
		"two of four":   {simChainID, 1, b.Hash(), EncodeCertificate(Certificate{Round: 2, Sigs: sigs(2, f.ids[0], f.ids[1])})},
		"same signer":   {simChainID, 1, b.Hash(), EncodeCertificate(Certificate{Round: 2, Sigs: sigs(2, f.ids[0], f.ids[1], f.ids[1])})},
		"non-validator": {simChainID, 1, b.Hash(), EncodeCertificate(Certificate{Round: 2, Sigs: sigs(2, f.ids[0], f.ids[1], outsider)})},
		"other round":   {simChainID, 1, b.Hash(), EncodeCertificate(Certificate{Round: 3, Sigs: sigs(2, f.ids[0], f.ids[1], f.ids[3])})},
		"prevotes":      {simChainID, 1, b.Hash(), EncodeCertificate(Certificate{Round: 2, Sigs: append(sigs(2, f.ids[0], f.ids[1]), prevote)})},
		"other height":  {simChainID, 2, b.Hash(), good},
		"other block":   {simChainID, 1, common.Hash{1}, good},
		"other chain":   {simChainID + 1, 1, b.Hash(), good},
		"garbage":       {simChainID, 1, b.Hash(), []byte{0xc1, 0x80}},
		"empty":         {simChainID, 1, b.Hash(), nil},
		"too many sigs": {simChainID, 1, b.Hash(), EncodeCertificate(Certificate{Round: 2, Sigs: append(sigs(2, f.ids...), sigs(2, f.ids[0])...)})},
	} {
		if _, err := VerifyCertificate(c.chain, f.ids, c.height, c.hash, c.seal); !errors.Is(err, ErrBadCertificate) {
			t.Errorf("%s: got %v, want ErrBadCertificate", name, err)
		}
	}
}

// TestCoreDecides walks one validator through a round: proposal, prevotes,
// its own precommit, precommits, commit with a valid certificate.
func TestCoreDecides(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	rd := f.drain()
	if st := sent(t, rd.Messages, MsgStatus); len(st) != 1 {
		t.Fatalf("status at round start: %d", len(st))
	}
	prop := f.proposer(1, 0)
	if prop == f.self {
		t.Fatal("fixture assumes validator 0 does not propose height 1")
	}
	b := f.block(1)
	f.mustStep(prop, f.proposal(prop, 1, 0, -1, b, nil))
	rd = f.drain()
	if len(rd.Verify) != 1 || rd.Verify[0].Hash() != b.Hash() {
		t.Fatalf("verify request: %v", rd.Verify)
	}
	pv := sent(t, rd.Messages, MsgPrevote)
	if st := savedOf(t, rd); len(pv) != 1 || pv[0].hash != b.Hash() || st == nil || st.Prevote == nil {
		t.Fatalf("prevote for the block, saved: %v %+v", pv, st)
	}
	for _, id := range f.others()[:2] {
		f.mustStep(id, f.vote(MsgPrevote, id, 1, 0, b.Hash()))
	}
	rd = f.drain()
	pc := sent(t, rd.Messages, MsgPrecommit)
	if st := savedOf(t, rd); len(pc) != 1 || pc[0].hash != b.Hash() || st.LockedRound != 0 || st.LockedBlock.Hash() != b.Hash() {
		t.Fatalf("precommit and lock: %v %+v", pc, st)
	}
	for _, id := range f.others()[:2] {
		f.mustStep(id, f.vote(MsgPrecommit, id, 1, 0, b.Hash()))
	}
	rd = f.drain()
	if len(rd.Commits) != 1 || rd.Commits[0].Block.Hash() != b.Hash() {
		t.Fatalf("commit: %+v", rd.Commits)
	}
	if _, err := VerifyCertificate(simChainID, f.ids, 1, b.Hash(), rd.Commits[0].Seal); err != nil {
		t.Fatalf("seal: %v", err)
	}
	if f.core.Height() != 2 || f.core.Counters().Decided != 1 || f.core.Counters().CommitRounds[0] != 1 {
		t.Fatalf("after commit: height %d stats %+v", f.core.Height(), f.core.Counters())
	}
}

// lockOn makes the fixture's validator lock on a block at round 0 and
// then time out into round 1 (without a decision).
func lockOn(t *testing.T, f *fixture) (*types.Block, [][]byte) {
	b := f.block(1)
	prop := f.proposer(1, 0)
	f.mustStep(prop, f.proposal(prop, 1, 0, -1, b, nil))
	var just [][]byte
	for _, id := range f.others()[:2] {
		p := f.vote(MsgPrevote, id, 1, 0, b.Hash())
		f.mustStep(id, p)
		m, _ := decodeMessage(p)
		just = append(just, m.sig)
	}
	rd := f.drain()
	own := sent(t, rd.Messages, MsgPrevote)
	if len(own) != 1 {
		t.Fatalf("own prevote: %v", own)
	}
	just = append(just, own[0].sig)
	// Precommits of the others are nil: no decision, precommit timeout.
	for _, id := range f.others()[:2] {
		f.mustStep(id, f.vote(MsgPrecommit, id, 1, 0, common.Hash{}))
	}
	for i := 0; i < 100 && f.core.Round() == 0; i++ {
		f.core.Tick()
		f.drain()
	}
	if f.core.Round() != 1 || f.core.hs.lockedRound != 0 {
		t.Fatalf("round %d locked %d", f.core.Round(), f.core.hs.lockedRound)
	}
	return b, just
}

// TestCoreLock: a validator locked on a block prevotes nil for another
// block, even a valid one, unless a quorum prevoted that one in a round at
// or after its lock.
func TestCoreLock(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	f.drain()
	locked, _ := lockOn(t, f)
	prop := f.proposer(1, 1)
	other := f.block(2)
	f.mustStep(prop, f.proposal(prop, 1, 1, -1, other, nil))
	rd := f.drain()
	pv := sent(t, rd.Messages, MsgPrevote)
	if len(pv) != 1 || pv[0].hash != (common.Hash{}) {
		t.Fatalf("locked validator prevoted %v for another block", pv)
	}
	// The locked block re-proposed without proof is still prevoted.
	f.step(prop, f.proposal(prop, 1, 1, -1, locked, nil)) // equivocation, ignored
	if f.core.hs.lockedBlock.Hash() != locked.Hash() {
		t.Fatal("lock lost")
	}
}

// TestCoreLockReleasedByLaterProof: the proof of lock of a re-proposal
// (a quorum prevoted the block in round vr >= our lock round) frees us.
func TestCoreLockReleasedByLaterProof(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	f.drain()
	lockOn(t, f)
	// Round 1: a quorum (without us) prevoted another block Y.
	y := f.block(2)
	var just [][]byte
	for _, id := range f.ids {
		if id != f.self {
			just = append(just, f.sign(id, Digest(simChainID, MsgPrevote, 1, 1, y.Hash(), -1)))
		}
	}
	// Move to round 2 by a weak quorum of round-2 messages.
	for _, id := range f.others()[:2] {
		f.mustStep(id, f.vote(MsgPrevote, id, 1, 2, common.Hash{}))
	}
	f.drain()
	if f.core.Round() != 2 {
		t.Fatalf("round skip: round %d", f.core.Round())
	}
	prop := f.proposer(1, 2)
	if prop == f.self {
		t.Skip("fixture validator proposes round 2")
	}
	f.mustStep(prop, f.proposal(prop, 1, 2, 1, y, just))
	rd := f.drain()
	pv := sent(t, rd.Messages, MsgPrevote)
	if len(pv) != 1 || pv[0].hash != y.Hash() {
		t.Fatalf("prevote with a later proof of lock: %v", pv)
	}
	// A re-proposal whose proof is too small is dropped.
	f2 := newFixture(t, 4, 0, nil)
	f2.drain()
	lockOn(t, f2)
	for _, id := range f2.others()[:2] {
		f2.mustStep(id, f2.vote(MsgPrevote, id, 1, 2, common.Hash{}))
	}
	f2.drain()
	if err := f2.step(prop, f2.proposal(prop, 1, 2, 1, y, just[:2])); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short justification: %v", err)
	}
}

func TestCoreDropsBadMessages(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	f.drain()
	v := f.others()[0]
	outsider := keyID(simKeys[10])
	f.keys[outsider] = simKeys[10]
	b := f.block(1)
	good := f.vote(MsgPrevote, v, 1, 0, b.Hash())
	otherChain := encodeVote(MsgPrevote, 1, 0, b.Hash(), f.sign(v, Digest(simChainID+1, MsgPrevote, 1, 0, b.Hash(), -1)))
	notProposer := f.others(f.proposer(1, 0))[0]
	big := append([]byte{byte(MsgPrevote)}, make([]byte, 33<<20)...)
	for name, c := range map[string]struct {
		payload []byte
		want    error
	}{
		"non-validator": {f.vote(MsgPrevote, outsider, 1, 0, b.Hash()), ErrNotValidator},
		"other chain":   {otherChain, ErrNotValidator},
		"bad signature": {encodeVote(MsgPrevote, 1, 0, b.Hash(), make([]byte, 65)), ErrBadSignature},
		"wrong leader":  {f.proposal(notProposer, 1, 0, -1, b, nil), ErrWrongLeader},
		"malformed":     {[]byte{byte(MsgPrevote), 0xc3, 1, 2}, ErrMalformed},
		"unknown type":  {[]byte{99, 0xc0}, ErrMalformed},
		"empty":         {nil, ErrMalformed},
		"too large":     {big, ErrTooLarge},
		"huge round":    {encodeVote(MsgPrevote, 1, MaxRound+1, b.Hash(), make([]byte, 65)), ErrMalformed},
	} {
		if err := f.step(v, c.payload); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	// From a peer outside the set: dropped before any signature work.
	if err := f.step(outsider, good); !errors.Is(err, ErrNotValidator) {
		t.Errorf("from a non-validator peer: %v", err)
	}
	f.mustStep(v, good)
	if err := f.step(v, good); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate: %v", err)
	}
	if st := f.core.Counters(); st.BadSignatures < 3 || st.Duplicates != 1 || st.Dropped < 9 {
		t.Errorf("stats: %+v", st)
	}
}

// TestCoreFutureAndStale: messages for the next height wait (bounded) and
// are used once the height is reached; messages for decided heights are
// dropped.
func TestCoreFutureAndStale(t *testing.T) {
	f := newFixture(t, 4, 0, func(c *Config) { c.MaxFutureMessages, c.MaxFuturePerPeer = 3, 2 })
	f.drain()
	v := f.others()[0]
	// Height 2 prevotes: kept, two per peer, three in all.
	for i, id := range f.others() {
		for r := int64(0); r < 3; r++ {
			err := f.step(id, f.vote(MsgPrevote, id, 2, r, common.Hash{byte(i)}))
			if !errors.Is(err, ErrFuture) {
				t.Fatalf("future: %v", err)
			}
		}
	}
	if st := f.core.Counters(); st.Buffered != 3 || st.FutureDropped != 6 {
		t.Fatalf("bound: %+v", st)
	}
	// Decide height 1 from a catch-up block; the height-2 votes are replayed.
	b := f.block(1)
	var sigs [][]byte
	for _, id := range f.ids[:3] {
		sigs = append(sigs, f.sign(id, Digest(simChainID, MsgPrecommit, 1, 0, b.Hash(), -1)))
	}
	f.mustStep(v, EncodeSyncBlock(b, EncodeCertificate(Certificate{Round: 0, Sigs: sigs})))
	rd := f.drain()
	if len(rd.Commits) != 1 || f.core.Counters().Synced != 1 || f.core.Height() != 2 {
		t.Fatalf("sync commit: %+v height %d", rd.Commits, f.core.Height())
	}
	if got := f.core.hs.rounds[0].prevotes.total; got != 2 {
		t.Fatalf("replayed prevotes at height 2 round 0: %d", got)
	}
	if err := f.step(v, f.vote(MsgPrevote, v, 1, 0, b.Hash())); !errors.Is(err, ErrStale) {
		t.Fatalf("stale: %v", err)
	}
}

func TestCoreSyncBlockChecks(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	f.drain()
	v := f.others()[0]
	b := f.block(1)
	cert := func(who ...consensus.NodeID) []byte {
		var sigs [][]byte
		for _, id := range who {
			sigs = append(sigs, f.sign(id, Digest(simChainID, MsgPrecommit, 1, 0, b.Hash(), -1)))
		}
		return EncodeCertificate(Certificate{Sigs: sigs})
	}
	if err := f.step(v, EncodeSyncBlock(b, cert(f.ids[:2]...))); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("two signatures: %v", err)
	}
	orphan := types.NewBlock(&types.Header{ParentHash: common.Hash{1}, Number: big.NewInt(1), Difficulty: new(big.Int)}, nil, nil, trie.NewStackTrie(nil))
	if err := f.step(v, EncodeSyncBlock(orphan, cert(f.ids[:3]...))); err == nil {
		t.Fatal("block on another parent accepted")
	}
	// A body that does not match the certified header is refused.
	tx := types.NewTx(&types.LegacyTx{Nonce: 1, Gas: 21000, GasPrice: new(big.Int)})
	tampered := b.WithBody(types.Body{Transactions: []*types.Transaction{tx}})
	if err := f.step(v, EncodeSyncBlock(tampered, cert(f.ids[:3]...))); !errors.Is(err, ErrMalformed) {
		t.Fatalf("tampered body: %v", err)
	}
	if f.core.Counters().BadSyncBlocks != 3 || f.core.Height() != 1 {
		t.Fatalf("stats %+v height %d", f.core.Counters(), f.core.Height())
	}
	f.mustStep(v, EncodeSyncBlock(b, cert(f.ids[:3]...)))
	if f.core.Height() != 2 {
		t.Fatal("good certificate refused")
	}
}

// TestCoreServesSync: a request for committed heights becomes a bounded,
// rate-limited ServeRequest.
func TestCoreServesSync(t *testing.T) {
	f := newFixture(t, 4, 0, func(c *Config) { c.MaxSyncBlocks = 4; c.SyncRetryTicks = 4 })
	f.core.head = Head{Number: 10, Hash: common.Hash{1}}
	f.drain()
	peer := common.Address{0xaa}
	f.mustStep(peer, EncodeSyncRequest(3))
	rd := f.drain()
	if len(rd.Serve) != 1 || rd.Serve[0] != (consensus.ServeRequest{To: peer, From: 3, Count: 4}) {
		t.Fatalf("serve: %+v", rd.Serve)
	}
	if err := f.step(peer, EncodeSyncRequest(3)); !errors.Is(err, ErrIgnored) {
		t.Fatalf("rate limit: %v", err)
	}
	if err := f.step(common.Address{0xbb}, EncodeSyncRequest(11)); !errors.Is(err, ErrIgnored) {
		t.Fatalf("beyond head: %v", err)
	}
}

// TestCoreEvidence: two different signed votes (or proposals) for one
// slot are kept as evidence that anyone can verify.
func TestCoreEvidence(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	f.drain()
	v := f.others()[0]
	f.mustStep(v, f.vote(MsgPrecommit, v, 1, 0, common.Hash{1}))
	f.mustStep(v, f.vote(MsgPrecommit, v, 1, 0, common.Hash{2}))
	f.mustStep(v, f.vote(MsgPrecommit, v, 1, 0, common.Hash{3}))
	prop := f.proposer(1, 0)
	f.mustStep(prop, f.proposal(prop, 1, 0, -1, f.block(1), nil))
	f.mustStep(prop, f.proposal(prop, 1, 0, -1, f.block(2), nil))
	ev := f.core.Evidence()
	if len(ev) != 2 {
		t.Fatalf("evidence: %v", ev)
	}
	for _, e := range ev {
		if err := e.Verify(simChainID); err != nil {
			t.Errorf("%v: %v", e, err)
		}
		if err := e.Verify(simChainID + 1); err == nil {
			t.Errorf("evidence verifies on another chain")
		}
	}
	if ev[0].Validator != v || ev[1].Validator != prop || ev[1].First.Type != MsgProposal {
		t.Fatalf("evidence: %v", ev)
	}
	// The first vote stays the one counted.
	if n := f.core.hs.rounds[0].precommits.total; n != 1 {
		t.Fatalf("equivocating votes counted %d times", n)
	}
	fake := ev[0]
	fake.Second = fake.First
	if err := fake.Verify(simChainID); !errors.Is(err, ErrBadEvidence) {
		t.Fatalf("same message twice is not evidence: %v", err)
	}
}

// TestCoreRestartNeverDoubleSigns: after a crash the core resumes from the
// saved state in the same round and step; it re-sends what it signed and
// signs nothing conflicting, even when offered another block.
func TestCoreRestartNeverDoubleSigns(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	f.drain()
	prop := f.proposer(1, 0)
	b := f.block(1)
	f.mustStep(prop, f.proposal(prop, 1, 0, -1, b, nil))
	rd := f.drain()
	saved, err := UnmarshalSavedState(rd.State)
	if err != nil {
		t.Fatal(err)
	}
	first := sent(t, rd.Messages, MsgPrevote)[0]

	c2, err := NewCore(f.core.cfg, genesis.Header(), saved)
	if err != nil {
		t.Fatal(err)
	}
	f.core = c2
	// The equivocating proposer offers another block to the restarted node.
	f.mustStep(prop, f.proposal(prop, 1, 0, -1, f.block(2), nil))
	var resent int
	for i := 0; i < 30; i++ {
		f.core.Tick()
		for _, m := range sent(t, f.drain().Messages, MsgPrevote) {
			if m.round == 0 && !bytes.Equal(m.sig, first.sig) {
				t.Fatal("signed a second prevote in round 0 after restart")
			}
			resent++
		}
	}
	if resent == 0 {
		t.Fatal("the saved prevote was never re-sent")
	}
	if f.core.Round() != 0 || f.core.hs.step != stepPrevote {
		t.Fatalf("resumed at round %d step %s", f.core.Round(), f.core.hs.step)
	}
	// A state saved for a height above head+1 means lost blocks: refuse.
	ahead := *saved
	ahead.Height = 5
	if _, err := NewCore(f.core.cfg, genesis.Header(), &ahead); !errors.Is(err, ErrStateAhead) {
		t.Fatalf("state ahead: %v", err)
	}
}

// TestCoreTimeoutsGrow: with a silent network the core changes rounds,
// each round taking longer than the one before, up to the maximum.
func TestCoreTimeoutsGrow(t *testing.T) {
	g := newFixture(t, 4, 0, func(c *Config) {
		c.ProposeTimeoutTicks, c.PrevoteTimeoutTicks, c.PrecommitTimeoutTicks = 5, 3, 3
		c.TimeoutDeltaTicks, c.MaxTimeoutTicks = 2, 12
	})
	g.drain()
	// Others send nil prevotes and precommits for every round, so that
	// the prevote and precommit timeouts run too.
	last, lastLen := uint64(0), uint64(0)
	var lens []uint64
	for tick := 0; tick < 2000 && g.core.Round() < 8; tick++ {
		r := g.core.Round()
		for _, id := range g.others()[:2] {
			g.step(id, g.vote(MsgPrevote, id, 1, r, common.Hash{}))
			g.step(id, g.vote(MsgPrecommit, id, 1, r, common.Hash{}))
		}
		g.core.Tick()
		g.drain()
		if g.core.Round() != r {
			l := g.core.now - last
			last = g.core.now
			lens = append(lens, l)
			if r > 0 && l < lastLen {
				t.Fatalf("round %d took %d ticks, round %d took %d", r, l, r-1, lastLen)
			}
			lastLen = l
		}
	}
	if g.core.Round() < 8 || lens[len(lens)-1] <= lens[0] {
		t.Fatalf("rounds %v", lens)
	}
	if st := g.core.Counters(); st.RoundChanges < 8 || st.Timeouts[2] < 8 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCoreProposeTimeoutWaitsForVerification: a proposal still being
// verified when the propose timeout fires puts the timeout off once, by
// the round's propose timeout; verified meanwhile, it is prevoted; never
// verified, the round ends with a nil prevote after the second timeout. A
// round without a proposal is not put off.
func TestCoreProposeTimeoutWaitsForVerification(t *testing.T) {
	const propose = 5
	setup := func(withProposal bool) (*fixture, *types.Block) {
		f := newFixture(t, 4, 0, func(c *Config) { c.ProposeTimeoutTicks = propose })
		f.drain()
		b := f.block(1)
		if withProposal {
			prop := f.proposer(1, 0)
			f.mustStep(prop, f.proposal(prop, 1, 0, -1, b, nil))
		}
		return f, b
	}
	// ticks advances n ticks without answering verifications, and returns
	// the prevotes sent.
	ticks := func(f *fixture, n int) []*message {
		var msgs []consensus.Message
		for range n {
			f.core.Tick()
			for f.core.HasReady() {
				msgs = append(msgs, f.core.Ready().Messages...)
				f.core.Advance()
			}
		}
		return sent(t, msgs, MsgPrevote)
	}
	f, b := setup(true)
	if pv := ticks(f, propose+1); len(pv) != 0 {
		t.Fatalf("prevoted %x while the proposal was being verified", pv[0].hash)
	}
	if st := f.core.Counters(); st.ProposeWaits != 1 || st.Timeouts[0] != 0 {
		t.Fatalf("after the first timeout: waits %d, timeouts %d", st.ProposeWaits, st.Timeouts[0])
	}
	f.core.Verified(b.Hash(), nil)
	if pv := sent(t, f.drain().Messages, MsgPrevote); len(pv) != 1 || pv[0].hash != b.Hash() {
		t.Fatalf("verified within the wait: prevotes %v, want one for the block", pv)
	}

	f, _ = setup(true)
	if pv := ticks(f, 2*propose-1); len(pv) != 0 {
		t.Fatalf("prevoted before the second timeout")
	}
	if pv := ticks(f, 2); len(pv) != 1 || pv[0].hash != (common.Hash{}) {
		t.Fatalf("never verified: prevotes %v, want one nil prevote", pv)
	}
	if st := f.core.Counters(); st.ProposeWaits != 1 || st.Timeouts[0] != 1 {
		t.Fatalf("never verified: waits %d, timeouts %d", st.ProposeWaits, st.Timeouts[0])
	}

	f, _ = setup(false)
	if pv := ticks(f, propose+1); len(pv) != 1 || pv[0].hash != (common.Hash{}) {
		t.Fatalf("no proposal: prevotes %v, want one nil prevote at the first timeout", pv)
	}
}

// TestCoreRoundSkip: messages from a weak quorum in a later round pull
// the core into that round; fewer do not.
func TestCoreRoundSkip(t *testing.T) {
	f := newFixture(t, 7, 0, nil)
	f.drain()
	o := f.others()
	// Votes of rounds beyond the window kept in memory are not stored,
	// but their rounds count.
	f.step(o[0], f.vote(MsgPrevote, o[0], 1, 5, common.Hash{}))
	f.step(o[1], f.vote(MsgPrecommit, o[1], 1, 9, common.Hash{}))
	if f.core.Round() != 0 {
		t.Fatalf("skipped on %d of 7", 2)
	}
	f.step(o[2], encodeStatus(1, 7, f.sign(o[2], Digest(simChainID, MsgStatus, 1, 7, common.Hash{}, -1))))
	if f.core.Round() != 5 {
		t.Fatalf("weak quorum at rounds >= 5: round %d", f.core.Round())
	}
}

// TestCoreObserver: a core without a key follows decisions and signs
// nothing.
func TestCoreObserver(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	obs, err := NewCore(Config{ChainID: simChainID, Self: common.Address{0x0b}, Validators: f.ids}, genesis.Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.core = obs
	b := f.block(1)
	prop := f.proposer(1, 0)
	f.mustStep(prop, f.proposal(prop, 1, 0, -1, b, nil))
	for _, id := range f.ids[:3] {
		f.mustStep(id, f.vote(MsgPrecommit, id, 1, 0, b.Hash()))
	}
	var msgs []consensus.Message
	var commits []consensus.SealedBlock
	for i := 0; i < 50; i++ {
		obs.Tick()
		rd := f.drain()
		msgs = append(msgs, rd.Messages...)
		commits = append(commits, rd.Commits...)
		if rd.State != nil {
			t.Fatal("observer saves state")
		}
	}
	if len(commits) != 1 || commits[0].Block.Hash() != b.Hash() {
		t.Fatalf("observer commits: %v", commits)
	}
	for _, m := range msgs {
		if PeekType(m.Payload) != MsgSyncRequest {
			t.Fatalf("observer sent %s", PeekType(m.Payload))
		}
	}
}

func TestSetValidatorsRules(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	if err := f.core.SetValidators(1, f.ids[:3]); !errors.Is(err, ErrPastHeight) {
		t.Fatalf("change of the height in progress: %v", err)
	}
	if err := f.core.SetValidators(5, nil); !errors.Is(err, ErrBadValidators) {
		t.Fatalf("empty set: %v", err)
	}
	if err := f.core.SetValidators(5, f.ids[:3]); err != nil {
		t.Fatal(err)
	}
	if f.core.Validators(4).Size() != 4 || f.core.Validators(5).Size() != 3 || f.core.Validators(100).Size() != 3 {
		t.Fatal("schedule")
	}
	// A later decision for an earlier height replaces the pending one.
	if err := f.core.SetValidators(3, f.ids[1:]); err != nil {
		t.Fatal(err)
	}
	if !f.core.Validators(9).Equal(f.core.Validators(3)) || f.core.Validators(2).Size() != 4 {
		t.Fatal("replacement")
	}
}

func TestSavedStateRejectsCorruption(t *testing.T) {
	b, err := MarshalSavedState(&SavedState{Height: 3, LockedRound: -1, ValidRound: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x40
		if _, err := UnmarshalSavedState(c); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	for n := 0; n < len(b); n++ {
		if _, err := UnmarshalSavedState(b[:n]); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
}

// FuzzStep: no input makes a core panic or break an invariant.
func FuzzStep(f *testing.F) {
	fx := newFixture(&testing.T{}, 4, 0, nil)
	b := fx.block(1)
	v := fx.others()[0]
	f.Add(fx.vote(MsgPrevote, v, 1, 0, b.Hash()))
	f.Add(fx.proposal(fx.proposer(1, 0), 1, 0, -1, b, nil))
	f.Add(fx.proposal(fx.proposer(1, 1), 1, 1, 0, b, [][]byte{{1}}))
	f.Add(encodeStatus(1, 3, make([]byte, 65)))
	f.Add(EncodeSyncRequest(1))
	f.Add(EncodeSyncBlock(b, EncodeCertificate(Certificate{Sigs: [][]byte{{1}}})))
	f.Fuzz(func(t *testing.T, payload []byte) {
		fx := newFixture(t, 4, 0, nil)
		fx.drain()
		fx.core.Step(v, payload)
		fx.core.Tick()
		fx.drain()
	})
}

// FuzzDecodeCertificate: the seal decoder never panics.
func FuzzDecodeCertificate(f *testing.F) {
	f.Add(EncodeCertificate(Certificate{Round: 1, Sigs: [][]byte{make([]byte, 65)}}))
	f.Add([]byte{0xc0})
	f.Fuzz(func(t *testing.T, seal []byte) {
		VerifyCertificate(simChainID, []consensus.NodeID{{1}, {2}, {3}, {4}}, 1, common.Hash{1}, seal)
	})
}

// FuzzSavedState: the state decoder never panics.
func FuzzSavedState(f *testing.F) {
	b, _ := MarshalSavedState(&SavedState{Height: 3, LockedRound: 0, LockedBlock: genesis, ValidRound: -1})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) { UnmarshalSavedState(b) })
}

// TestCoreEarlyBuild: round 0's proposer of the next height asks for its
// block halfway through the commit wait (on the decided block), and
// proposes it when round 0 starts, built early or late.
func TestCoreEarlyBuild(t *testing.T) {
	for _, late := range []bool{false, true} {
		self := newFixture(t, 4, 0, nil).proposerIndex(2, 0)
		f := newFixture(t, 4, self, func(c *Config) { c.CommitWaitTicks = 5 })
		rd := f.drain()
		for i := 0; i < 5; i++ {
			f.core.Tick()
			if r := f.drain(); r.Build != nil {
				rd.Build = r.Build
			}
		}
		prop := f.proposer(1, 0)
		b := f.block(1)
		if prop != f.self {
			f.mustStep(prop, f.proposal(prop, 1, 0, -1, b, nil))
		} else {
			f.core.Built(*rd.Build, b, nil)
		}
		f.drain()
		for _, id := range f.others()[:2] {
			f.mustStep(id, f.vote(MsgPrevote, id, 1, 0, b.Hash()))
		}
		f.drain()
		for _, id := range f.others()[:2] {
			f.mustStep(id, f.vote(MsgPrecommit, id, 1, 0, b.Hash()))
		}
		rd = f.core.Ready()
		if len(rd.Commits) != 1 || rd.Build != nil {
			t.Fatalf("late %v: the decision's Ready: commits %d, build %+v; want 1 and no build yet", late, len(rd.Commits), rd.Build)
		}
		f.core.Advance()
		var req consensus.BuildRequest
		for i := 1; i <= 2; i++ { // halfway through the 5-tick wait
			f.core.Tick()
			rd := f.drain()
			if (rd.Build != nil) != (i == 2) || f.core.hs.step != stepNewHeight {
				t.Fatalf("late %v: tick %d of the commit wait: build %+v, step %v", late, i, rd.Build, f.core.hs.step)
			}
			if rd.Build != nil {
				req = *rd.Build
			}
		}
		if req.Parent.Hash() != b.Hash() || req.Budget != time.Second {
			t.Fatalf("late %v: early build %+v, want on the decided block with a budget of 1s", late, req)
		}
		b2 := types.NewBlock(&types.Header{ParentHash: b.Hash(), Number: big.NewInt(2), Difficulty: new(big.Int), GasLimit: 1}, nil, nil, trie.NewStackTrie(nil))
		if !late {
			f.core.Built(req, b2, nil)
			if rd := f.drain(); len(sent(t, rd.Messages, MsgProposal)) != 0 {
				t.Fatal("proposed during the commit wait")
			}
		}
		var props []*message
		for i := 0; i < 4; i++ {
			f.core.Tick()
			rd := f.drain()
			if rd.Build != nil {
				t.Fatalf("late %v: a second build for round 0: %+v", late, rd.Build)
			}
			props = append(props, sent(t, rd.Messages, MsgProposal)...)
		}
		if late {
			if len(props) != 0 || f.core.hs.step != stepPropose {
				t.Fatalf("proposed before the block was built, step %v", f.core.hs.step)
			}
			f.core.Built(req, b2, nil)
			props = sent(t, f.drain().Messages, MsgProposal)
		}
		if len(props) == 0 {
			t.Fatalf("late %v: no proposal in round 0", late)
		}
		for _, p := range props { // the first, and copies re-sent
			if p.hash != b2.Hash() || p.round != 0 {
				t.Fatalf("late %v: round %d proposal of %s, want the early block %s", late, p.round, p.hash, b2.Hash())
			}
		}
	}
}

// TestCompactProposalRoundTrip: a block with an empty withdrawals list
// (as Charter's are) goes compact, and the receiver rebuilds the very
// block from notified transactions, or asks for the ones it lacks.
func TestCompactProposalRoundTrip(t *testing.T) {
	probe := newFixture(t, 4, 0, nil)
	prop := probe.proposer(1, 0)
	self := 0
	if probe.ids[0] == prop {
		self = 1
	}
	f := newFixture(t, 4, self, nil)
	f.drain()
	txs := []*types.Transaction{
		types.NewTx(&types.LegacyTx{Nonce: 1, Gas: 21000, GasPrice: big.NewInt(1)}),
		types.NewTx(&types.LegacyTx{Nonce: 2, Gas: 21000, GasPrice: big.NewInt(1)}),
	}
	header := &types.Header{ParentHash: f.head.Hash, Number: big.NewInt(1), Difficulty: new(big.Int), GasLimit: 1}
	b := types.NewBlock(header, &types.Body{Transactions: txs, Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	if !compactable(b) {
		t.Fatal("a block with an empty withdrawals list is not compactable")
	}
	sig := f.sign(prop, Digest(simChainID, MsgProposal, 1, 0, b.Hash(), -1))
	f.core.Notify(txs[:1])
	f.mustStep(prop, encodeCompactProposal(1, 0, -1, b, nil, sig))
	rd := f.drain()
	var req *message
	for _, m := range rd.Messages {
		if PeekType(m.Payload) == MsgTxRequest && m.To == prop {
			req, _ = decodeMessage(m.Payload)
		}
	}
	if req == nil || req.full || len(req.indexes) != 1 || req.indexes[0] != 1 {
		t.Fatalf("request for the missing transaction: %+v", req)
	}
	if len(sent(t, rd.Messages, MsgPrevote)) != 0 {
		t.Fatal("prevoted an incomplete proposal")
	}
	// A response with a wrong transaction is ignored; the right one completes it.
	f.mustStep(prop, encodeTxResponse(1, b.Hash(), []uint64{1}, txs[:1]))
	if rd := f.drain(); len(sent(t, rd.Messages, MsgPrevote)) != 0 {
		t.Fatal("a wrong transaction completed the block")
	}
	f.mustStep(prop, encodeTxResponse(1, b.Hash(), []uint64{1}, txs[1:]))
	rd = f.drain()
	if len(rd.Verify) != 1 || rd.Verify[0].Hash() != b.Hash() || len(rd.Verify[0].Transactions()) != 2 {
		t.Fatalf("the rebuilt block was not verified: %v", rd.Verify)
	}
	if pv := sent(t, rd.Messages, MsgPrevote); len(pv) != 1 || pv[0].hash != b.Hash() {
		t.Fatalf("prevote for the rebuilt block: %v", pv)
	}
	// Whoever holds the block answers requests for its transactions.
	if err := f.step(f.others()[0], encodeTxRequest(1, 0, b.Hash(), false, []uint64{0, 1, 7})); err != nil {
		t.Fatal(err)
	}
	var resp *message
	for _, m := range f.drain().Messages {
		if PeekType(m.Payload) == MsgTxResponse {
			resp, _ = decodeMessage(m.Payload)
		}
	}
	if resp == nil || len(resp.txs) != 2 || resp.txs[1].Hash() != txs[1].Hash() {
		t.Fatalf("response: %+v", resp)
	}
}

// TestCoreBlockTimeFromHeightStart: the block time counts from the start
// of round 0 of the height just decided, not from its decision. A height
// decided within it waits for the rest (and round 0's proposer builds
// halfway through that rest); a height whose work took longer starts the
// next round 0 at once, its proposer's build in the decision's Ready.
func TestCoreBlockTimeFromHeightStart(t *testing.T) {
	const wait = 6
	for _, work := range []int{1, 2 * wait} {
		self := newFixture(t, 4, 0, nil).proposerIndex(2, 0)
		f := newFixture(t, 4, self, func(c *Config) { c.CommitWaitTicks = wait })
		rd := f.drain()
		for i := 0; i < wait; i++ { // height 1: the whole wait from the start
			f.core.Tick()
			if r := f.drain(); r.Build != nil {
				rd.Build = r.Build
			}
		}
		if f.core.hs.step != stepPropose || f.core.hs.began != wait {
			t.Fatalf("work %d: height 1 at tick %d: step %v, began %d", work, wait, f.core.hs.step, f.core.hs.began)
		}
		b := f.block(1)
		if prop := f.proposer(1, 0); prop != f.self {
			f.mustStep(prop, f.proposal(prop, 1, 0, -1, b, nil))
		} else {
			f.core.Built(*rd.Build, b, nil)
		}
		f.drain()
		for i := 0; i < work; i++ {
			f.core.Tick()
			f.drain()
		}
		for _, typ := range []MsgType{MsgPrevote, MsgPrecommit} {
			for _, id := range f.others()[:2] {
				f.mustStep(id, f.vote(typ, id, 1, 0, b.Hash()))
			}
			if typ == MsgPrevote {
				f.drain()
			}
		}
		rd = f.core.Ready()
		f.core.Advance()
		if len(rd.Commits) != 1 {
			t.Fatalf("work %d: %d commits, want 1", work, len(rd.Commits))
		}
		decided := f.core.now
		if work >= wait {
			// The height took longer than the block time: no pause.
			if rd.Build == nil || rd.Build.Parent.Hash() != b.Hash() || f.core.hs.step != stepPropose || f.core.hs.round != 0 {
				t.Fatalf("work %d: decided after the block time: build %+v, step %v round %d; want round 0 and its build at once",
					work, rd.Build, f.core.hs.step, f.core.hs.round)
			}
			continue
		}
		if rd.Build != nil || f.core.hs.step != stepNewHeight {
			t.Fatalf("work %d: decided within the block time: build %+v, step %v; want the wait", work, rd.Build, f.core.hs.step)
		}
		left := wait - work // ticks of the block time still to run
		var built, started uint64
		for i := 0; i < wait && started == 0; i++ {
			f.core.Tick()
			r := f.drain()
			if r.Build != nil && built == 0 {
				built = f.core.now
				if r.Build.Parent.Hash() != b.Hash() {
					t.Fatalf("work %d: early build on %s, want the decided block", work, r.Build.Parent.Hash())
				}
			}
			if f.core.hs.step == stepPropose {
				started = f.core.now
			}
		}
		if want := decided + uint64(left/2); built != want {
			t.Fatalf("work %d: early build at tick %d, want %d (halfway through the rest of the wait)", work, built, want)
		}
		if want := uint64(wait + wait); started != want {
			t.Fatalf("work %d: round 0 of height 2 at tick %d, want %d (block time after height 1 began)", work, started, want)
		}
	}
}
