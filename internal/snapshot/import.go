package snapshot

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/ledger"
)

// ChunkReader returns the encoded chunk i of a manifest.
type ChunkReader func(i uint64) ([]byte, error)

// Import verifies a snapshot and writes it as the ledger of dir, which
// must hold none: the state through stack tries whose nodes go to the
// store, then the block and its seal as the head. The chunks are
// verified again as they are written (each against the root, in order,
// and against the manifest's hashes), so a snapshot is never imported
// half-checked. Open the ledger in dir afterwards.
func Import(ctx context.Context, m *Manifest, read ChunkReader, dir string, spec *chain.Spec, opts ledger.Options, trust Trust) (*types.Block, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	block, _, err := Certify(&m.Header, trust)
	if err != nil {
		return nil, err
	}
	im, err := ledger.NewImport(dir, spec, opts)
	if err != nil {
		return nil, err
	}
	if err := writeState(ctx, m, read, block.Root(), im); err != nil {
		im.Abort()
		return nil, err
	}
	receipts, _ := m.Header.DecodeReceipts() // checked by Certify
	// The handovers that anchored the snapshot's validators stay with the
	// node, so that the snapshots it makes later are anchored too. Kept
	// before the ledger appears: a crash in between only adds them again.
	if _, err := AddHandovers(dir, m.Header.Handovers); err != nil {
		im.Abort()
		return nil, fmt.Errorf("keep the validator set handovers: %w", err)
	}
	if err := im.Finish(block, receipts, m.Header.Seal); err != nil {
		return nil, err
	}
	return block, nil
}

func writeState(ctx context.Context, m *Manifest, read ChunkReader, root common.Hash, im *ledger.Importer) error {
	var werr error
	note := func(err error) {
		if err != nil && werr == nil {
			werr = err
		}
	}
	acc := trie.NewStackTrie(func(path []byte, hash common.Hash, blob []byte) {
		note(im.Node(common.Hash{}, path, hash, blob))
	})
	var (
		cur      Cursor
		st       *trie.StackTrie
		stOwner  common.Hash
		stRoot   common.Hash
		openSlot bool
	)
	startStorage := func(owner, sroot common.Hash) {
		stOwner, stRoot, openSlot = owner, sroot, true
		st = trie.NewStackTrie(func(path []byte, hash common.Hash, blob []byte) {
			note(im.Node(owner, path, hash, blob))
		})
	}
	endStorage := func() error {
		openSlot = false
		if got := st.Hash(); got != stRoot {
			return invalid("storage of account %x builds root %s, want %s", stOwner, got.TerminalString(), stRoot.TerminalString())
		}
		return nil
	}
	for i := uint64(0); i < m.Trailer.Chunks; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		raw, err := read(i)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		if crypto.Keccak256Hash(raw) != m.Trailer.Hashes[i] {
			return invalid("chunk %d does not match the manifest's hash", i)
		}
		c, err := DecodeChunk(raw)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		info, err := VerifyChunk(root, c)
		if err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		if err := cur.Add(info); err != nil {
			return err
		}
		for _, code := range c.Code {
			note(im.Code(crypto.Keccak256Hash(code), code))
		}
		roots := make(map[common.Hash]common.Hash, len(c.Accounts))
		for _, a := range c.Accounts {
			full, _ := types.FullAccountRLP(a.Body) // checked by VerifyChunk
			if err := acc.Update(a.Hash[:], full); err != nil {
				return err
			}
			sa, _ := types.FullAccount(full)
			roots[a.Hash] = sa.Root
		}
		for j := range c.Storage {
			r := &c.Storage[j]
			if len(r.AccountBody) == 0 {
				startStorage(r.Account, roots[r.Account])
			} else if !openSlot || stOwner != r.Account {
				return invalid("chunk %d continues storage of %x that is not open", i, r.Account)
			}
			for k, key := range r.Keys {
				if err := st.Update(key[:], r.Values[k]); err != nil {
					return err
				}
			}
			if info.Pending == nil || j != len(c.Storage)-1 {
				if err := endStorage(); err != nil {
					return err
				}
			}
		}
		if werr != nil {
			return werr
		}
	}
	if err := cur.Done(); err != nil {
		return err
	}
	if got := acc.Hash(); got != root {
		return invalid("state builds root %s, want %s", got.TerminalString(), root.TerminalString())
	}
	return werr
}
