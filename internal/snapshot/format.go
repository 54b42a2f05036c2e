// Package snapshot writes, reads, verifies and imports snapshots of a
// Charter chain: the block at one height with its engine seal, and the
// whole world state at that height cut into chunks, each chunk proving
// itself against the block's state root with go-ethereum's Merkle range
// proofs.
//
// A snapshot file is
//
//	magic "CHSNAP01"
//	record*: length (4 bytes, big-endian) | payload
//	trailer offset (8 bytes, big-endian): where the trailer record starts
//
// The records are the Header (RLP), the chunks in key order (RLP, one
// per record), and the Trailer (RLP): the number of chunks, each chunk's
// Keccak-256 and its record's offset. A file cut short (a crash while it
// was written) has no trailer and is refused.
//
// A chunk holds a contiguous range of the account trie (keys are the
// Keccak-256 of the addresses, values the slim account RLP), the storage
// of those accounts (contiguous ranges of each storage trie) and their
// code. A storage trie too big for one chunk continues at the start of
// the next chunk, which carries the account again with a proof of it.
// Every range comes with the edge proofs trie.VerifyRangeProof checks, so
// each chunk is verified alone when it arrives; Cursor then checks that
// the chunks follow each other with no gap and cover the whole key space.
package snapshot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// Format constants.
const (
	Magic   = "CHSNAP01"
	Version = 1

	// DefaultChunkBytes is the size chunks are cut at.
	DefaultChunkBytes = 4 << 20
	// MinChunkBytes and MaxChunkBytes bound Header.ChunkBytes.
	MinChunkBytes = 16 << 10
	MaxChunkBytes = 8 << 20
	// MaxRecordBytes bounds every record a reader accepts; a chunk may
	// exceed ChunkBytes by its proofs and by one storage slot or code.
	MaxRecordBytes = MaxChunkBytes + 1<<20
	// MaxChunks bounds the chunks of one snapshot (the trailer's size).
	MaxChunks = 1 << 20
	// MaxHeaderProofNodes bounds Header.StateProof and each handover's.
	MaxHeaderProofNodes = 4096
	// MaxHandovers bounds Header.Handovers: the validator set changes a
	// snapshot can anchor.
	MaxHandovers = 1024
)

// ErrInvalid is wrapped by every reason a snapshot is refused.
var ErrInvalid = errors.New("snapshot invalid")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Header is the first record: which chain, which block, its certificate.
type Header struct {
	Version uint64
	ChainID uint64
	Genesis common.Hash
	Engine  string // bft, poa, raft, solo
	Block   []byte // RLP of the block at the snapshot's height
	// Receipts are the block's receipts (RLP of []*types.ReceiptForStorage),
	// checked against the header's receipt root.
	Receipts []byte
	Seal     []byte // the engine seal stored with it (Ledger.Seal)
	// Attestation is the exporting node's signature, by its node key,
	// over AttestationHash (raft and solo seals carry no signature).
	Attestation []byte
	// StateProof proves the registry's validator records in the block's
	// state (account and storage proof nodes), so that the certificate
	// is checked before any chunk.
	StateProof [][]byte
	ChunkBytes uint64
	// Handovers anchor each validator set after the genesis one in the
	// set before it: for every change, a block the previous set certified
	// whose state already names the new set (see Handover). Snapshots
	// written before handovers existed have none.
	Handovers []Handover `rlp:"optional"`
}

// Handover is the evidence that the validators in force at a block
// decided a validator set change: the block (RLP of its header), its
// engine seal (a bft commit certificate, a poa seal) and a proof of the
// registry's validator records against the block's state root, which list
// the change. A node records one when it commits the block that decides a
// change (the governance proposal's execution), and a snapshot carries
// them so that an importer that knows only the genesis set can follow
// the set from the genesis to the snapshot's block.
type Handover struct {
	Header     []byte
	Seal       []byte
	StateProof [][]byte
}

// DecodeBlock returns the header's block.
func (h *Header) DecodeBlock() (*types.Block, error) {
	b := new(types.Block)
	if err := rlp.DecodeBytes(h.Block, b); err != nil {
		return nil, invalid("block does not decode: %v", err)
	}
	return b, nil
}

// DecodeReceipts returns the header's receipts.
func (h *Header) DecodeReceipts() (types.Receipts, error) {
	var stored []*types.ReceiptForStorage
	if err := rlp.DecodeBytes(h.Receipts, &stored); err != nil {
		return nil, invalid("receipts do not decode: %v", err)
	}
	out := make(types.Receipts, len(stored))
	for i, r := range stored {
		out[i] = (*types.Receipt)(r)
	}
	return out, nil
}

// Account is one account of the account trie.
type Account struct {
	Hash common.Hash // Keccak-256 of the address
	Body []byte      // slim RLP (types.SlimAccountRLP)
}

// StorageRange is a contiguous range of one account's storage trie.
type StorageRange struct {
	Account common.Hash
	// AccountBody and AccountProof are set when the account is not among
	// the chunk's Accounts (a continuation of the previous chunk): the
	// slim RLP and a proof of it in the account trie.
	AccountBody  []byte
	AccountProof [][]byte
	Origin       common.Hash // first key the range covers
	Keys         []common.Hash
	Values       [][]byte // as stored in the trie (RLP of the trimmed value)
	Proof        [][]byte // edge proofs of Origin and the last key; nil: the whole trie
}

// Chunk is one chunk of the state.
type Chunk struct {
	Origin   common.Hash // first account key the chunk covers (if it has accounts)
	Accounts []Account
	Proof    [][]byte // edge proofs of Origin and the last account
	Storage  []StorageRange
	Code     [][]byte
}

// Trailer is the last record.
type Trailer struct {
	Chunks  uint64
	Hashes  []common.Hash // Keccak-256 of each chunk record's payload
	Offsets []uint64      // file offset of each chunk record
}

// Manifest is what a snapshot offers: its header and trailer.
type Manifest struct {
	Header  Header
	Trailer Trailer
}

// ID names a snapshot's content: the Keccak-256 of its chain, block,
// receipts, chunk size and chunk hashes, without the certificate. Every
// node that exports the same height with the same chunk size makes the
// same chunks, so snapshots of one ID are served interchangeably, though
// each node holds its own certificate of the block (a bft certificate is
// any quorum of signatures) and its own attestation.
func (m *Manifest) ID() common.Hash {
	h := m.Header
	// What differs between nodes that hold the same state: the seals
	// they stored (a certificate's signers), attestations and handovers.
	h.Seal, h.Attestation, h.Handovers = nil, nil, nil
	hr, _ := rlp.EncodeToBytes(&h)
	t, _ := rlp.EncodeToBytes(m.Trailer.Hashes)
	return crypto.Keccak256Hash(hr, t)
}

var attestDomain = []byte("charter/snapshot/attest/v1")

// AttestationHash is what an exporting node signs: the chain, the height
// and the block hash.
func AttestationHash(chainID, number uint64, hash common.Hash) common.Hash {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], chainID)
	binary.BigEndian.PutUint64(buf[8:], number)
	return crypto.Keccak256Hash(attestDomain, buf[:], hash[:])
}

// writer writes records and remembers their offsets.
type writer struct {
	w   *bufio.Writer
	off uint64
}

func newWriter(w io.Writer) (*writer, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString(Magic); err != nil {
		return nil, err
	}
	return &writer{w: bw, off: uint64(len(Magic))}, nil
}

func (w *writer) record(payload []byte) (uint64, error) {
	if len(payload) > MaxRecordBytes {
		return 0, fmt.Errorf("record of %d bytes exceeds %d", len(payload), MaxRecordBytes)
	}
	at := w.off
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(payload)))
	if _, err := w.w.Write(n[:]); err != nil {
		return 0, err
	}
	if _, err := w.w.Write(payload); err != nil {
		return 0, err
	}
	w.off += 4 + uint64(len(payload))
	return at, nil
}

func (w *writer) finish(trailerAt uint64) error {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], trailerAt)
	if _, err := w.w.Write(n[:]); err != nil {
		return err
	}
	return w.w.Flush()
}

// File is an open snapshot file.
type File struct {
	r         io.ReaderAt
	size      int64
	trailerAt uint64
	Manifest  Manifest
}

// OpenFile opens the snapshot file at path. The caller closes the returned
// *os.File once it is done with the File; on error nothing is left open.
func OpenFile(path string) (*File, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	sf, err := Open(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return sf, f, nil
}

// Open reads a snapshot's header and trailer from r of the given size.
func Open(r io.ReaderAt, size int64) (*File, error) {
	if size < int64(len(Magic))+8 {
		return nil, invalid("file of %d bytes is too short", size)
	}
	magic := make([]byte, len(Magic))
	if _, err := r.ReadAt(magic, 0); err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, invalid("not a Charter snapshot (magic %q)", magic)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, err
	}
	f := &File{r: r, size: size}
	hdr, next, err := f.readRecord(uint64(len(Magic)))
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if err := rlp.DecodeBytes(hdr, &f.Manifest.Header); err != nil {
		return nil, invalid("header does not decode: %v", err)
	}
	h := &f.Manifest.Header
	if h.Version != Version {
		return nil, invalid("format version %d, this build reads %d", h.Version, Version)
	}
	if h.ChunkBytes < MinChunkBytes || h.ChunkBytes > MaxChunkBytes {
		return nil, invalid("chunk size %d outside %d..%d", h.ChunkBytes, MinChunkBytes, MaxChunkBytes)
	}
	if len(h.StateProof) > MaxHeaderProofNodes {
		return nil, invalid("%d state proof nodes", len(h.StateProof))
	}
	if len(h.Handovers) > MaxHandovers {
		return nil, invalid("%d validator set handovers, at most %d", len(h.Handovers), MaxHandovers)
	}
	for i, ho := range h.Handovers {
		if len(ho.StateProof) > MaxHeaderProofNodes {
			return nil, invalid("handover %d: %d state proof nodes", i, len(ho.StateProof))
		}
	}
	at := binary.BigEndian.Uint64(tail[:])
	if at < next || at >= uint64(size)-8 {
		return nil, invalid("trailer offset %d out of the file (cut short by a crash while it was written?)", at)
	}
	f.trailerAt = at
	tr, end, err := f.readRecord(at)
	if err != nil {
		return nil, fmt.Errorf("trailer: %w", err)
	}
	if end != uint64(size)-8 {
		return nil, invalid("trailer does not end the file")
	}
	t := &f.Manifest.Trailer
	if err := rlp.DecodeBytes(tr, t); err != nil {
		return nil, invalid("trailer does not decode: %v", err)
	}
	if t.Chunks == 0 || t.Chunks > MaxChunks || uint64(len(t.Hashes)) != t.Chunks || uint64(len(t.Offsets)) != t.Chunks {
		return nil, invalid("trailer lists %d chunks, %d hashes, %d offsets", t.Chunks, len(t.Hashes), len(t.Offsets))
	}
	prev := next
	for i, o := range t.Offsets {
		if o < prev || o >= at {
			return nil, invalid("chunk %d offset %d out of order", i, o)
		}
		prev = o + 4
	}
	return f, nil
}

func (f *File) readRecord(at uint64) (payload []byte, next uint64, err error) {
	var n [4]byte
	if at+4 > uint64(f.size) {
		return nil, 0, invalid("record at %d past the end", at)
	}
	if _, err := f.r.ReadAt(n[:], int64(at)); err != nil {
		return nil, 0, err
	}
	l := uint64(binary.BigEndian.Uint32(n[:]))
	if l > MaxRecordBytes || at+4+l > uint64(f.size) {
		return nil, 0, invalid("record at %d of %d bytes out of bounds", at, l)
	}
	buf := make([]byte, l)
	if _, err := f.r.ReadAt(buf, int64(at+4)); err != nil {
		return nil, 0, err
	}
	return buf, at + 4 + l, nil
}

// ChunkSize is the size of chunk i's record, from the offsets alone.
func (f *File) ChunkSize(i uint64) int {
	t := &f.Manifest.Trailer
	if i >= t.Chunks {
		return 0
	}
	end := f.trailerAt
	if i+1 < t.Chunks {
		end = t.Offsets[i+1]
	}
	return int(end - t.Offsets[i])
}

// RawChunk returns the encoded chunk i, checked against its hash.
func (f *File) RawChunk(i uint64) ([]byte, error) {
	t := &f.Manifest.Trailer
	if i >= t.Chunks {
		return nil, fmt.Errorf("chunk %d of %d", i, t.Chunks)
	}
	raw, _, err := f.readRecord(t.Offsets[i])
	if err != nil {
		return nil, err
	}
	if crypto.Keccak256Hash(raw) != t.Hashes[i] {
		return nil, invalid("chunk %d does not match its hash", i)
	}
	return raw, nil
}

// DecodeChunk parses an encoded chunk.
func DecodeChunk(raw []byte) (*Chunk, error) {
	if len(raw) > MaxRecordBytes {
		return nil, invalid("chunk of %d bytes", len(raw))
	}
	c := new(Chunk)
	if err := rlp.DecodeBytes(raw, c); err != nil {
		return nil, invalid("chunk does not decode: %v", err)
	}
	return c, nil
}
