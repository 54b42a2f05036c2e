package bft

import (
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/consensus"
)

// MsgType is the first byte of every bft message on the wire.
type MsgType uint8

// Message types. Proposal, Prevote, Precommit and Status are signed by a
// validator's node key; SyncRequest is a plain request (any peer may ask),
// and SyncBlock is authenticated by the commit certificate it carries.
const (
	MsgProposal MsgType = 1 + iota
	MsgPrevote
	MsgPrecommit
	MsgStatus
	MsgSyncRequest
	MsgSyncBlock
	// MsgCompactProposal is a proposal that carries its block's header and
	// transaction hashes instead of the transactions (Config.Compact):
	// the same signature, over the same block hash, as the full one. The
	// receiver takes the transactions from those its pool notified, and
	// asks the proposer for the rest (MsgTxRequest).
	MsgCompactProposal
	// MsgTxRequest asks a peer that holds a proposed block for some of its
	// transactions, by index, or for the full proposal.
	MsgTxRequest
	// MsgTxResponse answers a MsgTxRequest with transactions of a block,
	// each checked against the hash the compact proposal gave.
	MsgTxResponse

	numMsgTypes = int(MsgTxResponse) + 1
)

// Bounds of the compact proposal messages.
const (
	// MaxCompactTxs bounds the transaction hashes of a compact proposal
	// (a block of more is sent full).
	MaxCompactTxs = 1 << 17
	// MaxTxRequest bounds the indexes of one MsgTxRequest and the
	// transactions of one MsgTxResponse (more missing: the full proposal
	// is asked for).
	MaxTxRequest = 1 << 14
)

func (t MsgType) String() string {
	switch t {
	case MsgProposal:
		return "proposal"
	case MsgPrevote:
		return "prevote"
	case MsgPrecommit:
		return "precommit"
	case MsgStatus:
		return "status"
	case MsgSyncRequest:
		return "sync-request"
	case MsgSyncBlock:
		return "sync-block"
	case MsgCompactProposal:
		return "compact-proposal"
	case MsgTxRequest:
		return "tx-request"
	case MsgTxResponse:
		return "tx-response"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// MaxRound bounds round numbers on the wire, so that round arithmetic never
// overflows and a Byzantine validator cannot name an absurd round.
const MaxRound = 1 << 30

// Errors for messages that are dropped. Step returns them (wrapped) so
// callers and tests can tell why; none of them is fatal.
var (
	ErrMalformed    = errors.New("bft: malformed message")
	ErrTooLarge     = errors.New("bft: message too large")
	ErrBadSignature = errors.New("bft: bad signature")
	ErrNotValidator = errors.New("bft: signer is not a validator")
	ErrStale        = errors.New("bft: stale height")
	ErrFuture       = errors.New("bft: kept for later (future height, or held until Advance)")
	ErrDuplicate    = errors.New("bft: duplicate message")
	ErrWrongLeader  = errors.New("bft: proposal not from the round's proposer")
	ErrIgnored      = errors.New("bft: message ignored")
)

// signDomain separates bft signatures from any other use of a node key.
var signDomain = [16]byte{'c', 'h', 'a', 'r', 't', 'e', 'r', '/', 'b', 'f', 't', '/', 'v', '1', 0, 0}

// Digest is the 32-byte hash a validator signs:
//
//	keccak256(domain[16] || chainID[8] || type[1] || height[8] || round[8] || hash[32] || validRound+1[8])
//
// integers big-endian; hash is the block hash (zero for a nil vote and for
// Status); validRound+1 is 0 except in a proposal that re-proposes a block
// with a proof-of-lock round. Chain id, height, round and type are all
// inside, so a signature is never valid in another place.
func Digest(chainID uint64, typ MsgType, height uint64, round int64, hash common.Hash, validRound int64) common.Hash {
	var b [16 + 8 + 1 + 8 + 8 + 32 + 8]byte
	copy(b[:16], signDomain[:])
	binary.BigEndian.PutUint64(b[16:], chainID)
	b[24] = byte(typ)
	binary.BigEndian.PutUint64(b[25:], height)
	binary.BigEndian.PutUint64(b[33:], uint64(round))
	copy(b[41:], hash[:])
	binary.BigEndian.PutUint64(b[73:], uint64(validRound+1))
	return crypto.Keccak256Hash(b[:])
}

// Signer signs digests with a validator's node key. Implementations must
// be deterministic per digest or not: the core never relies on it.
type Signer interface {
	// ID is the address the signatures recover to.
	ID() consensus.NodeID
	// Sign returns a 65-byte [R || S || V] secp256k1 signature of digest.
	Sign(digest common.Hash) ([]byte, error)
}

// KeySigner signs with an in-memory secp256k1 key.
type KeySigner struct {
	key *ecdsa.PrivateKey
	id  consensus.NodeID
}

// NewKeySigner wraps a node key.
func NewKeySigner(key *ecdsa.PrivateKey) *KeySigner {
	return &KeySigner{key: key, id: crypto.PubkeyToAddress(key.PublicKey)}
}

// ID implements Signer.
func (s *KeySigner) ID() consensus.NodeID { return s.id }

// Sign implements Signer (RFC 6979 deterministic signatures).
func (s *KeySigner) Sign(digest common.Hash) ([]byte, error) { return crypto.Sign(digest[:], s.key) }

// Recoverer returns the id that signed digest, or an error. It must be a
// pure function of its inputs (a cache in front of RecoverSigner is fine).
type Recoverer func(digest common.Hash, sig []byte) (consensus.NodeID, error)

var secp256k1HalfN = new(big.Int).Rsh(crypto.S256().Params().N, 1)

// RecoverSigner is the default Recoverer. It rejects signatures that are
// not exactly 65 bytes, have a recovery id other than 0 or 1, or a high S
// value (malleated copies of a valid signature).
func RecoverSigner(digest common.Hash, sig []byte) (consensus.NodeID, error) {
	if len(sig) != crypto.SignatureLength {
		return consensus.NodeID{}, fmt.Errorf("%w: length %d", ErrBadSignature, len(sig))
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if !crypto.ValidateSignatureValues(sig[64], r, s, true) || s.Cmp(secp256k1HalfN) > 0 {
		return consensus.NodeID{}, fmt.Errorf("%w: values out of range", ErrBadSignature)
	}
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil {
		return consensus.NodeID{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}

// Wire bodies. Rounds travel as uint64; a validRound travels as
// validRound+1 so that "none" (-1) is 0.

type voteWire struct {
	Height uint64
	Round  uint64
	Hash   common.Hash
	Sig    []byte
}

type proposalWire struct {
	Height     uint64
	Round      uint64
	ValidRound uint64 // validRound+1; 0 = none
	Block      *types.Block
	// Justification holds the prevote signatures, for (Height, ValidRound,
	// Block hash), of a quorum: the proof that the re-proposed block was
	// prevoted by a quorum in ValidRound. Empty when ValidRound is none.
	Justification [][]byte
	Sig           []byte
}

type statusWire struct {
	Height uint64
	Round  uint64
	Sig    []byte
}

type syncRequestWire struct {
	Height uint64 // first height wanted
}

type syncBlockWire struct {
	Block *types.Block
	Seal  []byte
}

type compactProposalWire struct {
	Height        uint64
	Round         uint64
	ValidRound    uint64 // validRound+1; 0 = none
	Header        *types.Header
	TxHashes      []common.Hash
	Justification [][]byte
	Sig           []byte
}

type txRequestWire struct {
	Height  uint64
	Round   uint64
	Hash    common.Hash // the block
	Full    bool        // the full proposal, not transactions
	Indexes []uint64
}

type txResponseWire struct {
	Height  uint64
	Hash    common.Hash
	Indexes []uint64
	Txs     [][]byte // binary encoding, one per index
}

// message is a decoded message. Fields that do not apply to its type are
// zero. signer is set only after the signature has been checked.
type message struct {
	typ        MsgType
	height     uint64
	round      int64
	hash       common.Hash // block hash (proposal, votes); zero = nil vote
	validRound int64       // proposal: -1 = none
	block      *types.Block
	just       [][]byte
	sig        []byte
	seal       []byte
	signer     consensus.NodeID
	payload    []byte
	// Compact proposal: the header and the hashes of the transactions
	// (block is nil until they are all known). Tx request: full and
	// indexes. Tx response: indexes and txs.
	header   *types.Header
	txHashes []common.Hash
	full     bool
	indexes  []uint64
	txs      []*types.Transaction
}

func (m *message) digest(chainID uint64) common.Hash {
	vr := int64(-1)
	typ := m.typ
	if typ == MsgCompactProposal {
		typ = MsgProposal // one signature for both forms
	}
	if typ == MsgProposal {
		vr = m.validRound
	}
	return Digest(chainID, typ, m.height, m.round, m.hash, vr)
}

func encode(typ MsgType, body any) []byte {
	b, err := rlp.EncodeToBytes(body)
	if err != nil {
		// Encoding our own well-formed structs cannot fail.
		panic(fmt.Sprintf("bft: encode %s: %v", typ, err))
	}
	return append([]byte{byte(typ)}, b...)
}

func checkRound(r uint64) (int64, error) {
	if r > MaxRound {
		return 0, fmt.Errorf("%w: round %d above %d", ErrMalformed, r, MaxRound)
	}
	return int64(r), nil
}

// decodeMessage parses a payload without checking signatures. The result
// keeps payload (the caller must not modify it afterwards).
func decodeMessage(payload []byte) (*message, error) {
	if len(payload) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(payload))
	}
	m := &message{typ: MsgType(payload[0]), payload: payload, validRound: -1}
	body := payload[1:]
	var err error
	switch m.typ {
	case MsgPrevote, MsgPrecommit:
		var w voteWire
		if err := rlp.DecodeBytes(body, &w); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.typ, err)
		}
		m.height, m.hash, m.sig = w.Height, w.Hash, w.Sig
		if m.round, err = checkRound(w.Round); err != nil {
			return nil, err
		}
	case MsgProposal:
		var w proposalWire
		if err := rlp.DecodeBytes(body, &w); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.typ, err)
		}
		if w.Block == nil || w.Block.Number() == nil {
			return nil, fmt.Errorf("%w: proposal without block", ErrMalformed)
		}
		m.height, m.block, m.just, m.sig = w.Height, w.Block, w.Justification, w.Sig
		if m.round, err = checkRound(w.Round); err != nil {
			return nil, err
		}
		if w.ValidRound > 0 {
			vr, err := checkRound(w.ValidRound - 1)
			if err != nil {
				return nil, err
			}
			if vr >= m.round {
				return nil, fmt.Errorf("%w: valid round %d not below round %d", ErrMalformed, vr, m.round)
			}
			m.validRound = vr
		}
		if m.validRound < 0 && len(m.just) > 0 {
			return nil, fmt.Errorf("%w: justification without valid round", ErrMalformed)
		}
		m.hash = m.block.Hash()
	case MsgStatus:
		var w statusWire
		if err := rlp.DecodeBytes(body, &w); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.typ, err)
		}
		m.height, m.sig = w.Height, w.Sig
		if m.round, err = checkRound(w.Round); err != nil {
			return nil, err
		}
	case MsgSyncRequest:
		var w syncRequestWire
		if err := rlp.DecodeBytes(body, &w); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.typ, err)
		}
		m.height = w.Height
	case MsgSyncBlock:
		var w syncBlockWire
		if err := rlp.DecodeBytes(body, &w); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.typ, err)
		}
		if w.Block == nil || w.Block.Number() == nil {
			return nil, fmt.Errorf("%w: sync block without block", ErrMalformed)
		}
		m.block, m.seal = w.Block, w.Seal
		m.height = w.Block.NumberU64()
		m.hash = w.Block.Hash()
	case MsgCompactProposal:
		var w compactProposalWire
		if err := rlp.DecodeBytes(body, &w); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.typ, err)
		}
		if w.Header == nil || w.Header.Number == nil || len(w.TxHashes) == 0 || len(w.TxHashes) > MaxCompactTxs {
			return nil, fmt.Errorf("%w: compact proposal without header, or with %d transactions", ErrMalformed, len(w.TxHashes))
		}
		m.height, m.header, m.txHashes, m.just, m.sig = w.Height, w.Header, w.TxHashes, w.Justification, w.Sig
		if m.round, err = checkRound(w.Round); err != nil {
			return nil, err
		}
		if m.validRound, err = checkValidRound(w.ValidRound, m.round, len(m.just)); err != nil {
			return nil, err
		}
		m.hash = w.Header.Hash()
	case MsgTxRequest:
		var w txRequestWire
		if err := rlp.DecodeBytes(body, &w); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.typ, err)
		}
		if len(w.Indexes) > MaxTxRequest || (!w.Full && len(w.Indexes) == 0) {
			return nil, fmt.Errorf("%w: transaction request for %d", ErrMalformed, len(w.Indexes))
		}
		m.height, m.hash, m.full, m.indexes = w.Height, w.Hash, w.Full, w.Indexes
		if m.round, err = checkRound(w.Round); err != nil {
			return nil, err
		}
	case MsgTxResponse:
		var w txResponseWire
		if err := rlp.DecodeBytes(body, &w); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, m.typ, err)
		}
		if len(w.Indexes) != len(w.Txs) || len(w.Txs) == 0 || len(w.Txs) > MaxTxRequest {
			return nil, fmt.Errorf("%w: transaction response of %d indexes, %d transactions", ErrMalformed, len(w.Indexes), len(w.Txs))
		}
		m.height, m.hash, m.indexes = w.Height, w.Hash, w.Indexes
		m.txs = make([]*types.Transaction, len(w.Txs))
		for i, raw := range w.Txs {
			tx := new(types.Transaction)
			if err := tx.UnmarshalBinary(raw); err != nil {
				return nil, fmt.Errorf("%w: transaction %d: %v", ErrMalformed, i, err)
			}
			m.txs[i] = tx
		}
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrMalformed, payload[0])
	}
	return m, nil
}

// checkValidRound decodes a proposal's validRound+1 against its round
// and justification.
func checkValidRound(w uint64, round int64, just int) (int64, error) {
	vr := int64(-1)
	if w > 0 {
		r, err := checkRound(w - 1)
		if err != nil {
			return 0, err
		}
		if r >= round {
			return 0, fmt.Errorf("%w: valid round %d not below round %d", ErrMalformed, r, round)
		}
		vr = r
	}
	if vr < 0 && just > 0 {
		return 0, fmt.Errorf("%w: justification without valid round", ErrMalformed)
	}
	return vr, nil
}

// compactable reports whether a block travels in a compact proposal: it
// has transactions, and nothing else in its body (an empty withdrawals
// list, which the header's withdrawals root tells, is rebuilt).
func compactable(b *types.Block) bool {
	n := len(b.Transactions())
	return n > 0 && n <= MaxCompactTxs && len(b.Uncles()) == 0 && len(b.Withdrawals()) == 0
}

// compactBody is the body of a compact proposal's block: its
// transactions, and an empty withdrawals list if the header has a
// withdrawals root (checkBody then checks it is the empty list's).
func compactBody(h *types.Header, txs []*types.Transaction) types.Body {
	body := types.Body{Transactions: txs}
	if h.WithdrawalsHash != nil {
		body.Withdrawals = []*types.Withdrawal{}
	}
	return body
}

func encodeCompactProposal(height uint64, round, validRound int64, block *types.Block, just [][]byte, sig []byte) []byte {
	hashes := make([]common.Hash, len(block.Transactions()))
	for i, tx := range block.Transactions() {
		hashes[i] = tx.Hash()
	}
	return encode(MsgCompactProposal, &compactProposalWire{
		Height: height, Round: uint64(round), ValidRound: uint64(validRound + 1),
		Header: block.Header(), TxHashes: hashes, Justification: just, Sig: sig,
	})
}

func encodeTxRequest(height uint64, round int64, hash common.Hash, full bool, indexes []uint64) []byte {
	return encode(MsgTxRequest, &txRequestWire{Height: height, Round: uint64(round), Hash: hash, Full: full, Indexes: indexes})
}

func encodeTxResponse(height uint64, hash common.Hash, indexes []uint64, txs []*types.Transaction) []byte {
	raw := make([][]byte, len(txs))
	for i, tx := range txs {
		b, err := tx.MarshalBinary()
		if err != nil {
			panic(fmt.Sprintf("bft: encode transaction: %v", err))
		}
		raw[i] = b
	}
	return encode(MsgTxResponse, &txResponseWire{Height: height, Hash: hash, Indexes: indexes, Txs: raw})
}

// encodeVote returns the wire form of a signed vote.
func encodeVote(typ MsgType, height uint64, round int64, hash common.Hash, sig []byte) []byte {
	return encode(typ, &voteWire{Height: height, Round: uint64(round), Hash: hash, Sig: sig})
}

func encodeProposal(height uint64, round, validRound int64, block *types.Block, just [][]byte, sig []byte) []byte {
	return encode(MsgProposal, &proposalWire{
		Height: height, Round: uint64(round), ValidRound: uint64(validRound + 1),
		Block: block, Justification: just, Sig: sig,
	})
}

func encodeStatus(height uint64, round int64, sig []byte) []byte {
	return encode(MsgStatus, &statusWire{Height: height, Round: uint64(round), Sig: sig})
}

// EncodeSyncRequest is the request of a node that lacks heights from
// height on.
func EncodeSyncRequest(height uint64) []byte {
	return encode(MsgSyncRequest, &syncRequestWire{Height: height})
}

// EncodeSyncBlock is the answer to a sync request: one committed block and
// its seal (the commit certificate), as Host.BlockByNumber returns them.
func EncodeSyncBlock(block *types.Block, seal []byte) []byte {
	return encode(MsgSyncBlock, &syncBlockWire{Block: block, Seal: seal})
}

// PeekType returns the type byte of a payload, for metrics at the edge.
func PeekType(payload []byte) MsgType {
	if len(payload) == 0 {
		return 0
	}
	return MsgType(payload[0])
}
