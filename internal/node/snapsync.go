package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"
	"golang.org/x/time/rate"

	"github.com/charter-ledger/charter/internal/blockchain"
	"github.com/charter-ledger/charter/internal/durable"
	"github.com/charter-ledger/charter/internal/ledger"
	"github.com/charter-ledger/charter/internal/p2p"
	"github.com/charter-ledger/charter/internal/snapshot"
)

// SnapshotConfig is how a node makes snapshots for its peers' state sync
// and how it starts when its data directory holds no ledger.
type SnapshotConfig struct {
	// Every makes a snapshot at every height that is a multiple of it
	// (0: none), in DATA/snapshots, served to peers that sync.
	Every uint64
	// Keep bounds the snapshots kept (the newest; default 2).
	Keep int
	// ChunkBytes is where chunks are cut (0: snapshot.DefaultChunkBytes).
	ChunkBytes int
	// Sync is how a node with an empty data directory starts: SyncGenesis
	// (replay every block from the genesis; the default), SyncSnapshot
	// (state sync from the peers' newest snapshot, required) or SyncAuto
	// (state sync if a peer offers a snapshot within SyncWait, else
	// replay).
	Sync string
	// SyncWait bounds the wait for peers' offers (default 10s for auto,
	// 2m for snapshot).
	SyncWait time.Duration
}

// Sync modes.
const (
	SyncGenesis  = "genesis"
	SyncSnapshot = "snapshot"
	SyncAuto     = "auto"
)

func (c *SnapshotConfig) validate() error {
	switch c.Sync {
	case "", SyncGenesis, SyncSnapshot, SyncAuto:
	default:
		return fmt.Errorf("config: snapshots.sync %q: want genesis, snapshot or auto", c.Sync)
	}
	if c.Keep < 0 {
		return fmt.Errorf("config: snapshots.keep %d is negative", c.Keep)
	}
	if c.ChunkBytes != 0 && (c.ChunkBytes < snapshot.MinChunkBytes || c.ChunkBytes > snapshot.MaxChunkBytes) {
		return fmt.Errorf("config: snapshots.chunkBytes %d outside %d..%d", c.ChunkBytes, snapshot.MinChunkBytes, snapshot.MaxChunkBytes)
	}
	return nil
}

// The state sync messages on the peer links.
const (
	// msgSnapRequest asks a peer for its newest snapshot's manifest or
	// for one chunk of a snapshot (snapRequest).
	msgSnapRequest = p2p.FirstUserType + 8
	// msgSnapResponse answers it (snapResponse).
	msgSnapResponse = p2p.FirstUserType + 9
)

const (
	snapKindManifest = 0
	snapKindChunk    = 1
	// maxManifestBytes bounds an offered manifest (its chunk hashes).
	maxManifestBytes = 8 << 20
)

type snapRequest struct {
	ID       uint64
	Kind     uint64
	Snapshot common.Hash // manifest ID (chunk requests)
	Index    uint64
}

type snapResponse struct {
	ID       uint64
	Kind     uint64
	Manifest []byte // RLP snapshot.Manifest without offsets; empty: none
	Chunk    []byte
	Err      string
}

// snapServeHook, when set (tests), may alter the chunks a node serves.
var snapServeHook func(self common.Address, raw []byte) []byte

// snapshotStore is the node's snapshots on disk, made every Every
// blocks, the newest Keep kept.
type snapshotStore struct {
	n    *Node
	dir  string
	cfg  SnapshotConfig
	mu   sync.Mutex
	busy bool
	list []*storedSnapshot // ascending height

	ctx    context.Context
	cancel context.CancelFunc

	// serveMu guards limits: each peer's budget of chunk bytes served,
	// so that a peer asking faster than it reads cannot fill its send
	// queue with chunks (the queue is bounded in messages, not bytes).
	serveMu sync.Mutex
	limits  map[p2p.NodeID]*rate.Limiter
}

// Serving bounds: per peer, chunk bytes per second and burst (one chunk
// of the largest size), and the peers remembered.
const (
	serveBytesPerSec = 32 << 20
	serveBurst       = snapshot.MaxRecordBytes
	serveMaxPeers    = 256
)

// allow reports whether peer may be sent n more chunk bytes now.
func (s *snapshotStore) allow(peer p2p.NodeID, n int) bool {
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	if s.limits == nil {
		s.limits = map[p2p.NodeID]*rate.Limiter{}
	}
	now := time.Now()
	l := s.limits[peer]
	if l == nil {
		if len(s.limits) >= serveMaxPeers {
			// Forget the peers whose budget has refilled: they are idle,
			// and a new limiter would give them no more than they have.
			for id, old := range s.limits {
				if old.TokensAt(now) >= serveBurst {
					delete(s.limits, id)
				}
			}
			if len(s.limits) >= serveMaxPeers {
				return false // every remembered peer is fetching: wait
			}
		}
		l = rate.NewLimiter(serveBytesPerSec, serveBurst)
		s.limits[peer] = l
	}
	return l.AllowN(now, n)
}

type storedSnapshot struct {
	height   uint64
	path     string
	id       common.Hash
	manifest []byte // encoded for peers
	file     *os.File
	sf       *snapshot.File
}

func snapshotName(height uint64) string { return fmt.Sprintf("snapshot-%020d.chsnap", height) }

// openSnapshotStore lists the snapshots in DATA/snapshots, removing the
// partial files an interrupted export left and any that do not open.
func openSnapshotStore(n *Node, cfg SnapshotConfig) (*snapshotStore, error) {
	if cfg.Keep == 0 {
		cfg.Keep = 2
	}
	s := &snapshotStore{n: n, dir: filepath.Join(n.cfg.DataDir, "snapshots"), cfg: cfg}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	entries, err := os.ReadDir(s.dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range entries {
		p := filepath.Join(s.dir, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(p)
			continue
		}
		var h uint64
		if _, err := fmt.Sscanf(e.Name(), "snapshot-%020d.chsnap", &h); err != nil {
			continue
		}
		st, err := openStored(p, h)
		if err != nil {
			n.log.Warn("Removing a snapshot that does not open", "file", p, "err", err)
			os.Remove(p)
			continue
		}
		s.list = append(s.list, st)
	}
	sort.Slice(s.list, func(i, j int) bool { return s.list[i].height < s.list[j].height })
	s.prune()
	return s, nil
}

func openStored(path string, height uint64) (*storedSnapshot, error) {
	sf, f, err := snapshot.OpenFile(path)
	if err != nil {
		return nil, err
	}
	m := sf.Manifest
	m.Trailer.Offsets = nil
	raw, err := rlp.EncodeToBytes(&m)
	if err != nil || len(raw) > maxManifestBytes {
		f.Close()
		return nil, fmt.Errorf("manifest of %d bytes (%v)", len(raw), err)
	}
	return &storedSnapshot{height: height, path: path, id: m.ID(), manifest: raw, file: f, sf: sf}, nil
}

// prune keeps the newest Keep snapshots. Callers hold mu or own s.
func (s *snapshotStore) prune() {
	for len(s.list) > s.cfg.Keep {
		old := s.list[0]
		s.list = s.list[1:]
		old.file.Close()
		os.Remove(old.path)
	}
}

// onCommit starts an export at every Every-th height, one at a time.
func (s *snapshotStore) onCommit(c *blockchain.Committed) error {
	h := c.Block.NumberU64()
	if s.cfg.Every == 0 || h == 0 || h%s.cfg.Every != 0 {
		return nil
	}
	s.mu.Lock()
	if s.busy {
		s.mu.Unlock()
		s.n.log.Warn("Skipping a snapshot: the previous one is still being written", "height", h)
		return nil
	}
	s.busy = true
	s.mu.Unlock()
	// Subscribers run on the committing goroutine: the head is h, and the
	// view pins its state for the export however long that takes.
	view, err := s.n.ledger.ViewHead()
	if err == nil && view.Height() != h {
		view.Release()
		err = fmt.Errorf("the head is %d", view.Height())
	}
	if err != nil {
		s.mu.Lock()
		s.busy = false
		s.mu.Unlock()
		s.n.log.Warn("Snapshot failed", "height", h, "err", err)
		return nil
	}
	s.n.wg.Add(1)
	go func() {
		defer s.n.wg.Done()
		err := s.make(view)
		view.Release()
		s.mu.Lock()
		s.busy = false
		s.mu.Unlock()
		if err != nil && s.ctx.Err() == nil {
			s.n.log.Warn("Snapshot failed", "height", h, "err", err)
		}
	}()
	return nil
}

// make exports the snapshot of the view's height to a temporary file, syncs it and
// renames it in place: a crash leaves a .tmp file, removed at the next
// start.
func (s *snapshotStore) make(view *ledger.StateView) error {
	height := view.Height()
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return err
	}
	final := filepath.Join(s.dir, snapshotName(height))
	tmp := final + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	handovers, herr := snapshot.LoadHandovers(s.n.cfg.DataDir)
	if herr != nil {
		s.n.log.Warn("Snapshot without the validator set handovers", "err", herr)
	}
	_, err = snapshot.Export(f, view, height, snapshot.ExportOptions{ChunkBytes: s.cfg.ChunkBytes, Attest: s.n.attest, Context: s.ctx, Handovers: handovers})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	_ = durable.OSFS{}.SyncDir(s.dir) // the rename stands either way; a later one syncs again
	st, err := openStored(final, height)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.ctx.Err() != nil { // closed meanwhile
		s.mu.Unlock()
		st.file.Close()
		return nil
	}
	s.list = append(s.list, st)
	s.prune()
	s.mu.Unlock()
	s.n.log.Info("Snapshot made", "height", height, "chunks", st.sf.Manifest.Trailer.Chunks, "file", final)
	return nil
}

func (s *snapshotStore) close() {
	s.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.list {
		st.file.Close()
	}
	s.list = nil
}

// backed reports whether the node holds the bodies of every block after
// st's height, which a node that syncs from st asks its peers for next:
// an observer that prunes bodies (history.bodies) serves only the
// snapshots it can back.
func (s *snapshotStore) backed(st *storedSnapshot) bool {
	return st.height+1 >= s.n.ledger.BodiesFrom()
}

// offeredLocked is the snapshot offered to peers: the newest, if backed.
// Callers hold mu.
func (s *snapshotStore) offeredLocked() *storedSnapshot {
	if len(s.list) == 0 {
		return nil
	}
	if st := s.list[len(s.list)-1]; s.backed(st) {
		return st
	}
	return nil
}

// handleRequest answers a peer's msgSnapRequest. It runs on the peer's
// reader goroutine; the answer is queued (dropped if the peer's queue is
// full: the requester asks again).
func (s *snapshotStore) handleRequest(tr *p2p.Transport, from p2p.NodeID, payload []byte) {
	var req snapRequest
	if err := rlp.DecodeBytes(payload, &req); err != nil {
		return
	}
	resp := snapResponse{ID: req.ID, Kind: req.Kind}
	s.mu.Lock()
	switch req.Kind {
	case snapKindManifest:
		if st := s.offeredLocked(); st != nil {
			resp.Manifest = st.manifest
		}
		s.mu.Unlock()
	case snapKindChunk:
		var st *storedSnapshot
		for _, x := range s.list {
			if x.id == req.Snapshot {
				st = x
			}
		}
		s.mu.Unlock()
		if st == nil {
			resp.Err = "snapshot not served here (pruned?)"
			break
		}
		if !s.backed(st) {
			resp.Err = fmt.Sprintf("snapshot of block %d not served here: this node keeps the block bodies from %d on only (history.bodies), so it could not serve the blocks after it", st.height, s.n.ledger.BodiesFrom())
			break
		}
		if req.Index >= st.sf.Manifest.Trailer.Chunks {
			resp.Err = "no such chunk"
			break
		}
		if !s.allow(from, st.sf.ChunkSize(req.Index)) {
			resp.Err = "busy: ask more slowly"
			break
		}
		raw, err := st.sf.RawChunk(req.Index)
		if err != nil {
			resp.Err = err.Error()
		} else {
			resp.Chunk = raw
			if snapServeHook != nil {
				resp.Chunk = snapServeHook(s.n.self, raw)
			}
		}
	default:
		s.mu.Unlock()
		return
	}
	out, err := rlp.EncodeToBytes(&resp)
	if err != nil {
		return
	}
	if err := tr.Send(from, msgSnapResponse, out); err != nil && !errors.Is(err, p2p.ErrMessageTooLarge) {
		s.n.log.Debug("Snapshot answer not sent", "peer", from, "err", err)
	}
}

// HomeSnapshots is the "snapshots" section of a node's config.json.
type HomeSnapshots struct {
	// Every is the height interval of snapshots (default 1000; 0 with
	// Off: none).
	Every uint64 `json:"every,omitempty"`
	Off   bool   `json:"off,omitempty"`
	// Keep is how many are kept (default 2).
	Keep int `json:"keep,omitempty"`
	// ChunkBytes is the chunk size (default 4 MiB).
	ChunkBytes int `json:"chunkBytes,omitempty"`
	// Sync is how the node starts on an empty data directory: genesis
	// (default), snapshot or auto.
	Sync string `json:"sync,omitempty"`
	// SyncWait bounds the wait for peers' offers ("10s", "2m").
	SyncWait string `json:"syncWait,omitempty"`
}

// DefaultSnapshotEvery is the height interval of a home node's snapshots.
const DefaultSnapshotEvery = 1000

func (h *HomeSnapshots) config() SnapshotConfig {
	if h == nil {
		return SnapshotConfig{Every: DefaultSnapshotEvery}
	}
	c := SnapshotConfig{Every: h.Every, Keep: h.Keep, ChunkBytes: h.ChunkBytes, Sync: h.Sync}
	if c.Every == 0 && !h.Off {
		c.Every = DefaultSnapshotEvery
	}
	if h.Off {
		c.Every = 0
	}
	c.SyncWait, _ = time.ParseDuration(h.SyncWait) // checked by validate
	return c
}

// StateSync is the state sync New did (nil: none).
func (n *Node) StateSync() *SyncStats { return n.synced }

// LatestSnapshot is the height of the newest snapshot the node serves
// (0: none).
func (n *Node) LatestSnapshot() uint64 {
	if n.snaps == nil {
		return 0
	}
	n.snaps.mu.Lock()
	defer n.snaps.mu.Unlock()
	if len(n.snaps.list) == 0 {
		return 0
	}
	return n.snaps.list[len(n.snaps.list)-1].height
}

func (h *HomeSnapshots) validate() error {
	if _, err := parseDurationIn("snapshots.syncWait", h.SyncWait, time.Second, 24*time.Hour); err != nil {
		return err
	}
	c := h.config()
	if err := c.validate(); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "config: "))
	}
	return nil
}
