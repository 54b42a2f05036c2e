package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/pebble"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/chain"
)

// ErrNotEmpty is returned by NewImport for a directory that holds a
// ledger already.
var ErrNotEmpty = errors.New("data directory already holds a ledger")

// Code returns the contract code with the given hash (nil if unknown).
func (l *Ledger) Code(hash common.Hash) []byte { return rawdb.ReadCode(l.db, hash) }

// importDir is where an import builds the store before it becomes the
// ledger's chaindata in one rename.
const importDir = "chaindata.import"

// Importer writes a ledger whose history starts at a snapshot: the trie
// nodes and code of one state, then the block of that state with its seal
// as the head. It builds in DIR/chaindata.import and renames it to
// DIR/chaindata only when complete, so a crash leaves either no ledger
// (the partial import is removed by the next NewImport) or the whole one.
type Importer struct {
	dir   string
	spec  *chain.Spec
	opts  Options
	kv    *pebble.Database
	db    ethdb.Database
	state *stateWriter
}

// NewImport starts an import into dir, which must not hold a ledger.
func NewImport(dir string, spec *chain.Spec, opts Options) (*Importer, error) {
	opts.ensureDefaults()
	if _, err := os.Stat(filepath.Join(dir, "chaindata")); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotEmpty, filepath.Join(dir, "chaindata"))
	}
	tmp := filepath.Join(dir, importDir)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("remove a partial import: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	kv, err := pebble.New(tmp, opts.CacheMB, 256, "charter/import/", false)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", tmp, err)
	}
	db := rawdb.NewDatabase(kv)
	// The hash scheme, as the ledger's earlier releases wrote; a ledger
	// that keeps the path scheme moves it there when it opens it.
	return &Importer{dir: dir, spec: spec, opts: opts, kv: kv, db: db, state: newStateWriter(db, rawdb.HashScheme, false)}, nil
}

// Node writes one trie node (a trie.StackTrie's OnTrieNode): owner is
// zero for the account trie, the account's hash for a storage trie. The
// import writes the hash scheme, as the ledger's earlier releases did; a
// ledger that keeps the path scheme moves it there when it opens it.
func (im *Importer) Node(owner common.Hash, path []byte, hash common.Hash, blob []byte) error {
	return im.state.Node(owner, path, hash, blob)
}

// Code writes contract code.
func (im *Importer) Code(hash common.Hash, code []byte) error {
	return im.state.Code(hash, code)
}

// Abort drops the partial import.
func (im *Importer) Abort() {
	if im.kv != nil {
		im.kv.Close()
		im.kv = nil
	}
	os.RemoveAll(filepath.Join(im.dir, importDir))
}

// Finish writes the genesis block and record, the snapshot's block with
// its receipts, transaction index and seal as the head, syncs, and moves
// the store in place. The state of block.Root() must have been written.
// Open the ledger afterwards.
func (im *Importer) Finish(block *types.Block, receipts types.Receipts, seal []byte) error {
	genesis, err := GenesisBlock(im.spec)
	if err != nil {
		im.Abort()
		return err
	}
	if err := im.state.Flush(); err != nil {
		im.Abort()
		return err
	}
	put := func(b ethdb.Batch, k, v []byte) {
		if err == nil {
			err = b.Put(k, v)
		}
	}
	b := im.kv.NewBatch()
	for _, blk := range []*types.Block{genesis, block} {
		raw, eerr := rlp.EncodeToBytes(blk)
		if eerr != nil {
			im.Abort()
			return eerr
		}
		num := binary.BigEndian.AppendUint64(nil, blk.NumberU64())
		h := blk.Hash()
		put(b, key(prefBlock, num), raw)
		put(b, key(prefNumber, h[:]), num)
	}
	put(b, key(prefReceipt, binary.BigEndian.AppendUint64(nil, 0)), []byte{0xc0}) // the genesis has none
	num := binary.BigEndian.AppendUint64(nil, block.NumberU64())
	stored := make([]*types.ReceiptForStorage, len(receipts))
	for i, r := range receipts {
		stored[i] = (*types.ReceiptForStorage)(r)
	}
	receiptRLP, eerr := rlp.EncodeToBytes(stored)
	if eerr != nil {
		im.Abort()
		return eerr
	}
	put(b, key(prefReceipt, num), receiptRLP)
	for i, tx := range block.Transactions() {
		th := tx.Hash()
		put(b, key(prefTx, th[:]), binary.BigEndian.AppendUint32(common.CopyBytes(num), uint32(i)))
	}
	if len(seal) > 0 {
		put(b, key(prefSeal, num), seal)
	}
	h := block.Hash()
	fp, ferr := specFingerprint(im.spec)
	if ferr != nil {
		im.Abort()
		return ferr
	}
	put(b, keySpec, fp[:])
	put(b, keyGenesis, genesisRecord(genesis, im.spec.ChainID()))
	put(b, keyHead, append(common.CopyBytes(num), h[:]...))
	put(b, keyBase, common.CopyBytes(num))
	if err == nil {
		err = b.Write()
	}
	if err == nil {
		err = im.kv.SyncKeyValue()
	}
	if cerr := im.kv.Close(); err == nil {
		err = cerr
	}
	im.kv = nil
	if err != nil {
		im.Abort()
		return fmt.Errorf("write the imported head: %w", err)
	}
	if err := os.Rename(filepath.Join(im.dir, importDir), filepath.Join(im.dir, "chaindata")); err != nil {
		im.Abort()
		return fmt.Errorf("move the imported store in place: %w", err)
	}
	if d, err := os.Open(im.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
