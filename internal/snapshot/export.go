package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/ethereum/go-ethereum/trie/trienode"
	"github.com/ethereum/go-ethereum/triedb/database"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
)

// Source is a ledger a snapshot is exported from: *ledger.Ledger for a
// height inside its kept window (or any height of an archive), or a
// *ledger.StateView, which keeps its height's state readable however long
// Export runs. The state at the exported block's root must stay readable
// while Export runs.
type Source interface {
	Spec() *chain.Spec
	Genesis() *types.Block
	BlockByNumber(number uint64) *types.Block
	Seal(number uint64) []byte
	Receipts(number uint64) (types.Receipts, error)
	NodeDatabase() database.NodeDatabase
	Code(hash common.Hash) []byte
}

// ExportOptions tune Export.
type ExportOptions struct {
	// ChunkBytes is where chunks are cut (0: DefaultChunkBytes).
	ChunkBytes int
	// Attest signs AttestationHash with the node key (nil: no
	// attestation; raft and solo snapshots then cannot be verified).
	Attest func(digest common.Hash) ([]byte, error)
	// Context stops a long export (nil: never).
	Context context.Context
	// Handovers anchor the validator sets after the genesis one
	// (LoadHandovers of the exporting node's data directory).
	Handovers []Handover
}

// Export writes the snapshot of the block at height to w. The output is
// a function of the state and ChunkBytes alone, so every node exports
// the same chunks for a height.
func Export(w io.Writer, src Source, height uint64, opts ExportOptions) (*Manifest, error) {
	if opts.ChunkBytes == 0 {
		opts.ChunkBytes = DefaultChunkBytes
	}
	if opts.ChunkBytes < MinChunkBytes || opts.ChunkBytes > MaxChunkBytes {
		return nil, fmt.Errorf("chunk size %d outside %d..%d", opts.ChunkBytes, MinChunkBytes, MaxChunkBytes)
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	block := src.BlockByNumber(height)
	if block == nil {
		return nil, fmt.Errorf("block %d is not committed here", height)
	}
	spec := src.Spec()
	raw, err := rlp.EncodeToBytes(block)
	if err != nil {
		return nil, err
	}
	receipts, err := src.Receipts(height)
	if err != nil {
		return nil, fmt.Errorf("receipts of block %d: %w", height, err)
	}
	stored := make([]*types.ReceiptForStorage, len(receipts))
	for i, r := range receipts {
		stored[i] = (*types.ReceiptForStorage)(r)
	}
	rraw, err := rlp.EncodeToBytes(stored)
	if err != nil {
		return nil, err
	}
	hdr := Header{
		Version: Version, ChainID: spec.ChainID(), Genesis: src.Genesis().Hash(),
		Engine: spec.Consensus.Engine, Block: raw, Receipts: rraw, Seal: src.Seal(height),
		ChunkBytes: uint64(opts.ChunkBytes), Handovers: opts.Handovers,
	}
	if opts.Attest != nil {
		if hdr.Attestation, err = opts.Attest(AttestationHash(hdr.ChainID, height, block.Hash())); err != nil {
			return nil, fmt.Errorf("attest: %w", err)
		}
	}
	root := block.Root()
	tdb := src.NodeDatabase()
	acc, err := trie.New(trie.StateTrieID(root), tdb)
	if err != nil {
		return nil, fmt.Errorf("state of block %d is not readable here (outside the kept state window?): %w", height, err)
	}
	if hdr.StateProof, err = validatorProof(root, tdb, acc); err != nil {
		return nil, fmt.Errorf("prove the validator records: %w", err)
	}
	ww, err := newWriter(w)
	if err != nil {
		return nil, err
	}
	hraw, err := rlp.EncodeToBytes(&hdr)
	if err != nil {
		return nil, err
	}
	if _, err := ww.record(hraw); err != nil {
		return nil, err
	}
	m := &Manifest{Header: hdr}
	e := &exporter{root: root, tdb: tdb, acc: acc, src: src, max: opts.ChunkBytes, ctx: opts.Context,
		emit: func(c *Chunk) error {
			raw, err := rlp.EncodeToBytes(c)
			if err != nil {
				return err
			}
			at, err := ww.record(raw)
			if err != nil {
				return err
			}
			m.Trailer.Hashes = append(m.Trailer.Hashes, crypto.Keccak256Hash(raw))
			m.Trailer.Offsets = append(m.Trailer.Offsets, at)
			if len(m.Trailer.Hashes) > MaxChunks {
				return fmt.Errorf("state needs more than %d chunks; use a larger chunk size", MaxChunks)
			}
			return nil
		}}
	if err := e.run(); err != nil {
		return nil, err
	}
	m.Trailer.Chunks = uint64(len(m.Trailer.Hashes))
	traw, err := rlp.EncodeToBytes(&m.Trailer)
	if err != nil {
		return nil, err
	}
	at, err := ww.record(traw)
	if err != nil {
		return nil, err
	}
	if err := ww.finish(at); err != nil {
		return nil, err
	}
	return m, nil
}

type exporter struct {
	root common.Hash
	tdb  database.NodeDatabase
	acc  *trie.Trie
	src  Source
	max  int
	ctx  context.Context
	emit func(*Chunk) error

	cur   *Chunk
	size  int
	codes map[common.Hash]bool
	next  common.Hash // origin of the next chunk's accounts
}

// budget is what the items of a chunk may take; the rest is for proofs.
func (e *exporter) budget() int { return e.max - e.max/4 }

func (e *exporter) start(origin common.Hash) {
	e.cur = &Chunk{Origin: origin}
	e.size = 64
	e.codes = map[common.Hash]bool{}
}

func (e *exporter) flush() error {
	c := e.cur
	if len(c.Accounts) > 0 {
		proof, err := rangeProof(e.acc, c.Origin, c.Accounts[len(c.Accounts)-1].Hash)
		if err != nil {
			return err
		}
		c.Proof = proof
	}
	return e.emit(c)
}

func rangeProof(t *trie.Trie, origin, last common.Hash) ([][]byte, error) {
	ps := trienode.NewProofSet()
	if err := t.Prove(origin[:], ps); err != nil {
		return nil, err
	}
	if err := t.Prove(last[:], ps); err != nil {
		return nil, err
	}
	return ps.List(), nil
}

func (e *exporter) run() error {
	e.start(common.Hash{})
	it := trie.NewIterator(e.acc.MustNodeIterator(nil))
	n := 0
	for it.Next() {
		if n++; n%1024 == 0 {
			if err := e.ctx.Err(); err != nil {
				return err
			}
		}
		key := common.BytesToHash(it.Key)
		full := common.CopyBytes(it.Value)
		acct, err := types.FullAccount(full)
		if err != nil {
			return fmt.Errorf("account %x: %w", key, err)
		}
		slim := types.SlimAccountRLP(*acct)
		var code []byte
		ch := common.BytesToHash(acct.CodeHash)
		if ch != types.EmptyCodeHash {
			if code = e.src.Code(ch); len(code) == 0 {
				return fmt.Errorf("code %x of account %x missing", ch, key)
			}
		}
		need := 48 + len(slim)
		if !e.codes[ch] {
			need += len(code) + 8
		}
		if (len(e.cur.Accounts) > 0 || len(e.cur.Storage) > 0) && e.size+need > e.budget() {
			if err := e.flush(); err != nil {
				return err
			}
			e.start(e.next)
		}
		e.cur.Accounts = append(e.cur.Accounts, Account{Hash: key, Body: slim})
		e.next = incHash(key)
		e.size += need
		if code != nil && !e.codes[ch] {
			e.cur.Code = append(e.cur.Code, code)
			e.codes[ch] = true
		}
		if acct.Root != types.EmptyRootHash {
			if err := e.storage(key, slim, acct.Root); err != nil {
				return err
			}
		}
	}
	if it.Err != nil {
		return fmt.Errorf("iterate the account trie: %w", it.Err)
	}
	if len(e.cur.Accounts) == 0 && len(e.cur.Storage) == 0 {
		if e.root != types.EmptyRootHash {
			return errors.New("the last chunk is empty")
		}
	}
	return e.flush()
}

func (e *exporter) storage(account common.Hash, slim []byte, sroot common.Hash) error {
	st, err := trie.New(trie.StorageTrieID(e.root, account, sroot), e.tdb)
	if err != nil {
		return fmt.Errorf("storage of %x: %w", account, err)
	}
	it := trie.NewIterator(st.MustNodeIterator(nil))
	r := &StorageRange{Account: account}
	partial := false
	closeRange := func(more bool) error {
		if more || partial {
			if len(r.Keys) > 0 {
				proof, err := rangeProof(st, r.Origin, r.Keys[len(r.Keys)-1])
				if err != nil {
					return err
				}
				r.Proof = proof
			}
		}
		e.cur.Storage = append(e.cur.Storage, *r)
		return nil
	}
	for it.Next() {
		k, v := common.BytesToHash(it.Key), common.CopyBytes(it.Value)
		need := 40 + len(v)
		if len(r.Keys) > 0 && e.size+need > e.budget() {
			if err := closeRange(true); err != nil {
				return err
			}
			// The next chunk carries the account again, with a proof,
			// to continue its storage.
			if err := e.flush(); err != nil {
				return err
			}
			e.start(e.next)
			proof := trienode.NewProofSet()
			if err := e.acc.Prove(account[:], proof); err != nil {
				return err
			}
			r = &StorageRange{Account: account, AccountBody: slim, AccountProof: proof.List(), Origin: incHash(r.Keys[len(r.Keys)-1])}
			partial = true
			e.size += len(slim) + proof.DataSize()
		}
		r.Keys = append(r.Keys, k)
		r.Values = append(r.Values, v)
		e.size += need
	}
	if it.Err != nil {
		return fmt.Errorf("iterate the storage of %x: %w", account, it.Err)
	}
	return closeRange(false)
}

// incHash is h+1 (the maximum stays).
func incHash(h common.Hash) common.Hash {
	out := h
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out
		}
	}
	return h
}

// NewHandover is the handover evidence of block header, committed with
// seal, whose state (readable through tdb) lists a validator change the
// block decided.
func NewHandover(header *types.Header, seal []byte, tdb database.NodeDatabase) (Handover, error) {
	raw, err := rlp.EncodeToBytes(header)
	if err != nil {
		return Handover{}, err
	}
	acc, err := trie.New(trie.StateTrieID(header.Root), tdb)
	if err != nil {
		return Handover{}, fmt.Errorf("state of block %d: %w", header.Number.Uint64(), err)
	}
	proof, err := validatorProof(header.Root, tdb, acc)
	if err != nil {
		return Handover{}, fmt.Errorf("prove the validator records of block %d: %w", header.Number.Uint64(), err)
	}
	return Handover{Header: raw, Seal: seal, StateProof: proof}, nil
}

// validatorProof proves the registry records system.State reads for the
// validator changes.
func validatorProof(root common.Hash, tdb database.NodeDatabase, acc *trie.Trie) ([][]byte, error) {
	ps := trienode.NewProofSet()
	key := crypto.Keccak256Hash(system.RegistryAddress[:])
	if err := acc.Prove(key[:], ps); err != nil {
		return nil, err
	}
	body, err := acc.Get(key[:])
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return ps.List(), nil // no registry: an empty validator record
	}
	a, err := types.FullAccount(body)
	if err != nil {
		return nil, err
	}
	st, err := trie.New(trie.StorageTrieID(root, key, a.Root), tdb)
	if err != nil {
		return nil, err
	}
	rec := &recorder{t: st}
	system.Read(rec).ValidatorChanges()
	if rec.err != nil {
		return nil, rec.err
	}
	for _, k := range rec.keys {
		if err := st.Prove(k[:], ps); err != nil {
			return nil, err
		}
	}
	return ps.List(), nil
}

// recorder reads one account's storage from its trie and notes the keys.
type recorder struct {
	t    *trie.Trie
	keys []common.Hash
	err  error
}

func (r *recorder) GetState(_ common.Address, slot common.Hash) common.Hash {
	k := crypto.Keccak256Hash(slot[:])
	r.keys = append(r.keys, k)
	v, err := r.t.Get(k[:])
	if err != nil && r.err == nil {
		r.err = err
	}
	return slotValue(v)
}

func slotValue(v []byte) common.Hash {
	if len(v) == 0 {
		return common.Hash{}
	}
	_, content, _, err := rlp.Split(v)
	if err != nil {
		return common.Hash{}
	}
	return common.BytesToHash(content)
}
