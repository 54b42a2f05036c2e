package ledger

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
)

// The genesis state, streamed.
//
// A genesis may fund millions of accounts. Built through a StateDB it
// would hold every account object, the trie and pathdb's node set of the
// whole state in memory at once (tens of gigabytes for five million).
// Instead the plain accounts of the allocation (a balance and a nonce, no
// code, no storage) are sorted by hashed address and fed, merged with the
// few others, into a trie.StackTrie whose nodes go to the store in
// bounded batches as they are completed, together with the flat state
// pathdb serves reads from: memory is a sorted slice of the plain
// accounts' hashes and the trie's one open path. The accounts with code
// or storage, and those the system contracts' seed touches, are built
// through a StateDB exactly as before (there are few), and their accounts
// and storage slots are read back from it in hash order. Both ways give
// the same root (TestGenesisStreamedMatchesStateDB).

// genesisState streams the state of spec's genesis and returns its root.
// With w nil it only computes the root.
func genesisState(spec *chain.Spec, w *stateWriter) (common.Hash, error) {
	g, err := spec.SystemGenesis()
	if err != nil {
		return common.Hash{}, fmt.Errorf("genesis governance: %w", err)
	}
	rules := spec.Config.Rules(common.Big0, true, uint64(spec.Timestamp))

	// The accounts the seed touches, so that an allocation to one of them
	// goes through the StateDB with the seed, in the order buildGenesis
	// applies them.
	seeded := make(map[common.Hash]bool)
	{
		st, err := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
		if err != nil {
			return common.Hash{}, err
		}
		rec := &touchRecorder{StateDB: st, touched: make(map[common.Address]bool)}
		system.Seed(rec, g)
		for addr := range rec.touched {
			seeded[crypto.Keccak256Hash(addr.Bytes())] = true
		}
	}

	type plainAccount struct {
		hash    common.Hash
		balance *uint256.Int
		nonce   uint64
	}
	plain := make([]plainAccount, 0, len(spec.Alloc))
	sdb := state.NewDatabaseForTesting()
	rich, err := state.New(types.EmptyRootHash, sdb)
	if err != nil {
		return common.Hash{}, err
	}
	for addr, acct := range spec.Alloc {
		h := crypto.Keccak256Hash(addr.Bytes())
		if len(acct.Code) == 0 && len(acct.Storage) == 0 && !seeded[h] {
			bal := new(uint256.Int)
			if acct.Balance != nil {
				bal = uint256FromBig(acct.Balance)
			}
			// An account left empty (EIP-161) is not in the state.
			if bal.IsZero() && acct.Nonce == 0 {
				continue
			}
			plain = append(plain, plainAccount{hash: h, balance: bal, nonce: acct.Nonce})
			continue
		}
		if acct.Balance != nil {
			rich.SetBalance(addr, uint256FromBig(acct.Balance), 0)
		}
		rich.SetNonce(addr, acct.Nonce, 0)
		if len(acct.Code) > 0 {
			rich.SetCode(addr, acct.Code, 0)
		}
		for k, v := range acct.Storage {
			rich.SetState(addr, k, v)
		}
	}
	system.Seed(rich, g)
	richRoot, err := rich.Commit(rules, 0)
	if err != nil {
		return common.Hash{}, fmt.Errorf("genesis contracts: %w", err)
	}
	if err := sdb.TrieDB().Commit(richRoot, false); err != nil {
		return common.Hash{}, fmt.Errorf("genesis contracts: %w", err)
	}
	slices.SortFunc(plain, func(a, b plainAccount) int { return bytes.Compare(a.hash[:], b.hash[:]) })

	var werr error
	note := func(err error) {
		if err != nil && werr == nil {
			werr = err
		}
	}
	var onNode func(owner common.Hash) trie.OnTrieNode
	if w != nil {
		onNode = func(owner common.Hash) trie.OnTrieNode {
			return func(path []byte, hash common.Hash, blob []byte) { note(w.Node(owner, path, hash, blob)) }
		}
	} else {
		onNode = func(common.Hash) trie.OnTrieNode { return nil }
	}
	accTrie := trie.NewStackTrie(onNode(common.Hash{}))
	addAccount := func(hash common.Hash, acct *types.StateAccount) error {
		full, err := rlp.EncodeToBytes(acct)
		if err != nil {
			return err
		}
		if err := accTrie.Update(hash[:], full); err != nil {
			return err
		}
		if w != nil {
			note(w.Account(hash, types.SlimAccountRLP(*acct)))
		}
		return werr
	}
	// addRich adds an account of the StateDB, its code and its storage.
	addRich := func(hash common.Hash, full []byte) error {
		acct, err := types.FullAccount(full)
		if err != nil {
			return err
		}
		if w != nil && !bytes.Equal(acct.CodeHash, types.EmptyCodeHash[:]) {
			code := rawdb.ReadCode(sdb.TrieDB().Disk(), common.BytesToHash(acct.CodeHash))
			note(w.Code(common.BytesToHash(acct.CodeHash), code))
		}
		if acct.Root != types.EmptyRootHash {
			tr, err := trie.New(trie.StorageTrieID(richRoot, hash, acct.Root), sdb.TrieDB())
			if err != nil {
				return err
			}
			nit, err := tr.NodeIterator(nil)
			if err != nil {
				return err
			}
			st := trie.NewStackTrie(onNode(hash))
			for it := trie.NewIterator(nit); it.Next(); {
				if err := st.Update(it.Key, it.Value); err != nil {
					return err
				}
				if w != nil {
					note(w.Slot(hash, common.BytesToHash(it.Key), it.Value))
				}
			}
			if nit.Error() != nil {
				return nit.Error()
			}
			if got := st.Hash(); got != acct.Root {
				return fmt.Errorf("storage of account %x streams root %s, want %s", hash, got.TerminalString(), acct.Root.TerminalString())
			}
		}
		return addAccount(hash, acct)
	}

	tr, err := trie.New(trie.StateTrieID(richRoot), sdb.TrieDB())
	if err != nil {
		return common.Hash{}, err
	}
	nit, err := tr.NodeIterator(nil)
	if err != nil {
		return common.Hash{}, err
	}
	it := trie.NewIterator(nit)
	more := it.Next()
	for _, p := range plain {
		for more && bytes.Compare(it.Key, p.hash[:]) < 0 {
			if err := addRich(common.BytesToHash(it.Key), it.Value); err != nil {
				return common.Hash{}, err
			}
			more = it.Next()
		}
		if more && bytes.Equal(it.Key, p.hash[:]) {
			return common.Hash{}, fmt.Errorf("genesis account %x both plain and seeded", p.hash) // excluded above
		}
		if err := addAccount(p.hash, &types.StateAccount{Nonce: p.nonce, Balance: p.balance, Root: types.EmptyRootHash, CodeHash: types.EmptyCodeHash[:]}); err != nil {
			return common.Hash{}, err
		}
	}
	for ; more; more = it.Next() {
		if err := addRich(common.BytesToHash(it.Key), it.Value); err != nil {
			return common.Hash{}, err
		}
	}
	if nit.Error() != nil {
		return common.Hash{}, nit.Error()
	}
	root := accTrie.Hash()
	if werr != nil {
		return common.Hash{}, werr
	}
	if w != nil {
		if err := w.Flush(); err != nil {
			return common.Hash{}, err
		}
	}
	return root, nil
}

// testGenesisComputed, set by tests only, is called when the genesis
// block is computed without writing it.
var testGenesisComputed func()

// genesisBlock is the block of a genesis whose state root is known.
func genesisBlock(spec *chain.Spec, root common.Hash) *types.Block {
	return types.NewBlock(spec.GenesisHeader(root), &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
}

// GenesisBlock computes the genesis block of spec without any store, in
// memory bounded by the plain accounts' hashes (see genesisState).
func GenesisBlock(spec *chain.Spec) (*types.Block, error) {
	if testGenesisComputed != nil {
		testGenesisComputed()
	}
	root, err := genesisState(spec, nil)
	if err != nil {
		return nil, err
	}
	return genesisBlock(spec, root), nil
}

// keySpec records the fingerprint of the chain spec a ledger was created
// with (see specFingerprint): Open compares it instead of building the
// genesis again.
var keySpec = []byte("charter-genesis-spec") // fingerprint(32)

// specFingerprint hashes everything of a chain spec that the genesis
// block is computed from (and more: every field of the genesis file), in
// a canonical order. Equal fingerprints mean the same genesis; a
// different one is checked the slow way, by building the genesis block,
// since a field that does not enter the genesis may have changed (or the
// encoding of a library type).
func specFingerprint(spec *chain.Spec) (common.Hash, error) {
	rest := *spec
	rest.Alloc = nil
	head, err := json.Marshal(&rest)
	if err != nil {
		return common.Hash{}, fmt.Errorf("encode the chain spec: %w", err)
	}
	h := crypto.NewKeccakState()
	h.Write([]byte("charter genesis spec v1\x00"))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(head))))
	h.Write(head)
	// Each account's entry is hashed on its own, in one pass over the
	// map, and the entries' hashes (each covers its address) are hashed
	// in sorted order: cheaper than walking the map in address order.
	entries := make([]common.Hash, 0, len(spec.Alloc))
	eh := crypto.NewKeccakState()
	var buf, keys []byte
	for a, acct := range spec.Alloc {
		buf = append(buf[:0], a[:]...)
		switch b := acct.Balance; {
		case b == nil:
			buf = append(buf, 0)
		case b.Sign() >= 0 && b.BitLen() <= 256:
			n := len(buf)
			buf = append(buf, 1)
			buf = append(buf, make([]byte, 32)...)
			b.FillBytes(buf[n+1:])
		default:
			bal := b.Bytes()
			buf = append(buf, 2, byte(b.Sign()+1))
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(bal)))
			buf = append(buf, bal...)
		}
		buf = binary.BigEndian.AppendUint64(buf, acct.Nonce)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(acct.Code)))
		buf = append(buf, acct.Code...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(acct.Storage)))
		if len(acct.Storage) > 0 {
			keys = keys[:0]
			for k, v := range acct.Storage {
				keys = append(append(keys, k[:]...), v[:]...)
			}
			slots := make([][]byte, 0, len(acct.Storage))
			for i := 0; i < len(keys); i += 2 * common.HashLength {
				slots = append(slots, keys[i:i+2*common.HashLength])
			}
			slices.SortFunc(slots, bytes.Compare)
			for _, kv := range slots {
				buf = append(buf, kv...)
			}
		}
		eh.Reset()
		eh.Write(buf)
		var e common.Hash
		eh.Read(e[:])
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b common.Hash) int {
		if x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8]); x != y {
			if x < y {
				return -1
			}
			return 1
		}
		return bytes.Compare(a[8:], b[8:])
	})
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(entries))))
	for i := range entries {
		h.Write(entries[i][:])
	}
	var out common.Hash
	h.Read(out[:])
	return out, nil
}

// touchRecorder is a StateDB that records the accounts written to.
type touchRecorder struct {
	*state.StateDB
	touched map[common.Address]bool
}

func (r *touchRecorder) SetState(addr common.Address, key, value common.Hash) common.Hash {
	r.touched[addr] = true
	return r.StateDB.SetState(addr, key, value)
}

func (r *touchRecorder) SetCode(addr common.Address, code []byte, reason tracing.CodeChangeReason) []byte {
	r.touched[addr] = true
	return r.StateDB.SetCode(addr, code, reason)
}

func (r *touchRecorder) SetNonce(addr common.Address, nonce uint64, reason tracing.NonceChangeReason) {
	r.touched[addr] = true
	r.StateDB.SetNonce(addr, nonce, reason)
}

// genesisRecord is the value of keyGenesis: the genesis hash and the
// chain id, which the hash does not cover.
func genesisRecord(genesis *types.Block, chainID uint64) []byte {
	return append(genesis.Hash().Bytes(), binary.BigEndian.AppendUint64(nil, chainID)...)
}

// checkGenesis checks that the ledger's recorded genesis is the one of
// its spec and returns the stored genesis block. When the spec's
// fingerprint is the one recorded at creation, that suffices; otherwise
// (a ledger of an earlier release, or a genesis file changed in a field
// that may not enter the genesis) the genesis block is computed, in
// bounded memory, and compared, and the fingerprint recorded.
func (l *Ledger) checkGenesis() (*types.Block, error) {
	stored, err := l.kv.Get(keyGenesis)
	if err != nil || len(stored) != 40 {
		return nil, fmt.Errorf("%w: genesis record damaged (%d bytes, %v)", ErrCorrupt, len(stored), err)
	}
	storedHash, storedChain := common.BytesToHash(stored[:32]), binary.BigEndian.Uint64(stored[32:])
	block := l.readBlock(0)
	if block == nil || block.Hash() != storedHash {
		return nil, fmt.Errorf("%w: genesis block missing or differs from the genesis record %s", ErrCorrupt, storedHash.TerminalString())
	}
	fp, err := specFingerprint(l.spec)
	if err != nil {
		return nil, err
	}
	if rec, err := l.kv.Get(keySpec); err == nil && bytes.Equal(rec, fp[:]) && storedChain == l.spec.ChainID() {
		return block, nil
	}
	start := time.Now()
	computed, err := GenesisBlock(l.spec)
	if err != nil {
		return nil, err
	}
	// The genesis hash does not cover the chain id, so both are compared.
	if computed.Hash() != storedHash || storedChain != l.spec.ChainID() {
		return nil, fmt.Errorf("%w: it has genesis %s (chain id %d), the genesis file gives %s (chain id %d); use another --datadir",
			ErrGenesisMismatch, storedHash.TerminalString(), storedChain, computed.Hash().TerminalString(), l.spec.ChainID())
	}
	if err := l.kv.Put(keySpec, fp[:]); err != nil {
		return nil, fmt.Errorf("write genesis spec record: %w", err)
	}
	if err := l.kv.SyncKeyValue(); err != nil {
		return nil, err
	}
	l.log.Info("Checked the genesis of the data directory by computing it from the genesis file; the next start compares a fingerprint instead",
		"accounts", len(l.spec.Alloc), "elapsed", time.Since(start).Round(time.Millisecond))
	return block, nil
}

// The keys of the path scheme's state, which a new ledger clears of what
// a first start interrupted before the genesis record left.
var pathStatePrefixes = [][]byte{rawdb.TrieNodeAccountPrefix, rawdb.TrieNodeStoragePrefix, rawdb.SnapshotAccountPrefix, rawdb.SnapshotStoragePrefix}

// flatStateDone is the record of pathdb's flat state generator
// (pathdb.journalGenerator, unexported) saying the flat state is
// complete: the streamed genesis writes it, so pathdb does not read the
// whole trie again to generate it.
type flatStateDone struct {
	Wiping   bool
	Done     bool
	Marker   []byte
	Accounts uint64
	Slots    uint64
	Storage  uint64
}

// createGenesis writes the genesis of a new ledger: its state, streamed
// to the store (see genesisState), then the block 0, the head and the
// genesis records in one batch, synced. A crash before that batch leaves
// a ledger without genesis record, whose state the next Open writes again.
func (l *Ledger) createGenesis(opts Options) (*types.Block, error) {
	start := time.Now()
	// pathdb must not run (its flat state generator writes) while the
	// state is written under it; it is opened again on the written state.
	if err := l.triedb.Close(); err != nil {
		return nil, err
	}
	scheme, path := rawdb.HashScheme, l.scheme.scheme == schemePath
	if path {
		scheme = rawdb.PathScheme
		for _, p := range pathStatePrefixes {
			if err := l.kv.DeleteRange(p, []byte{p[0] + 1}); err != nil {
				return nil, fmt.Errorf("clear the state of an interrupted first start: %w", err)
			}
		}
	}
	w := newStateWriter(l.kv, scheme, path)
	root, err := genesisState(l.spec, w)
	if err != nil {
		return nil, fmt.Errorf("write genesis state: %w", err)
	}
	if path {
		done, _ := rlp.EncodeToBytes(&flatStateDone{Done: true})
		b := l.kv.NewBatch()
		rawdb.WriteSnapshotRoot(b, root)
		rawdb.WriteSnapshotGenerator(b, done)
		rawdb.WritePersistentStateID(b, 0)
		if err := b.Write(); err != nil {
			return nil, fmt.Errorf("write genesis state: %w", err)
		}
	}
	if err := l.kv.SyncKeyValue(); err != nil {
		return nil, fmt.Errorf("sync genesis state: %w", err)
	}
	if path {
		if got := diskRoot(l.kv); got != root {
			return nil, fmt.Errorf("%w: genesis state written with root %s, want %s", ErrCorrupt, got.TerminalString(), root.TerminalString())
		}
	}
	if len(l.spec.Alloc) >= compactGenesisAccounts {
		// Into tables at the bottom of the store now, rather than
		// flushed and compacted in the background while the first
		// blocks run (a genesis of a million accounts is a few hundred
		// megabytes).
		if err := l.kv.Compact(nil, nil); err != nil {
			return nil, fmt.Errorf("compact the genesis state: %w", err)
		}
	}
	l.openTrieDB(l.db, opts)

	genesis := genesisBlock(l.spec, root)
	fp, err := specFingerprint(l.spec)
	if err != nil {
		return nil, err
	}
	raw, err := rlp.EncodeToBytes(genesis)
	if err != nil {
		return nil, err
	}
	num := binary.BigEndian.AppendUint64(nil, 0)
	hash := genesis.Hash()
	b := l.kv.NewBatch()
	put := func(k, v []byte) {
		if err == nil {
			err = b.Put(k, v)
		}
	}
	put(key(prefBlock, num), raw)
	put(key(prefNumber, hash[:]), num)
	put(key(prefReceipt, num), []byte{0xc0}) // none
	put(keyHead, append(common.CopyBytes(num), hash[:]...))
	put(keySpec, fp[:])
	put(keyGenesis, genesisRecord(genesis, l.spec.ChainID()))
	if path && err == nil {
		// The history of the system state starts with the genesis: its
		// base is the system accounts' storage only, a few slots.
		_, err = l.writeSystemBase(b, 0, root)
	}
	if err == nil {
		err = b.Write()
	}
	if err == nil {
		err = l.kv.SyncKeyValue()
	}
	if err != nil {
		return nil, fmt.Errorf("write genesis: %w", err)
	}
	if len(l.spec.Alloc) >= compactGenesisAccounts {
		l.log.Info("Wrote the genesis state", "accounts", len(l.spec.Alloc), "root", root, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	return genesis, nil
}
