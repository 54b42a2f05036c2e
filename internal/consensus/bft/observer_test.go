package bft

import (
	"errors"
	"slices"
	"testing"

	"github.com/charter-ledger/charter/internal/consensus"
)

// An observer is a node whose key is in no validator set: it follows the
// chain by the validators' commit certificates and never counts.

// TestKeyedObserverNeverSigns: a node with a key that is not a validator
// (an observer node of the read tier) commits what the validators decide
// and sends nothing but catch-up requests.
func TestKeyedObserverNeverSigns(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	obsKey := simKeys[10]
	obs, err := NewCore(Config{ChainID: simChainID, Signer: NewKeySigner(obsKey), Validators: f.ids}, genesis.Header(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Self() != keyID(obsKey) || obs.hs.validator {
		t.Fatalf("observer %s counts itself a validator", obs.Self())
	}
	f.core = obs
	var msgs []consensus.Message
	var commits []consensus.SealedBlock
	collect := func() {
		rd := f.drain()
		msgs = append(msgs, rd.Messages...)
		commits = append(commits, rd.Commits...)
	}
	collect()
	for h := uint64(1); h <= 3; h++ {
		f.head = obs.Tip()
		b := f.block(byte(h))
		prop := f.proposer(h, 0)
		f.mustStep(prop, f.proposal(prop, h, 0, -1, b, nil))
		for _, id := range f.ids[:3] {
			f.mustStep(id, f.vote(MsgPrecommit, id, h, 0, b.Hash()))
		}
		collect()
		for i := 0; i < 20; i++ {
			obs.Tick()
			collect()
		}
		if len(commits) != int(h) || commits[h-1].Block.Hash() != b.Hash() {
			t.Fatalf("height %d: observer committed %d blocks", h, len(commits))
		}
		if _, err := VerifyCertificate(simChainID, f.ids, h, b.Hash(), commits[h-1].Seal); err != nil {
			t.Fatalf("height %d: observer's seal: %v", h, err)
		}
	}
	for _, m := range msgs {
		if typ := PeekType(m.Payload); typ != MsgSyncRequest {
			t.Fatalf("observer sent %s", typ)
		}
	}
}

// TestObserverVotesNeverCount: an observer's prevotes and precommits,
// sent by itself or relayed by a validator, are refused; two validators'
// precommits and the observer's do not decide, a third validator's does,
// and a certificate that needs the observer's signature is refused.
func TestObserverVotesNeverCount(t *testing.T) {
	f := newFixture(t, 4, 0, nil)
	obsKey := simKeys[10]
	obs := keyID(obsKey)
	f.keys[obs] = obsKey
	f.drain()
	b := f.block(1)
	prop := f.proposer(1, 0)
	if prop == f.self {
		t.Fatal("fixture: self proposes height 1")
	}
	f.mustStep(prop, f.proposal(prop, 1, 0, -1, b, nil))
	f.drain()
	o := f.others()
	relay := o[0]

	// Prevotes: self's and one other validator's, plus the observer's
	// (direct and relayed), would be a quorum if the observer counted.
	for _, from := range []consensus.NodeID{obs, relay} {
		if err := f.step(from, f.vote(MsgPrevote, obs, 1, 0, b.Hash())); !errors.Is(err, ErrNotValidator) {
			t.Fatalf("observer's prevote from %s: %v, want ErrNotValidator", from, err)
		}
	}
	f.mustStep(o[1], f.vote(MsgPrevote, o[1], 1, 0, b.Hash()))
	rd := f.drain()
	for _, m := range sent(t, rd.Messages, MsgPrecommit) {
		if m.hash == b.Hash() {
			t.Fatal("precommitted on two validators' prevotes and an observer's")
		}
	}

	// Precommits: two validators' and the observer's do not decide.
	for _, from := range []consensus.NodeID{obs, relay} {
		if err := f.step(from, f.vote(MsgPrecommit, obs, 1, 0, b.Hash())); !errors.Is(err, ErrNotValidator) {
			t.Fatalf("observer's precommit from %s: %v, want ErrNotValidator", from, err)
		}
	}
	f.mustStep(o[0], f.vote(MsgPrecommit, o[0], 1, 0, b.Hash()))
	f.mustStep(o[1], f.vote(MsgPrecommit, o[1], 1, 0, b.Hash()))
	if rd := f.drain(); len(rd.Commits) != 0 {
		t.Fatal("decided on two validators' precommits and an observer's")
	}

	// A sync block whose certificate holds the observer's signature as the
	// third is refused, by this validator and by VerifyCertificate.
	sig := func(id consensus.NodeID) []byte {
		return f.sign(id, Digest(simChainID, MsgPrecommit, 1, 0, b.Hash(), -1))
	}
	forged := EncodeCertificate(Certificate{Round: 0, Sigs: [][]byte{sig(o[0]), sig(o[1]), sig(obs)}})
	if _, err := VerifyCertificate(simChainID, f.ids, 1, b.Hash(), forged); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("certificate with an observer's signature: %v", err)
	}
	bad := f.core.Counters().BadSyncBlocks
	if err := f.step(relay, EncodeSyncBlock(b, forged)); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("sync block with an observer's signature: %v", err)
	}
	if f.core.Counters().BadSyncBlocks != bad+1 {
		t.Fatal("forged sync block not counted")
	}
	if rd := f.drain(); len(rd.Commits) != 0 {
		t.Fatal("decided on a forged certificate")
	}

	// A third validator's precommit decides; the observer is not a signer.
	f.mustStep(o[2], f.vote(MsgPrecommit, o[2], 1, 0, b.Hash()))
	rd = f.drain()
	if len(rd.Commits) != 1 || rd.Commits[0].Block.Hash() != b.Hash() {
		t.Fatalf("no decision on three validators' precommits: %d commits", len(rd.Commits))
	}
	signers, err := VerifyCertificate(simChainID, f.ids, 1, b.Hash(), rd.Commits[0].Seal)
	if err != nil || slices.Contains(signers, obs) {
		t.Fatalf("certificate signers %v (%v) include the observer", signers, err)
	}
}
