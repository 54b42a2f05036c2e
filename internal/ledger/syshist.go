package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/system"
)

// The history of the system contracts' state.
//
// Under the path scheme a node keeps the whole state of its last heights
// only, yet some readers need the registry as of any block: the privacy
// applier replays a group's history from its start, with the group,
// node, key and sender records as of each block. The storage of the
// system accounts (system.RegistryAddress, GovernanceAddress,
// ContractsAddress: the only accounts system.Read reads) is small and
// changes with governance and privacy-group actions, not with transfers,
// so the ledger keeps its history:
//
//   - a base: every slot of the system accounts at the height the history
//     starts (the genesis of a new data directory; the head at the first
//     open of one that has none: an earlier release's, a snapshot import,
//     a move from the hash scheme), with number = that height;
//   - for each later block, the slots of the system accounts that the
//     block changed (go-ethereum's StateUpdate of the commit, so exactly
//     the slots whose value differs from the parent's), with number = the
//     block's, written in the block's own batch: a block is never on disk
//     without its history.
//
// Entry: prefSysHist | address(20) | keccak(slot)(32) | number(8) -> the
// value with its leading zero bytes trimmed (empty: zero). "Slot s of
// account a as of block n" is the newest entry <= n of (a, s): one
// bounded reverse seek. No entry: zero (the slot was empty at the start
// and was never written since).
//
// Left out: the per-day usage records (system.UsageSlots), written for
// every block with transactions; the history would otherwise grow with
// every block. A reader of the history does not answer Usage (its
// answer is the base's, or zero).
//
// Under the hash scheme (archive) every height's state is kept and the
// history is neither written nor needed.
var (
	prefSysHist     = []byte("cy")
	keySysHistStart = []byte("charter-syshist-start") // number(8): the base's height
)

// sysHistAccounts are the accounts whose storage the history keeps: those
// the system package reads (system.Read).
var sysHistAccounts = [...]common.Address{system.RegistryAddress, system.GovernanceAddress, system.ContractsAddress}

// sysHistHashes are their address hashes (how a StateUpdate keys them).
var sysHistHashes = func() (h [len(sysHistAccounts)]common.Hash) {
	for i, a := range sysHistAccounts {
		h[i] = crypto.Keccak256Hash(a[:])
	}
	return h
}()

// ErrSystemStateNotKept is wrapped by SystemStateAt's error for a block
// before the history's start.
var ErrSystemStateNotKept = errors.New("system state not kept")

// SystemStateNotKeptError says from which block the history starts.
type SystemStateNotKeptError struct {
	Number uint64 // block asked for
	Start  uint64 // first block of the history
}

func (e *SystemStateNotKeptError) Error() string {
	return fmt.Sprintf("the registry as of block %d is not kept: this node keeps the state of its last blocks only (--state.history N), "+
		"and the history of the system contracts' state starts at block %d; an archive node (--state.history all, on a new data directory) keeps every block's",
		e.Number, e.Start)
}

// Is makes errors.Is(err, ErrSystemStateNotKept) hold.
func (e *SystemStateNotKeptError) Is(target error) bool { return target == ErrSystemStateNotKept }

func sysHistKey(addr common.Address, slotHash common.Hash, number uint64) []byte {
	k := make([]byte, 0, len(prefSysHist)+common.AddressLength+common.HashLength+8)
	k = append(k, prefSysHist...)
	k = append(k, addr[:]...)
	k = append(k, slotHash[:]...)
	return binary.BigEndian.AppendUint64(k, number)
}

// SystemHistoryStart is the first block whose system state SystemStateAt
// reads beyond the kept window, and whether the ledger keeps a history
// (path scheme; an archive keeps every block's state instead).
func (l *Ledger) SystemHistoryStart() (uint64, bool) {
	if !l.sysHist {
		return 0, false
	}
	return l.sysHistStart, true
}

// SystemStateAt returns a reader of the system contracts' storage as of
// committed block number: GetState of system.RegistryAddress,
// GovernanceAddress or ContractsAddress answers what
// StateAt(block's root).GetState does. Within the kept window and on an
// archive node it is that state (a *state.StateDB). Beyond the window it
// reads the history, and then:
//
//   - any other account reads as zero (system.Read reads no other);
//   - it does not read code (system.Read uses code only to check a
//     contract being registered, a write);
//   - it does not answer system.State.Usage (usage records are not kept);
//   - it is safe for concurrent use and reads the store on every call
//     (a StateDB of the window is not: use it from one goroutine).
//
// A block before the history's start gives a *SystemStateNotKeptError
// (errors.Is ErrSystemStateNotKept); a block above the head an error.
func (l *Ledger) SystemStateAt(number uint64) (system.StateReader, error) {
	head := l.head.Load()
	if head == nil || number > head.Number.Uint64() {
		return nil, fmt.Errorf("system state of block %d: not committed", number)
	}
	h := l.HeaderByNumber(number)
	if h == nil {
		if l.sysHist && number < l.sysHistStart {
			return nil, &SystemStateNotKeptError{Number: number, Start: l.sysHistStart}
		}
		return nil, fmt.Errorf("system state of block %d: header not found", number)
	}
	st, err := l.StateAt(h.Root)
	if err == nil {
		return st, nil
	}
	if !l.sysHist || !errors.Is(err, ErrStateNotKept) {
		return nil, err
	}
	if number < l.sysHistStart {
		return nil, &SystemStateNotKeptError{Number: number, Start: l.sysHistStart}
	}
	return &sysHistReader{kv: l.kv, number: number}, nil
}

// sysHistReader reads the system accounts' storage as of one block from
// the history.
type sysHistReader struct {
	kv     *kvStore
	number uint64
}

// GetState answers the value of slot key of a system account as of the
// reader's block; zero for any other account (see SystemStateAt). A
// store that cannot be read (closed, damaged) is a broken invariant of
// the node, as it would be for a StateDB: it panics.
func (r *sysHistReader) GetState(addr common.Address, key common.Hash) common.Hash {
	if !system.IsSystem(addr) {
		return common.Hash{}
	}
	v, err := r.kv.latestAtOrBelow(sysHistKey(addr, crypto.Keccak256Hash(key[:]), r.number))
	if err != nil {
		panic(fmt.Sprintf("ledger: read the system state history of block %d: %v", r.number, err))
	}
	return common.BytesToHash(v)
}

// latestAtOrBelow returns the value of the greatest key <= k that shares
// k's prefix without its last 8 bytes (nil if none).
func (s *kvStore) latestAtOrBelow(k []byte) ([]byte, error) {
	var out []byte
	err := s.use(func() error {
		lo := k[:len(k)-8]
		hi := upperBound(k)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		if it.Last() {
			out = bytes.Clone(it.Value())
		}
		if err := it.Error(); err != nil {
			it.Close()
			return err
		}
		return it.Close()
	})
	return out, err
}

// sysHistPuts are the history entries of one block.
type sysHistPut struct {
	key, value []byte
}

// usageSkip is the set of hashed registry slots the history leaves out
// for the blocks of one day: the usage records of every organization and
// of accounts of none. The organizations are read from a block's state
// before its commit, again only after a commit changed their list
// (system.OrgNamesSlot); a block that admits an organization may so
// record that organization's usage of that block, once, which is
// harmless (the history then holds a value nobody reads).
type usageSkip struct {
	orgs  []string
	stale bool // the list changed (or was never read)
	day   uint64
	slots map[common.Hash]bool // of orgs on day; nil: to compute
}

// orgNamesHash is the hashed slot that changes with the organizations'
// list.
var orgNamesHash = crypto.Keccak256Hash(system.OrgNamesSlot().Bytes())

// prepare reads the organizations from st, the state of a block about to
// be committed, if their list changed since it last did.
func (u *usageSkip) prepare(st *state.StateDB) {
	if u.stale || u.orgs == nil {
		u.orgs = append(system.Read(st).OrgNames(), "")
		u.stale, u.slots = false, nil
	}
}

// skip reports whether hashed registry slot sh of a block of day is a
// usage record's.
func (u *usageSkip) skip(day uint64, sh common.Hash) bool {
	if u.slots == nil || u.day != day {
		u.day = day
		u.slots = make(map[common.Hash]bool, 3*len(u.orgs))
		for _, o := range u.orgs {
			for _, s := range system.UsageSlots(o, day) {
				u.slots[crypto.Keccak256Hash(s[:])] = true
			}
		}
	}
	return u.slots[sh]
}

// sysHistChanges returns the entries of block number (of day) from the
// update of its commit, leaving out the usage records.
func sysHistChanges(update *state.StateUpdate, number, day uint64, usage *usageSkip) []sysHistPut {
	var out []sysHistPut
	for i, ah := range sysHistHashes {
		slots := update.Storages[ah]
		if len(slots) == 0 {
			continue
		}
		addr := sysHistAccounts[i]
		reg := addr == system.RegistryAddress
		for sh, v := range slots {
			if reg && usage.skip(day, sh) {
				continue
			}
			if reg && sh == orgNamesHash {
				usage.stale = true
			}
			out = append(out, sysHistPut{sysHistKey(addr, sh, number), common.TrimLeftZeroes(v[:])})
		}
	}
	return out
}

// commitState commits st, the state of block, and returns its root and
// the block's history entries (none when no history is kept, or for a
// block at or below the history's start). Called under commitMu, or
// by Open.
func (l *Ledger) commitState(block *types.Block, st *state.StateDB) (common.Hash, []sysHistPut, error) {
	number := block.NumberU64()
	rules := l.spec.Config.Rules(block.Number(), true, block.Time())
	if !l.sysHist || number <= l.sysHistStart {
		root, err := st.Commit(rules, number)
		return root, nil, err
	}
	l.usage.prepare(st)
	root, update, err := st.CommitWithUpdate(rules, number)
	if err != nil {
		return root, nil, err
	}
	return root, sysHistChanges(update, number, block.Time()/86400, &l.usage), nil
}

// writeReplayedHistory writes the history entries of a block executed
// again after a crash: the same entries its commit wrote with it, so
// writing them again changes nothing when they are there (idempotent),
// and restores them if they are not.
func (l *Ledger) writeReplayedHistory(number uint64, history []sysHistPut) error {
	if len(history) == 0 {
		return nil
	}
	b := l.kv.NewBatch()
	for _, h := range history {
		if err := b.Put(h.key, h.value); err != nil {
			return err
		}
	}
	if err := b.Write(); err != nil {
		return fmt.Errorf("write the system state history of block %d: %w", number, err)
	}
	return nil
}

// systemStorage calls fn for every slot of the system accounts in the
// state of root: its hash and value.
func (l *Ledger) systemStorage(root common.Hash, fn func(addr common.Address, slotHash common.Hash, value []byte) error) error {
	st, err := state.New(root, l.sdb)
	if err != nil {
		return err
	}
	for i, addr := range sysHistAccounts {
		sroot := st.GetStorageRoot(addr)
		if sroot == (common.Hash{}) || sroot == types.EmptyRootHash {
			continue
		}
		t, err := trie.New(trie.StorageTrieID(root, sysHistHashes[i], sroot), l.triedb)
		if err != nil {
			return fmt.Errorf("storage of %s: %w", addr.Hex(), err)
		}
		nit, err := t.NodeIterator(nil)
		if err != nil {
			return err
		}
		it := trie.NewIterator(nit)
		for it.Next() {
			_, content, _, err := rlp.Split(it.Value)
			if err != nil {
				return fmt.Errorf("storage of %s: slot %x: %w", addr.Hex(), it.Key, err)
			}
			if err := fn(addr, common.BytesToHash(it.Key), content); err != nil {
				return err
			}
		}
		if it.Err != nil {
			return fmt.Errorf("storage of %s: %w", addr.Hex(), it.Err)
		}
	}
	return nil
}

// writeSystemBase stages in b the history's base at block number (state
// root) and the start record.
func (l *Ledger) writeSystemBase(b ethdb.KeyValueWriter, number uint64, root common.Hash) (slots int, err error) {
	err = l.systemStorage(root, func(addr common.Address, slotHash common.Hash, value []byte) error {
		slots++
		return b.Put(sysHistKey(addr, slotHash, number), common.TrimLeftZeroes(value))
	})
	if err != nil {
		return slots, fmt.Errorf("system state of block %d: %w", number, err)
	}
	return slots, b.Put(keySysHistStart, binary.BigEndian.AppendUint64(nil, number))
}

// readSystemHistoryStart reads the history's start record, if the ledger
// (path scheme) has one; Open reads it before replaying lost heights, so
// that their history is written again.
func (l *Ledger) readSystemHistoryStart() error {
	if l.scheme.scheme != schemePath {
		return nil
	}
	if has, err := l.kv.Has(keySysHistStart); err != nil || !has {
		return err
	}
	raw, err := l.kv.Get(keySysHistStart)
	if err != nil || len(raw) != 8 {
		return fmt.Errorf("%w: system state history start record of %d bytes (%v)", ErrCorrupt, len(raw), err)
	}
	l.sysHistStart, l.sysHist = binary.BigEndian.Uint64(raw), true
	return nil
}

// startSystemHistory starts the history at the head of a path-scheme
// ledger that has none (a ledger of an earlier release, a snapshot
// import, a move from the hash scheme), once its head state is there.
func (l *Ledger) startSystemHistory(head *types.Header) error {
	if l.scheme.scheme != schemePath || l.sysHist {
		return nil
	}
	number := head.Number.Uint64()
	b := l.kv.NewBatch()
	slots, err := l.writeSystemBase(b, number, head.Root)
	if err == nil {
		err = b.Write()
	}
	if err == nil {
		err = l.kv.SyncKeyValue()
	}
	if err != nil {
		return fmt.Errorf("start the system state history: %w", err)
	}
	l.sysHistStart, l.sysHist = number, true
	l.log.Info("Started the history of the system contracts' state at the head: the registry as of earlier blocks beyond the kept window cannot be read on this node",
		"from", number, "slots", slots)
	return nil
}

// SystemHistoryBytes is the size of the history's entries (keys and
// values) at heights from..to, inclusive, the base included when from is
// the start. It reads every entry: for tests and measurements.
func (l *Ledger) SystemHistoryBytes(from, to uint64) (entries int, bytes uint64, err error) {
	it := l.kv.NewIterator(prefSysHist, nil)
	defer it.Release()
	for it.Next() {
		k := it.Key()
		if len(k) != len(prefSysHist)+common.AddressLength+common.HashLength+8 {
			continue
		}
		if n := binary.BigEndian.Uint64(k[len(k)-8:]); n >= from && n <= to {
			entries++
			bytes += uint64(len(k) + len(it.Value()))
		}
	}
	return entries, bytes, it.Error()
}
