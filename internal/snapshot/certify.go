package snapshot

import (
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb"
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
// first set must be it; if governance changed the set since, the later
// sets are trusted as the certified state says, and a warning says so:
// a quorum of a set that is not the network's could certify a state that
// names it only if that quorum's keys signed, so the anchor is as strong
// as the genesis set only while the set is unchanged.
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
			cert.Warnings = append(cert.Warnings, fmt.Sprintf("the validator set changed since genesis (%d changes); the block's certificate is checked against the set in force at %d as the snapshot's state names it", len(changes)-1, number))
		}
	}
	if len(cert.Validators) == 0 {
		return nil, nil, invalid("no validator set in force at %d", number)
	}
	hash := block.Hash()
	switch h.Engine {
	case "bft":
		signers, err := bft.VerifyCertificate(h.ChainID, cert.Validators, number, hash, h.Seal)
		if err != nil {
			return nil, nil, invalid("block %d: %v", number, err)
		}
		cert.Signers = signers
	case "poa":
		ballot, sig, err := poa.ParseSeal(h.Seal)
		if err != nil {
			return nil, nil, invalid("block %d: %v", number, err)
		}
		if ballot.Height < number {
			return nil, nil, invalid("block %d sealed at ballot %s below its height", number, ballot)
		}
		signer, err := recoverAddr(poa.SealHash(hash, ballot), sig)
		if err != nil || !slices.Contains(cert.Validators, signer) {
			return nil, nil, invalid("block %d: seal by %s, not an authority at that height (%v)", number, signer, err)
		}
		cert.Signers = []common.Address{signer}
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
