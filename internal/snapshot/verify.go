package snapshot

import (
	"bytes"
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/ethereum/go-ethereum/trie/trienode"
)

// Resume is a storage trie that continues in the next chunk: the account
// and the first key the continuation must start at.
type Resume struct {
	Account common.Hash
	Next    common.Hash
}

// ChunkInfo is what a verified chunk covers, for Cursor.
type ChunkInfo struct {
	HasAccounts  bool
	Origin, Last common.Hash // account keys covered: [Origin, Last]
	MoreAccounts bool        // accounts exist after Last
	Continues    *Resume     // the first storage range continues the previous chunk's
	Pending      *Resume     // the last storage range continues in the next chunk
}

// proofSet is a proof's nodes by hash; nil (the interface) for none, as
// trie.VerifyRangeProof takes a range that is the whole trie.
func proofSet(nodes [][]byte) ethdb.KeyValueReader {
	if len(nodes) == 0 {
		return nil
	}
	ps := trienode.NewProofSet()
	for _, n := range nodes {
		ps.Put(crypto.Keccak256(n), n)
	}
	return ps
}

func hashKeys(hs []common.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// VerifyChunk checks one chunk alone against the state root: the account
// range and every storage range prove against their roots, each account
// has its code, and the storage ranges are where the format puts them.
func VerifyChunk(root common.Hash, c *Chunk) (*ChunkInfo, error) {
	info := &ChunkInfo{}
	fulls := make(map[common.Hash]*types.StateAccount, len(c.Accounts))
	codes := make(map[common.Hash]bool, len(c.Code))
	for _, code := range c.Code {
		codes[crypto.Keccak256Hash(code)] = true
	}
	usedCodes := map[common.Hash]bool{}
	if len(c.Accounts) > 0 {
		keys := make([][]byte, len(c.Accounts))
		vals := make([][]byte, len(c.Accounts))
		for i, a := range c.Accounts {
			full, err := types.FullAccountRLP(a.Body)
			if err != nil {
				return nil, invalid("account %x: %v", a.Hash, err)
			}
			st, err := types.FullAccount(full)
			if err != nil {
				return nil, invalid("account %x: %v", a.Hash, err)
			}
			fulls[a.Hash] = st
			keys[i], vals[i] = a.Hash[:], full
			if ch := common.BytesToHash(st.CodeHash); ch != types.EmptyCodeHash {
				if !codes[ch] {
					return nil, invalid("account %x: code %x missing", a.Hash, ch)
				}
				usedCodes[ch] = true
			}
		}
		if c.Proof == nil {
			return nil, invalid("account range without proof")
		}
		more, err := trie.VerifyRangeProof(root, c.Origin[:], keys, vals, proofSet(c.Proof))
		if err != nil {
			return nil, invalid("account range %x..%x does not prove against root %s: %v", c.Origin, c.Accounts[len(c.Accounts)-1].Hash, root.TerminalString(), err)
		}
		info.HasAccounts, info.Origin, info.Last, info.MoreAccounts = true, c.Origin, c.Accounts[len(c.Accounts)-1].Hash, more
	} else if len(c.Proof) > 0 {
		return nil, invalid("account proof without accounts")
	}
	for code := range codes {
		if !usedCodes[code] {
			return nil, invalid("code %x used by no account of the chunk", code)
		}
	}
	// Storage ranges: an optional continuation first, then one range per
	// account with storage, in account order, from its first key; only
	// the last range may continue in the next chunk.
	ai := 0
	for i := range c.Storage {
		r := &c.Storage[i]
		var acct *types.StateAccount
		if len(r.AccountBody) > 0 {
			if i != 0 {
				return nil, invalid("storage range %d: a continuation must come first", i)
			}
			if _, in := fulls[r.Account]; in {
				return nil, invalid("storage range %d: continuation of an account of the chunk", i)
			}
			full, err := types.FullAccountRLP(r.AccountBody)
			if err != nil {
				return nil, invalid("continued account %x: %v", r.Account, err)
			}
			got, err := trie.VerifyProof(root, r.Account[:], proofSet(r.AccountProof))
			if err != nil || !bytes.Equal(got, full) {
				return nil, invalid("continued account %x does not prove against the root: %v", r.Account, err)
			}
			if acct, err = types.FullAccount(full); err != nil {
				return nil, invalid("continued account %x: %v", r.Account, err)
			}
			if info.HasAccounts && bytes.Compare(r.Account[:], c.Origin[:]) >= 0 {
				return nil, invalid("continued account %x is not before the chunk's accounts", r.Account)
			}
			info.Continues = &Resume{Account: r.Account, Next: r.Origin}
		} else {
			for ai < len(c.Accounts) && fulls[c.Accounts[ai].Hash].Root == types.EmptyRootHash {
				ai++
			}
			if ai >= len(c.Accounts) || c.Accounts[ai].Hash != r.Account {
				return nil, invalid("storage range %d of account %x out of place", i, r.Account)
			}
			if r.Origin != (common.Hash{}) {
				return nil, invalid("storage range %d of account %x does not start at its first key", i, r.Account)
			}
			acct = fulls[r.Account]
			ai++
		}
		if acct.Root == types.EmptyRootHash {
			return nil, invalid("storage range of account %x with empty storage", r.Account)
		}
		if len(r.Keys) == 0 {
			return nil, invalid("empty storage range of account %x", r.Account)
		}
		more, err := trie.VerifyRangeProof(acct.Root, r.Origin[:], hashKeys(r.Keys), r.Values, proofSet(r.Proof))
		if err != nil {
			return nil, invalid("storage of account %x from %x does not prove against its root: %v", r.Account, r.Origin, err)
		}
		if more {
			if i != len(c.Storage)-1 {
				return nil, invalid("storage range %d of account %x is incomplete but not last", i, r.Account)
			}
			info.Pending = &Resume{Account: r.Account, Next: incHash(r.Keys[len(r.Keys)-1])}
		}
	}
	// Every account with storage has its range, but the last one's may
	// have been cut before it started only if nothing follows it.
	for ; ai < len(c.Accounts); ai++ {
		if fulls[c.Accounts[ai].Hash].Root != types.EmptyRootHash {
			return nil, invalid("storage of account %x missing", c.Accounts[ai].Hash)
		}
	}
	if !info.HasAccounts && info.Continues == nil {
		return nil, invalid("chunk holds nothing")
	}
	return info, nil
}

// Cursor checks that verified chunks, taken in order, follow each other
// with no gap and cover the whole state.
type Cursor struct {
	next         common.Hash
	started      bool
	accountsDone bool
	pending      *Resume
	n            uint64
}

// Add takes the next chunk's info.
func (c *Cursor) Add(info *ChunkInfo) error {
	defer func() { c.n++ }()
	if c.pending != nil {
		if info.Continues == nil || *info.Continues != *c.pending {
			return invalid("chunk %d does not continue the storage of account %x at %x", c.n, c.pending.Account, c.pending.Next)
		}
	} else if info.Continues != nil {
		return invalid("chunk %d continues a storage range nothing left open", c.n)
	}
	if info.HasAccounts {
		if c.accountsDone {
			return invalid("chunk %d has accounts after the last", c.n)
		}
		if info.Origin != c.next {
			return invalid("chunk %d starts at %x, want %x", c.n, info.Origin, c.next)
		}
		c.next = incHash(info.Last)
		c.accountsDone = !info.MoreAccounts
		c.started = true
	} else if !c.started {
		return invalid("chunk %d: the first chunk must have accounts", c.n)
	}
	c.pending = info.Pending
	return nil
}

// Done reports whether the chunks so far cover the whole state.
func (c *Cursor) Done() error {
	if !c.accountsDone {
		return invalid("the chunks end at account %x, more follow", c.next)
	}
	if c.pending != nil {
		return invalid("the storage of account %x is cut at %x", c.pending.Account, c.pending.Next)
	}
	return nil
}

// Report is what VerifyFile found.
type Report struct {
	Height   uint64
	Hash     common.Hash
	Root     common.Hash
	Engine   string
	Signers  []common.Address // who certified the block
	Chunks   uint64
	Accounts uint64
	Slots    uint64
	Warnings []string
}

// VerifyFile checks a whole snapshot: the header against the trust
// anchor (Certify), then every chunk against the state root, in order,
// until the state is covered.
func VerifyFile(ctx context.Context, f *File, trust Trust) (*Report, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	block, cert, err := Certify(&f.Manifest.Header, trust)
	if err != nil {
		return nil, err
	}
	rep := &Report{Height: block.NumberU64(), Hash: block.Hash(), Root: block.Root(), Engine: f.Manifest.Header.Engine,
		Signers: cert.Signers, Warnings: cert.Warnings}
	var cur Cursor
	for i := uint64(0); i < f.Manifest.Trailer.Chunks; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		raw, err := f.RawChunk(i)
		if err != nil {
			return nil, err
		}
		c, err := DecodeChunk(raw)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
		info, err := VerifyChunk(block.Root(), c)
		if err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
		if err := cur.Add(info); err != nil {
			return nil, err
		}
		rep.Accounts += uint64(len(c.Accounts))
		for _, s := range c.Storage {
			rep.Slots += uint64(len(s.Keys))
		}
	}
	if err := cur.Done(); err != nil {
		return nil, err
	}
	rep.Chunks = f.Manifest.Trailer.Chunks
	return rep, nil
}
