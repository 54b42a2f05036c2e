package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/triedb/database"
)

// StateView is a read-only view of the ledger in which the state of one
// committed height stays readable, however far the head moves on, until
// Release. A snapshot export reads it for as long as it takes; under the
// path scheme the live state of a height is dropped once it leaves the
// kept window, which a long export of a large state can outlast.
type StateView struct {
	*Ledger
	height  uint64
	nodes   database.NodeDatabase
	release func()
}

// Height is the height whose state the view holds.
func (v *StateView) Height() uint64 { return v.height }

// NodeDatabase reads the trie nodes of the view's state.
func (v *StateView) NodeDatabase() database.NodeDatabase { return v.nodes }

// Release lets the view go; its state reads fail afterwards. Release is
// idempotent.
func (v *StateView) Release() {
	if v.release != nil {
		v.release()
		v.release = nil
	}
}

// NodeDatabase reads the trie nodes of the live state (any height inside
// the kept window, or every height of an archive).
func (l *Ledger) NodeDatabase() database.NodeDatabase { return l.triedb }

// ViewHead returns a StateView of the head's state. An archive keeps
// every state, so the view reads the live store. Under the path scheme
// the head's state is first written to disk (as a periodic flush does),
// then a snapshot of the store pins it: later heights go on being
// committed and flushed while the view reads the state as it was. Commits
// wait while the state is written.
func (l *Ledger) ViewHead() (*StateView, error) {
	l.commitMu.Lock()
	defer l.commitMu.Unlock()
	head := l.head.Load()
	if head == nil {
		return nil, errors.New("view: ledger has no head")
	}
	v := &StateView{Ledger: l, height: head.Number.Uint64()}
	if l.scheme.scheme != schemePath || l.forks {
		// An archive keeps every state; with Options.Forks the head's
		// state is read live (writing it to disk would drop the states
		// competing blocks build on), inside the kept window.
		v.nodes = l.triedb
		return v, nil
	}
	root := head.Root
	if diskRoot(l.kv) != root {
		// Readers of older states (HoldStates) finish first; they are
		// unreadable after this write (Flushes tells them).
		l.stateGate.Lock()
		err := l.triedb.Commit(root, false)
		l.flushes.Add(1)
		l.stateGate.Unlock()
		if err != nil {
			return nil, fmt.Errorf("view: write the state of block %d to disk: %w", v.height, err)
		}
		// pathdb writes the merged layers in the background; no commit
		// can start meanwhile, so the state on disk becomes root's.
		if err := waitFor(viewFlushWait, func() bool { return diskRoot(l.kv) == root }); err != nil {
			return nil, fmt.Errorf("view: the state of block %d was not on disk within %s", v.height, viewFlushWait)
		}
	}
	snap, err := l.kv.snapshot()
	if err != nil {
		return nil, err
	}
	if got := diskRoot(snap); got != root {
		snap.release()
		return nil, fmt.Errorf("view: the state on disk has root %s, block %d has %s", got.TerminalString(), v.height, root.TerminalString())
	}
	v.nodes = &pinnedNodes{root: root, kv: snap}
	v.release = snap.release
	return v, nil
}

// viewFlushWait bounds the wait for pathdb's background write of the
// state a view pins.
const viewFlushWait = time.Minute

// waitFor polls cond, backing off from a millisecond to 50, until it holds
// or d has passed.
func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(pause)
	}
	return nil
}

// pinnedNodes reads the trie nodes of one state from a store snapshot
// holding it under the path scheme.
type pinnedNodes struct {
	root common.Hash
	kv   *kvSnapshot
}

func (p *pinnedNodes) NodeReader(root common.Hash) (database.NodeReader, error) {
	if root != p.root {
		return nil, fmt.Errorf("state %s is not the one this view holds (%s)", root.TerminalString(), p.root.TerminalString())
	}
	return p, nil
}

// Node returns the node at path of the trie of owner (zero: the account
// trie), checked against its hash; a node not found is nil, which the
// trie reports as missing.
func (p *pinnedNodes) Node(owner common.Hash, path []byte, hash common.Hash) ([]byte, error) {
	var blob []byte
	if owner == (common.Hash{}) {
		blob = rawdb.ReadAccountTrieNode(p.kv, path)
	} else {
		blob = rawdb.ReadStorageTrieNode(p.kv, owner, path)
	}
	if len(blob) == 0 {
		if !p.kv.open() {
			return nil, errStoreClosed
		}
		return nil, nil
	}
	if got := crypto.Keccak256Hash(blob); got != hash {
		return nil, fmt.Errorf("trie node %x of %x has hash %s, want %s", path, owner, got.TerminalString(), hash.TerminalString())
	}
	return blob, nil
}
