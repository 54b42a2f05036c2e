package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/durable"
)

// A backup of a running node (docs/operations.md, "Backup and restore")
// is a folder:
//
//	manifest.json      what the backup is, written last: chain id, genesis
//	                   hash, height, head hash, state root, node identity,
//	                   and every other file with its size and SHA-256
//	home/...           the node's home folder outside its data directory:
//	                   config.json, genesis, node key, TLS certificate and
//	                   key, privacy key, whatever else the home holds
//	data/chaindata/    the ledger: a checkpoint at a height boundary (what
//	                   Ledger.Checkpoint writes; the recent heights' state
//	                   of the path scheme is rebuilt by a replay at start)
//	data/private/      the private state: every privacy group's database as
//	                   one point-in-time view, the tombstones of purged
//	                   groups, the applier's cursor files
//	data/access/       the built-in token issuer's clients and signing keys
//	data/keystore/     the node-held signing keys (encrypted)
//	data/streams/      the event streams and their cursors
//	data/raft/         raft only: the newest segment of the raft log
//
// Left out, on purpose: the SQL index (index.sqlite: rebuilt from the
// ledger at start), the logs (access logs stay with the home they were
// written in), and the bft and poa engine state (bft-state, poa-state):
// it guards the votes of the height in progress, which the backup's time
// has left behind; the engine starts from the ledger's head and follows
// the network's certificates instead.
//
// The parts are taken in an order that leaves each one at or below the
// next, as after a crash: the small files and the private state first,
// then the ledger's checkpoint, then the raft log (which must reach the
// entry that committed the ledger's head).

// Backup layout names.
const (
	ManifestFile   = "manifest.json"
	BackupHomeDir  = "home"
	BackupDataDir  = "data"
	BackupFormat   = 1
	backupRaftDir  = "raft"
	backupLogsDir  = "logs"
	maxBackupFiles = 1_000_000
)

// backupDataDirs are the folders of the data directory copied file by
// file: each of their files is replaced whole (written aside, renamed),
// so a read of it is one of its versions.
var backupDataDirs = []string{"access", "keystore", "streams"}

// BackupManifest is DIR/manifest.json.
type BackupManifest struct {
	Format      int            `json:"format"`
	ChainID     uint64         `json:"chainId"`
	GenesisHash common.Hash    `json:"genesisHash"`
	Height      uint64         `json:"height"`
	HeadHash    common.Hash    `json:"headHash"`
	StateRoot   common.Hash    `json:"stateRoot"`
	Node        common.Address `json:"node"`
	Name        string         `json:"name,omitempty"`
	Org         string         `json:"org,omitempty"`
	Engine      string         `json:"engine"`
	Created     time.Time      `json:"created"`
	// Files are every file of the backup but the manifest, sorted by
	// path (slash-separated, relative to the backup folder).
	Files []BackupFile `json:"files"`
}

// BackupFile is one file of a backup.
type BackupFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// checkpointer is the ledger's consistent copy: a pebble checkpoint of
// the chain store into dir at a height boundary, and that height.
type checkpointer interface {
	Checkpoint(dir string) (height uint64, err error)
}

// ErrBackupRunning: a backup of this node is under way already.
var ErrBackupRunning = errors.New("a backup of this node is under way already")

// backupState is the backup under way or the last one made.
type backupState struct {
	mu       sync.Mutex
	running  bool
	dir      string
	started  time.Time
	manifest *BackupManifest
	err      error
}

// BackupStatus is what GET BackupPath answers.
type BackupStatus struct {
	State    string          `json:"state"` // none, running, done, failed
	Dir      string          `json:"dir,omitempty"`
	Started  time.Time       `json:"started,omitzero"`
	Error    string          `json:"error,omitempty"`
	Manifest *BackupManifest `json:"manifest,omitempty"`
}

// StartBackup begins a backup into dir (absolute; missing or empty) in
// the background; BackupStatus follows it. One runs at a time.
func (n *Node) StartBackup(dir string) error {
	if err := n.checkBackupDir(dir); err != nil {
		return err
	}
	b := &n.backup
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running {
		return fmt.Errorf("%w (into %s)", ErrBackupRunning, b.dir)
	}
	select {
	case <-n.quit:
		return errors.New("the node is stopping")
	default:
	}
	b.running, b.dir, b.started, b.manifest, b.err = true, dir, time.Now().UTC(), nil, nil
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		m, err := n.Backup(dir)
		b.mu.Lock()
		b.running, b.manifest, b.err = false, m, err
		b.mu.Unlock()
	}()
	return nil
}

// BackupStatus reports the backup under way or the last one.
func (n *Node) BackupStatus() BackupStatus {
	b := &n.backup
	b.mu.Lock()
	defer b.mu.Unlock()
	st := BackupStatus{State: "none", Dir: b.dir, Started: b.started, Manifest: b.manifest}
	switch {
	case b.running:
		st.State = "running"
	case b.err != nil:
		st.State, st.Error = "failed", b.err.Error()
	case b.manifest != nil:
		st.State = "done"
	}
	return st
}

// checkBackupDir accepts an absolute folder that is missing or empty and
// lies outside the data directory and the home.
func (n *Node) checkBackupDir(dir string) error {
	if dir == "" || !filepath.IsAbs(dir) {
		return fmt.Errorf("backup folder %q is not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	data, _ := filepath.Abs(n.cfg.DataDir)
	if within(dir, data) || within(data, dir) {
		return fmt.Errorf("backup folder %s overlaps the data directory %s; choose a folder outside it", dir, data)
	}
	if n.cfg.Home != "" {
		if home, err := filepath.Abs(n.cfg.Home); err == nil && (within(dir, home) || within(home, dir)) {
			return fmt.Errorf("backup folder %s overlaps the node's home %s; choose a folder outside it (ideally on another disk)", dir, home)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("backup folder %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("backup folder %s is not empty; give a new folder for each backup", dir)
	}
	return nil
}

// within reports whether path is root or below it.
func within(path, root string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// Backup writes a backup of the running node into dir (see the layout
// above) and returns its manifest. The node goes on committing blocks
// meanwhile. On failure what was written is removed, and a folder left
// by a crash has no manifest: restore refuses it.
func (n *Node) Backup(dir string) (m *BackupManifest, err error) {
	if err := n.checkBackupDir(dir); err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup folder: %w", err)
	}
	defer func() {
		if err != nil {
			cleanDir(dir)
		}
	}()
	start := time.Now()
	if err := n.backupHome(dir); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, BackupDataDir)
	for _, sub := range backupDataDirs {
		if err := copyTree(filepath.Join(n.cfg.DataDir, sub), filepath.Join(data, sub), skipTemp); err != nil {
			return nil, fmt.Errorf("backup of %s: %w", sub, err)
		}
	}
	// charter dev keeps its privacy key in the data directory.
	if k := n.cfg.PrivacyKeyFile; k != "" && within(k, n.cfg.DataDir) {
		rel, _ := filepath.Rel(n.cfg.DataDir, k)
		if err := copyFile(k, filepath.Join(data, rel)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("backup of the privacy key: %w", err)
		}
	}
	if err := n.aborted(); err != nil {
		return nil, err
	}
	if n.priv != nil {
		if err := n.backupPrivate(filepath.Join(data, privacyDir)); err != nil {
			return nil, err
		}
	}
	if err := n.aborted(); err != nil {
		return nil, err
	}
	cp, ok := any(n.ledger).(checkpointer)
	if !ok {
		return nil, errors.New("this build's ledger cannot make a checkpoint")
	}
	// The checkpoint is a data directory of its own (chaindata, state
	// history): it is made aside, then its parts join the backup's.
	ledgerDir := filepath.Join(dir, ".ledger")
	height, err := cp.Checkpoint(ledgerDir)
	if err != nil {
		return nil, fmt.Errorf("ledger checkpoint: %w", err)
	}
	if err := mergeTree(ledgerDir, data); err != nil {
		return nil, fmt.Errorf("ledger checkpoint: %w", err)
	}
	head := n.ledger.HeaderByNumber(height)
	if head == nil {
		return nil, fmt.Errorf("ledger checkpoint at height %d: no such block", height)
	}
	if n.cfg.Spec.Consensus.Engine == "raft" {
		if err := backupRaftLog(filepath.Join(n.cfg.DataDir, backupRaftDir), filepath.Join(data, backupRaftDir)); err != nil {
			return nil, err
		}
	}
	m = &BackupManifest{
		Format:      BackupFormat,
		ChainID:     n.cfg.Spec.ChainID(),
		GenesisHash: n.ledger.Genesis().Hash(),
		Height:      height,
		HeadHash:    head.Hash(),
		StateRoot:   head.Root,
		Node:        n.self,
		Name:        n.cfg.Name,
		Org:         n.cfg.Org,
		Engine:      n.cfg.Spec.Consensus.Engine,
		Created:     time.Now().UTC().Truncate(time.Second),
	}
	if m.Files, err = hashTree(dir); err != nil {
		return nil, err
	}
	if err := writeManifest(dir, m); err != nil {
		return nil, err
	}
	n.log.Info("Backup made", "dir", dir, "height", height, "hash", m.HeadHash, "files", len(m.Files),
		"elapsed", time.Since(start).Round(time.Millisecond))
	return m, nil
}

// aborted is an error once the node stops.
func (n *Node) aborted() error {
	select {
	case <-n.quit:
		return errors.New("backup abandoned: the node is stopping")
	default:
		return nil
	}
}

// backupHome copies the home folder, but for the data directory, into
// DIR/home.
func (n *Node) backupHome(dir string) error {
	if n.cfg.Home == "" {
		return nil
	}
	home, err := filepath.Abs(n.cfg.Home)
	if err != nil {
		return err
	}
	data, _ := filepath.Abs(n.cfg.DataDir)
	skip := func(path string, d fs.DirEntry) bool {
		if d.IsDir() {
			return path == data
		}
		return skipTemp(path, d)
	}
	if err := copyTree(home, filepath.Join(dir, BackupHomeDir), skip); err != nil {
		return fmt.Errorf("backup of the home folder: %w", err)
	}
	return nil
}

// backupPrivate copies the private state: the applier's cursor files
// first (so that they lag the groups, and the applier only replays), then
// the groups' databases.
func (n *Node) backupPrivate(dst string) error {
	src := n.priv.dir
	stage := dst + ".files"
	skip := func(path string, d fs.DirEntry) bool {
		if d.IsDir() {
			return path == filepath.Join(src, "groups") || path == filepath.Join(src, "purged")
		}
		return skipTemp(path, d)
	}
	if err := copyTree(src, stage, skip); err != nil {
		return fmt.Errorf("backup of the private state: %w", err)
	}
	if err := n.priv.store.Backup(dst); err != nil {
		return err
	}
	// The cursor files join the groups' folders.
	if err := mergeTree(stage, dst); err != nil {
		return fmt.Errorf("backup of the private state: %w", err)
	}
	return nil
}

// backupRaftLog copies the raft log's newest segment, the one the log
// opens from (older ones are leftovers of a rotation). The segment is
// appended to; a read of it is a prefix whose last record may be cut
// short, which the log cuts away when it opens, as after a crash. A
// rotation during the read removes the segment: the read starts over.
func backupRaftLog(src, dst string) error {
	for attempt := 0; attempt < 10; attempt++ {
		names, err := durable.OSFS{}.List(src)
		if err != nil {
			return fmt.Errorf("backup of the raft log: %w", err)
		}
		newest := ""
		for _, name := range names {
			if len(name) == 20 && strings.HasSuffix(name, ".wal") && name > newest {
				newest = name
			}
		}
		if newest == "" {
			return fmt.Errorf("backup of the raft log: no segment in %s", src)
		}
		data, err := os.ReadFile(filepath.Join(src, newest))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("backup of the raft log: %w", err)
		}
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		return writeFileSync(filepath.Join(dst, newest), data, 0o600)
	}
	return errors.New("backup of the raft log: its segment kept changing; try again")
}

func skipTemp(path string, d fs.DirEntry) bool {
	return !d.IsDir() && (strings.HasSuffix(d.Name(), ".tmp") || strings.HasPrefix(d.Name(), ".tmp"))
}

// copyTree copies the regular files under src into dst, keeping their
// modes; skip leaves out files and folders. A missing src copies nothing.
// Each file is read whole, then written and synced.
func copyTree(src, dst string, skip func(path string, d fs.DirEntry) bool) error {
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && path != src {
				return nil // removed meanwhile
			}
			return err
		}
		if skip != nil && skip(path, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		err = copyFile(path, target)
		if errors.Is(err, os.ErrNotExist) {
			return nil // removed meanwhile
		}
		return err
	})
}

// copyFile copies one file, streaming, keeping its mode, and syncs the
// copy. An open file is one version of a file replaced by renames.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// mergeTree moves the files under src into dst (which must not have
// them) and removes src.
func mergeTree(src, dst string) error {
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == src {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		return os.Rename(path, target)
	})
	if err != nil {
		return err
	}
	return os.RemoveAll(src)
}

func writeFileSync(path string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// hashTree lists every regular file under dir (the manifest aside) with
// its size and SHA-256, syncing each file and folder on the way so that
// the manifest written after it describes what is on disk.
func hashTree(dir string) ([]BackupFile, error) {
	var files []BackupFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return durable.OSFS{}.SyncDir(path)
		}
		if rel == ManifestFile || !d.Type().IsRegular() {
			return nil
		}
		if len(files) >= maxBackupFiles {
			return fmt.Errorf("more than %d files", maxBackupFiles)
		}
		size, sum, err := hashFile(path, true)
		if err != nil {
			return err
		}
		files = append(files, BackupFile{Path: filepath.ToSlash(rel), Size: size, SHA256: sum})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("backup checksums: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// hashFile is a file's size and hex SHA-256; sync also syncs it.
func hashFile(path string, sync bool) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return 0, "", err
		}
	}
	return size, hex.EncodeToString(h.Sum(nil)), nil
}

// writeManifest writes DIR/manifest.json aside, syncs it and renames it
// in place: a backup folder has a manifest only once it is whole.
func writeManifest(dir string, m *BackupManifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := durable.WriteFile(durable.OSFS{}, filepath.Join(dir, ManifestFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("backup manifest: %w", err)
	}
	return nil
}

// cleanDir removes what a failed backup wrote into dir, leaving dir.
func cleanDir(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
