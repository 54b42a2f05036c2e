package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/charter-ledger/charter/internal/durable"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/p2p"
	"github.com/charter-ledger/charter/internal/snapshot"
)

// Bounds of state sync.
const (
	// syncInflight bounds the chunk requests outstanding at once (and so
	// the chunks held in memory: each at most snapshot.MaxRecordBytes).
	syncInflight = 4
	// syncRequestTimeout bounds the wait for one answer.
	syncRequestTimeout = 30 * time.Second
	// syncOfferSettle is how long offers are collected after the first
	// when not every peer answered: long enough to ask again a peer whose
	// answer was lost (a connection replaced by a duplicate).
	syncOfferSettle = 3 * syncOfferTimeout
	// syncOfferTimeout bounds the wait for one peer's offer.
	syncOfferTimeout = 3 * time.Second
)

// SyncStats are what a state sync did, for logs and tests.
type SyncStats struct {
	Height     uint64
	Snapshot   common.Hash
	Chunks     uint64 // in the snapshot
	Fetched    uint64 // downloaded and verified now
	Resumed    uint64 // verified before a restart, kept
	Refused    uint64 // chunks refused (bad proof or hash), taken from another peer
	BadPeers   []common.Address
	Duration   time.Duration
	ImportTime time.Duration
}

// syncTestHook, when set (tests), runs after each chunk is stored.
var syncTestHook func(index uint64)

// stateSync fills a data directory that holds no ledger from the peers'
// newest snapshot: it asks every peer for its offer, takes the highest
// snapshot whose block the validators certified (snapshot.Certify,
// against the genesis), downloads its chunks from the peers that offer
// it, verifies each on arrival (its hash in the manifest and its proofs
// against the state root) and refuses a bad one, taking it from another
// peer. Verified chunks are kept in DATA/statesync, so a restart resumes;
// then the chunks are imported as the ledger. It returns nil stats when
// no sync was done (mode genesis, a ledger already there, or auto mode
// without offers).
func stateSync(cfg Config, log *slog.Logger) (*SyncStats, error) {
	mode := cfg.Snapshots.Sync
	if mode == "" || mode == SyncGenesis {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "chaindata")); err == nil {
		return nil, nil
	}
	if cfg.Network == nil {
		return nil, errors.New("config: snapshots.sync needs the p2p network: the peers serve the snapshots")
	}
	wait := cfg.Snapshots.SyncWait
	if wait == 0 {
		wait = 10 * time.Second
		if mode == SyncSnapshot {
			wait = 2 * time.Minute
		}
	}
	start := time.Now()
	spec := cfg.Spec
	genesis, err := ledger.GenesisBlock(spec)
	if err != nil {
		return nil, err
	}
	trust := snapshot.TrustFromSpec(spec, genesis.Hash())
	ts, err := TrustStore(spec)
	if err != nil {
		return nil, err
	}
	// Only the configured peers and the genesis validators are asked.
	allowed := map[common.Address]bool{}
	for _, v := range spec.Consensus.Validators {
		allowed[v] = true
	}
	for _, p := range cfg.Network.Peers {
		if p.ID != (common.Address{}) {
			allowed[p.ID] = true
		}
	}
	c := &syncClient{log: log, pending: map[uint64]chan snapResponse{}, static: len(cfg.Network.Peers)}
	tr, err := p2p.New(p2p.Config{
		ChainID:     spec.ChainID(),
		GenesisHash: genesis.Hash(),
		NodeKey:     cfg.NodeKey,
		Certificate: cfg.Network.Certificate,
		Trust:       ts,
		StaticPeers: cfg.Network.Peers,
		Authorize: func(p p2p.PeerInfo) error {
			if !allowed[p.ID] {
				return fmt.Errorf("node %s is neither a configured peer nor a genesis validator", p.ID)
			}
			return nil
		},
	}, log)
	if err != nil {
		return nil, err
	}
	c.tr = tr
	tr.Handle(msgSnapResponse, c.onResponse)
	if err := tr.Start(); err != nil {
		return nil, err
	}
	defer tr.Close()

	dir := filepath.Join(cfg.DataDir, "statesync")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var saved *snapshot.Manifest
	if raw, err := os.ReadFile(filepath.Join(dir, "manifest")); err == nil {
		var m snapshot.Manifest
		if rlp.DecodeBytes(raw, &m) == nil {
			if _, _, err := snapshot.Certify(&m.Header, trust); err == nil {
				saved = &m
			}
		}
	}
	offer, sources, err := c.offers(trust, saved, wait)
	if err != nil {
		return nil, err
	}
	if offer == nil {
		if mode == SyncAuto {
			log.Info("No peer offers a snapshot; replaying the chain from the genesis")
			os.RemoveAll(dir)
			return nil, nil
		}
		return nil, fmt.Errorf("state sync: no peer offered a snapshot certified by the validators within %s; start the node with snapshots.sync genesis to replay the chain, or wait until peers have made one", wait)
	}
	id := offer.ID()
	block, _ := offer.Header.DecodeBlock()
	st := &SyncStats{Height: block.NumberU64(), Snapshot: id, Chunks: offer.Trailer.Chunks}
	if saved == nil || saved.ID() != id {
		// Another snapshot: the chunks of the old one are of no use.
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		raw, _ := rlp.EncodeToBytes(offer)
		if err := durable.WriteFile(durable.OSFS{}, filepath.Join(dir, "manifest"), raw, 0o600); err != nil {
			return nil, err
		}
	}
	log.Info("State sync", "height", st.Height, "hash", block.Hash(), "chunks", st.Chunks, "peers", len(sources))
	if err := c.download(offer, block.Root(), sources, dir, st); err != nil {
		return nil, err
	}
	t0 := time.Now()
	read := func(i uint64) ([]byte, error) { return os.ReadFile(chunkPath(dir, i)) }
	if _, err := snapshot.Import(context.Background(), offer, read, cfg.DataDir, spec, ledger.Options{}, trust); err != nil {
		return nil, fmt.Errorf("state sync: import: %w", err)
	}
	st.ImportTime = time.Since(t0)
	os.RemoveAll(dir)
	st.Duration = time.Since(start)
	log.Info("State sync done", "height", st.Height, "fetched", st.Fetched, "resumed", st.Resumed, "refused", st.Refused, "took", st.Duration)
	return st, nil
}

func chunkPath(dir string, i uint64) string { return filepath.Join(dir, fmt.Sprintf("chunk-%07d", i)) }

type syncClient struct {
	static  int // configured peers
	log     *slog.Logger
	tr      *p2p.Transport
	nextID  atomic.Uint64
	mu      sync.Mutex
	pending map[uint64]chan snapResponse
}

func (c *syncClient) onResponse(from p2p.NodeID, payload []byte) {
	var r snapResponse
	if err := rlp.DecodeBytes(payload, &r); err != nil {
		return
	}
	c.mu.Lock()
	ch := c.pending[r.ID]
	delete(c.pending, r.ID)
	c.mu.Unlock()
	if ch != nil {
		ch <- r // buffered 1; each ID is answered once
	}
}

// ask sends one request to a peer and waits for its answer.
func (c *syncClient) ask(to p2p.NodeID, req snapRequest, timeout time.Duration) (snapResponse, error) {
	req.ID = c.nextID.Add(1)
	ch := make(chan snapResponse, 1)
	c.mu.Lock()
	c.pending[req.ID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.ID)
		c.mu.Unlock()
	}()
	raw, _ := rlp.EncodeToBytes(&req)
	if err := c.tr.Send(to, msgSnapRequest, raw); err != nil {
		return snapResponse{}, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-time.After(timeout):
		return snapResponse{}, fmt.Errorf("no answer within %s", timeout)
	}
}

// offers asks the connected peers for their newest snapshot until wait
// passes, or until syncOfferSettle after a first certified offer. It
// returns the offer to take and the peers that made it: the snapshot
// saved by an interrupted sync if a peer still offers it, else the
// highest, the one most peers offer among equals.
func (c *syncClient) offers(trust snapshot.Trust, saved *snapshot.Manifest, wait time.Duration) (*snapshot.Manifest, []p2p.NodeID, error) {
	deadline := time.Now().Add(wait)
	var settle time.Time
	type offered struct {
		m      *snapshot.Manifest
		height uint64
		peers  []p2p.NodeID
	}
	byID := map[common.Hash]*offered{}
	asked := map[p2p.NodeID]bool{}
	answered := map[p2p.NodeID]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for {
		for _, p := range c.tr.Peers() {
			mu.Lock()
			was := asked[p.ID]
			asked[p.ID] = true
			mu.Unlock()
			if was {
				continue
			}
			wg.Add(1)
			go func(id p2p.NodeID) {
				defer wg.Done()
				r, err := c.ask(id, snapRequest{Kind: snapKindManifest}, syncOfferTimeout)
				if err == nil {
					mu.Lock()
					answered[id] = true
					mu.Unlock()
				}
				if err != nil {
					mu.Lock()
					asked[id] = false // ask again on the next round
					mu.Unlock()
					return
				}
				if len(r.Manifest) == 0 || len(r.Manifest) > maxManifestBytes {
					return
				}
				var m snapshot.Manifest
				if err := rlp.DecodeBytes(r.Manifest, &m); err != nil {
					return
				}
				if m.Trailer.Chunks == 0 || m.Trailer.Chunks > snapshot.MaxChunks || uint64(len(m.Trailer.Hashes)) != m.Trailer.Chunks {
					return
				}
				block, _, err := snapshot.Certify(&m.Header, trust)
				if err != nil {
					c.log.Warn("A peer offers a snapshot that is not certified; ignoring it", "peer", id, "err", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				o := byID[m.ID()]
				if o == nil {
					o = &offered{m: &m, height: block.NumberU64()}
					byID[m.ID()] = o
				}
				o.peers = append(o.peers, id)
			}(p.ID)
		}
		peers := c.tr.Peers()
		mu.Lock()
		n := len(byID)
		all := len(answered) >= len(peers)
		mu.Unlock()
		now := time.Now()
		if n > 0 && settle.IsZero() {
			settle = now.Add(syncOfferSettle)
		}
		// Done when every static peer is connected and has answered, or
		// some time after the first offer, or at the deadline.
		if now.After(deadline) || (n > 0 && all && len(peers) >= c.static) || (!settle.IsZero() && now.After(settle)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Answers still on their way are waited for (each bounded by its
	// timeout).
	wg.Wait()
	var best *offered
	for id, o := range byID {
		if saved != nil && id == saved.ID() {
			return o.m, o.peers, nil
		}
		if best == nil || o.height > best.height || (o.height == best.height && len(o.peers) > len(best.peers)) {
			best = o
		}
	}
	if best == nil {
		return nil, nil, nil
	}
	return best.m, best.peers, nil
}

// download fetches every chunk not already verified in dir.
func (c *syncClient) download(m *snapshot.Manifest, root common.Hash, sources []p2p.NodeID, dir string, st *SyncStats) error {
	id := m.ID()
	var todo []uint64
	for i := uint64(0); i < m.Trailer.Chunks; i++ {
		raw, err := os.ReadFile(chunkPath(dir, i))
		if err == nil && crypto.Keccak256Hash(raw) == m.Trailer.Hashes[i] {
			st.Resumed++
			continue
		}
		todo = append(todo, i)
	}
	var (
		mu     sync.Mutex
		good   = slices.Clone(sources)
		turn   int
		failed error
	)
	// pick returns the next peer still trusted, round robin.
	pick := func() (p2p.NodeID, bool) {
		mu.Lock()
		defer mu.Unlock()
		if len(good) == 0 {
			return p2p.NodeID{}, false
		}
		turn++
		return good[turn%len(good)], true
	}
	drop := func(p p2p.NodeID, bad bool) {
		mu.Lock()
		defer mu.Unlock()
		if i := slices.Index(good, p); i >= 0 {
			good = slices.Delete(good, i, i+1)
			if bad {
				st.BadPeers = append(st.BadPeers, p)
			}
		}
	}
	jobs := make(chan uint64)
	var wg sync.WaitGroup
	for w := 0; w < syncInflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := c.fetch(m, id, root, i, dir, st, &mu, pick, drop); err != nil {
					mu.Lock()
					if failed == nil {
						failed = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, i := range todo {
		mu.Lock()
		stop := failed != nil
		mu.Unlock()
		if stop {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return failed
}

// fetch gets chunk i from the trusted peers in turn until one serves it
// verified; a peer that serves a chunk that does not verify is refused
// for the rest of the sync.
func (c *syncClient) fetch(m *snapshot.Manifest, id, root common.Hash, i uint64, dir string, st *SyncStats, mu *sync.Mutex,
	pick func() (p2p.NodeID, bool), drop func(p2p.NodeID, bool)) error {
	for attempt := 0; ; attempt++ {
		peer, ok := pick()
		if !ok {
			return fmt.Errorf("state sync: chunk %d: no peer left that serves snapshot %s verified", i, id.TerminalString())
		}
		r, err := c.ask(peer, snapRequest{Kind: snapKindChunk, Snapshot: id, Index: i}, syncRequestTimeout)
		if err != nil || r.Err != "" {
			if err == nil {
				err = errors.New(r.Err)
			}
			c.log.Info("State sync: a peer did not serve a chunk", "peer", peer, "chunk", i, "err", err)
			if attempt > 3*syncInflight {
				drop(peer, false)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err := verifyChunk(m, root, i, r.Chunk); err != nil {
			mu.Lock()
			st.Refused++
			mu.Unlock()
			c.log.Warn("State sync: refused a chunk that does not verify; taking it from another peer", "peer", peer, "chunk", i, "err", err)
			drop(peer, true)
			continue
		}
		if err := durable.WriteFile(durable.OSFS{}, chunkPath(dir, i), r.Chunk, 0o600); err != nil {
			return err
		}
		mu.Lock()
		st.Fetched++
		mu.Unlock()
		if syncTestHook != nil {
			syncTestHook(i)
		}
		return nil
	}
}

func verifyChunk(m *snapshot.Manifest, root common.Hash, i uint64, raw []byte) error {
	if crypto.Keccak256Hash(raw) != m.Trailer.Hashes[i] {
		return errors.New("chunk does not match the manifest's hash")
	}
	c, err := snapshot.DecodeChunk(raw)
	if err != nil {
		return err
	}
	_, err = snapshot.VerifyChunk(root, c)
	return err
}
