package snapshot

import (
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus/bft"
	"github.com/charter-ledger/charter/internal/consensus/poa"
	"github.com/charter-ledger/charter/internal/system"
)

// Trust is what a verifier knows of its network without the snapshot:
// from its genesis file.
type Trust struct {
	ChainID uint64
	// Genesis is the genesis block's hash (zero: not checked).
	Genesis common.Hash
	// Engine is the genesis's consensus engine ("": not checked).
	Engine string
	// Validators is the genesis validator set (nil: not checked, and the
	// set the snapshot's own state names is taken as it is).
	Validators []common.Address
}

// TrustFromSpec is the trust a genesis file gives; genesis is its block.
func TrustFromSpec(spec *chain.Spec, genesis common.Hash) Trust {
	return Trust{ChainID: spec.ChainID(), Genesis: genesis, Engine: spec.Consensus.Engine, Validators: spec.Consensus.Validators}
}

// Certificate is who certified a snapshot's block.
type Certificate struct {
	Validators []common.Address // the set in force at the height
	Signers    []common.Address
	Warnings   []string
}

// Certify checks a snapshot header: its chain, that the block's body
// matches its header, and that the validators in force at its height
// certified it, with the engine's own check: a bft commit certificate
// (bft.VerifyCertificate), a poa seal by an authority, or, for raft and
// solo whose seals carry no signature, the exporting node's attestation
// by the key of a validator.
//
// The validator set is read from the snapshot's own state (the
// registry's validator changes, proved by Header.StateProof against the
// block's root). When the verifier knows the genesis set, the registry's
// first set must be it, and every later set in force by the block must be
// anchored in the one before it by a handover (Header.Handovers): a block
// the earlier set certified whose proven state already lists the change.
// So the block's certificate is checked against a set that descends from
// the genesis set by certified decisions, not against a set the snapshot
// merely names. Raft and solo seals carry no signatures: their handovers
// cannot be checked, and a snapshot after a set change is accepted with a
// warning, as the exporting validator attests it.
func Certify(h *Header, trust Trust) (*types.Block, *Certificate, error) {
	if h.ChainID != trust.ChainID {
		return nil, nil, invalid("chain id %d, this network's is %d", h.ChainID, trust.ChainID)
	}
	if trust.Genesis != (common.Hash{}) && h.Genesis != trust.Genesis {
		return nil, nil, invalid("genesis %s, this network's is %s", h.Genesis.TerminalString(), trust.Genesis.TerminalString())
	}
	if trust.Engine != "" && h.Engine != trust.Engine {
		return nil, nil, invalid("engine %q, this network's is %q", h.Engine, trust.Engine)
	}
	block, err := h.DecodeBlock()
	if err != nil {
		return nil, nil, err
	}
	if err := checkBody(block); err != nil {
		return nil, nil, err
	}
	receipts, err := h.DecodeReceipts()
	if err != nil {
		return nil, nil, err
	}
	if len(receipts) != len(block.Transactions()) {
		return nil, nil, invalid("block %d: %d receipts for %d transactions", block.NumberU64(), len(receipts), len(block.Transactions()))
	}
	// The storage form leaves the type out; the consensus form has it.
	for i, tx := range block.Transactions() {
		receipts[i].Type = tx.Type()
	}
	if types.DeriveSha(receipts, trie.NewStackTrie(nil)) != block.ReceiptHash() {
		return nil, nil, invalid("block %d: receipts do not match the header", block.NumberU64())
	}
	changes, err := provenValidatorChanges(block.Root(), h.StateProof)
	if err != nil {
		return nil, nil, err
	}
	cert := &Certificate{}
	number := block.NumberU64()
	if len(changes) == 0 {
		if len(trust.Validators) == 0 {
			return nil, nil, invalid("neither the snapshot's state nor the genesis names validators (a development chain?), so nothing can certify its block")
		}
		cert.Validators = slices.Clone(trust.Validators)
	} else {
		if trust.Validators != nil && !slices.Equal(changes[0].IDs, trust.Validators) {
			return nil, nil, invalid("the state's genesis validator set differs from the genesis file's")
		}
		for _, c := range changes {
			if c.From <= number {
				cert.Validators = c.IDs
			}
		}
		if len(changes) > 1 && changes[1].From <= number {
			switch {
			case h.Engine == "bft" || h.Engine == "poa":
				if err := checkHandovers(h, changes, number); err != nil {
					return nil, nil, err
				}
			default:
				cert.Warnings = append(cert.Warnings, fmt.Sprintf("the validator set changed since genesis (%d changes); a %s seal carries no signature, so the set in force at %d is taken as the snapshot's state names it", len(changes)-1, h.Engine, number))
			}
		}
	}
	if len(cert.Validators) == 0 {
		return nil, nil, invalid("no validator set in force at %d", number)
	}
	hash := block.Hash()
	switch h.Engine {
	case "bft", "poa":
		signers, err := verifySeal(h.Engine, h.ChainID, cert.Validators, number, hash, h.Seal)
		if err != nil {
			return nil, nil, err
		}
		cert.Signers = signers
	}
	switch h.Engine {
	case "bft":
	case "poa":
		cert.Warnings = append(cert.Warnings, "a poa block is sealed by one authority; its finality comes from the blocks built on it, which a snapshot does not carry")
	case "raft", "solo":
		if len(h.Attestation) == 0 {
			return nil, nil, invalid("block %d: a %s snapshot needs the exporting validator's attestation", number, h.Engine)
		}
	default:
		return nil, nil, invalid("unknown engine %q", h.Engine)
	}
	if len(h.Attestation) > 0 {
		signer, err := recoverAddr(AttestationHash(h.ChainID, number, hash), h.Attestation)
		if err != nil {
			return nil, nil, invalid("attestation: %v", err)
		}
		if !slices.Contains(cert.Validators, signer) {
			if h.Engine == "raft" || h.Engine == "solo" {
				return nil, nil, invalid("attestation by %s, not a validator at %d", signer, number)
			}
		} else if h.Engine == "raft" || h.Engine == "solo" {
			cert.Signers = []common.Address{signer}
		}
	}
	return block, cert, nil
}

func recoverAddr(digest common.Hash, sig []byte) (common.Address, error) {
	if len(sig) != crypto.SignatureLength {
		return common.Address{}, fmt.Errorf("signature of %d bytes", len(sig))
	}
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil {
		return common.Address{}, err
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// checkBody checks that the block's transactions and withdrawals are the
// ones its header commits to (the block hash is the header's).
func checkBody(b *types.Block) error {
	if h := types.DeriveSha(b.Transactions(), trie.NewStackTrie(nil)); h != b.TxHash() {
		return invalid("block %d: transactions do not match the header", b.NumberU64())
	}
	if h := types.CalcUncleHash(b.Uncles()); h != b.UncleHash() {
		return invalid("block %d: uncles do not match the header", b.NumberU64())
	}
	if wh := b.Header().WithdrawalsHash; wh != nil {
		if b.Withdrawals() == nil || types.DeriveSha(b.Withdrawals(), trie.NewStackTrie(nil)) != *wh {
			return invalid("block %d: withdrawals do not match the header", b.NumberU64())
		}
	}
	return nil
}

// provenValidatorChanges reads the registry's validator changes out of a
// state proof.
func provenValidatorChanges(root common.Hash, nodes [][]byte) (changes []system.ValidatorChange, err error) {
	pr := &proofReader{root: root, proof: proofSet(nodes)}
	if pr.proof == nil {
		return nil, invalid("no state proof of the validator records")
	}
	key := crypto.Keccak256Hash(system.RegistryAddress[:])
	body, err := trie.VerifyProof(root, key[:], pr.proof)
	if err != nil {
		return nil, invalid("registry account proof: %v", err)
	}
	if len(body) == 0 {
		return nil, nil
	}
	acct, err := types.FullAccount(body)
	if err != nil {
		return nil, invalid("registry account: %v", err)
	}
	pr.sroot = acct.Root
	defer func() {
		// A record that does not decode makes system.State panic.
		if r := recover(); r != nil {
			changes, err = nil, invalid("registry records: %v", r)
		}
	}()
	changes = system.Read(pr).ValidatorChanges()
	if pr.err != nil {
		return nil, invalid("registry storage proof: %v", pr.err)
	}
	return changes, nil
}

// proofReader answers the registry's storage reads from a proof.
type proofReader struct {
	root, sroot common.Hash
	proof       ethdb.KeyValueReader
	err         error
}

func (p *proofReader) GetState(_ common.Address, slot common.Hash) common.Hash {
	k := crypto.Keccak256Hash(slot[:])
	v, err := trie.VerifyProof(p.sroot, k[:], p.proof)
	if err != nil {
		if p.err == nil {
			p.err = err
		}
		return common.Hash{}
	}
	return slotValue(v)
}

// verifySeal checks a bft or poa block's seal against the validator set
// in force at its height and returns who signed.
func verifySeal(engine string, chainID uint64, validators []common.Address, number uint64, hash common.Hash, seal []byte) ([]common.Address, error) {
	switch engine {
	case "bft":
		signers, err := bft.VerifyCertificate(chainID, validators, number, hash, seal)
		if err != nil {
			return nil, invalid("block %d: %v", number, err)
		}
		return signers, nil
	case "poa":
		ballot, sig, err := poa.ParseSeal(seal)
		if err != nil {
			return nil, invalid("block %d: %v", number, err)
		}
		if ballot.Height < number {
			return nil, invalid("block %d sealed at ballot %s below its height", number, ballot)
		}
		signer, err := recoverAddr(poa.SealHash(hash, ballot), sig)
		if err != nil || !slices.Contains(validators, signer) {
			return nil, invalid("block %d: seal by %s, not an authority at that height (%v)", number, signer, err)
		}
		return []common.Address{signer}, nil
	}
	return nil, invalid("engine %q has no signed seals", engine)
}

// checkHandovers follows the validator set from the genesis set to the
// one in force at number: each change k in force by then (changes[k].From
// <= number, k >= 1) needs a handover, a block below changes[k].From
// sealed by the set in force at its own height (itself anchored already),
// whose proven state lists changes[0..k] exactly as the snapshot's state
// does. changes[0] is the genesis set, checked by the caller.
func checkHandovers(h *Header, changes []system.ValidatorChange, number uint64) error {
	type evidence struct {
		header  *types.Header
		seal    []byte
		changes []system.ValidatorChange
	}
	var hos []evidence
	for i, ho := range h.Handovers {
		hdr := new(types.Header)
		if err := rlp.DecodeBytes(ho.Header, hdr); err != nil {
			return invalid("handover %d: header does not decode: %v", i, err)
		}
		proven, err := provenValidatorChanges(hdr.Root, ho.StateProof)
		if err != nil {
			return invalid("handover %d (block %d): %v", i, hdr.Number.Uint64(), err)
		}
		hos = append(hos, evidence{hdr, ho.Seal, proven})
	}
	inForce := func(known []system.ValidatorChange, at uint64) []common.Address {
		var set []common.Address
		for _, c := range known {
			if c.From <= at {
				set = c.IDs
			}
		}
		return set
	}
	for k := 1; k < len(changes) && changes[k].From <= number; k++ {
		anchored := false
		var why error
		for _, e := range hos {
			at := e.header.Number.Uint64()
			if at >= changes[k].From || len(e.changes) <= k || !sameChanges(e.changes[:k+1], changes[:k+1]) {
				continue
			}
			// Sealed by the set in force at its height, as the sets
			// anchored so far (changes[:k]) say.
			if _, err := verifySeal(h.Engine, h.ChainID, inForce(changes[:k], at), at, e.header.Hash(), e.seal); err != nil {
				why = err
				continue
			}
			anchored = true
			break
		}
		if !anchored {
			if why != nil {
				return invalid("the validator set change in force from %d is not anchored: %v", changes[k].From, why)
			}
			return invalid("the validator set changed at %d and the snapshot carries no handover that the earlier set certified; export it from a node that followed the chain through the change", changes[k].From)
		}
	}
	return nil
}

func sameChanges(a, b []system.ValidatorChange) bool {
	return slices.EqualFunc(a, b, func(x, y system.ValidatorChange) bool {
		return x.From == y.From && slices.Equal(x.IDs, y.IDs)
	})
}
