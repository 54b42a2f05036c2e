package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/consensus/raft"
	"github.com/charter-ledger/charter/internal/durable"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/ledger"
)

// maxBackupManifestBytes bounds manifest.json (a million files at ~150 bytes).
const maxBackupManifestBytes = 256 << 20

// ErrBackupIncomplete: the folder has no manifest, or files that do not
// match it: a backup cut short or damaged.
var ErrBackupIncomplete = errors.New("backup incomplete or damaged")

// VerifyBackup reads DIR/manifest.json and checks every file it lists
// (size and SHA-256) and that the backup holds nothing else but folders.
func VerifyBackup(dir string) (*BackupManifest, error) {
	m, err := ReadBackupManifest(dir)
	if err != nil {
		return nil, err
	}
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[f.Path] = true
		size, sum, err := hashFile(filepath.Join(dir, filepath.FromSlash(f.Path)), false)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s is missing from %s", ErrBackupIncomplete, f.Path, dir)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBackupIncomplete, f.Path, err)
		}
		if size != f.Size || sum != f.SHA256 {
			return nil, fmt.Errorf("%w: %s in %s has %d bytes, SHA-256 %.12s…; the manifest says %d bytes, %.12s…",
				ErrBackupIncomplete, f.Path, dir, size, sum, f.Size, f.SHA256)
		}
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel = filepath.ToSlash(rel); rel != ManifestFile && !listed[rel] {
			return fmt.Errorf("%w: %s is in %s but not in its manifest", ErrBackupIncomplete, rel, dir)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// ReadBackupManifest reads and checks the form of DIR/manifest.json.
func ReadBackupManifest(dir string) (*BackupManifest, error) {
	p := filepath.Join(dir, ManifestFile)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("backup folder %s: %w", dir, serr)
		}
		return nil, fmt.Errorf("%w: %s has no %s (it is written last: the backup did not finish, or this is not a backup folder)",
			ErrBackupIncomplete, dir, ManifestFile)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBackupManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if len(data) > maxBackupManifestBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBackupIncomplete, p, maxBackupManifestBytes)
	}
	var m BackupManifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBackupIncomplete, p, err)
	}
	if m.Format != BackupFormat {
		return nil, fmt.Errorf("%s: format %d; this charter reads format %d backups", p, m.Format, BackupFormat)
	}
	for _, f := range m.Files {
		if !validBackupPath(f.Path) {
			return nil, fmt.Errorf("%w: %s lists the path %q, outside the backup's home/ and data/", ErrBackupIncomplete, p, f.Path)
		}
	}
	return &m, nil
}

// validBackupPath accepts clean relative slash paths under home/ or data/.
func validBackupPath(p string) bool {
	if p == "" || path.Clean(p) != p || path.IsAbs(p) || strings.Contains(p, "\\") {
		return false
	}
	first, rest, ok := strings.Cut(p, "/")
	return ok && rest != "" && (first == BackupHomeDir || first == BackupDataDir) && !strings.HasPrefix(rest, "../")
}

// shortHash is 0x and the first four bytes of h, then an ellipsis.
func shortHash(h common.Hash) string { return fmt.Sprintf("%#x…", h[:4]) }

// RestoreOptions tune Restore.
type RestoreOptions struct {
	Logger *slog.Logger
	// Password opens the home's node key when it is encrypted, to compare
	// the node ids (without it the names in config.json are compared).
	Password []byte
}

// Restore makes HOME the node the backup in from holds, at the backup's
// height (the node catches up from its peers when it starts). The node
// must be stopped. It checks the backup's checksums first, and refuses a
// home that holds another chain or another node. Everything is written
// to a staging folder beside the home, which then takes the home's place
// in one rename: a restore cut off at any instant leaves the home as it
// was (and a staging folder that the next restore removes), or restored.
//
// What the home has outside its data directory (config, keys) stays; the
// backup's home files fill in what it lacks. The data directory is the
// backup's, with the home's own logs kept.
func Restore(from, home string, opts RestoreOptions) (*BackupManifest, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	from, err := filepath.Abs(from)
	if err != nil {
		return nil, err
	}
	home, err = filepath.Abs(home)
	if err != nil {
		return nil, err
	}
	if within(from, home) || within(home, from) {
		return nil, fmt.Errorf("the backup folder %s and the home %s overlap; restore from a folder outside the home", from, home)
	}
	m, err := VerifyBackup(from)
	if err != nil {
		return nil, err
	}
	// The config the restored home will have: the home's own, else the
	// backup's.
	hc, existing, err := restoreTarget(from, home)
	if err != nil {
		return nil, err
	}
	if existing {
		if err := checkSameChain(m, hc, home, log); err != nil {
			return nil, err
		}
		if err := checkSameNode(m, hc, home, opts.Password); err != nil {
			return nil, err
		}
	}
	data := homePath(home, hc.DataDir)
	if !filepath.IsAbs(data) {
		if data, err = filepath.Abs(data); err != nil {
			return nil, err
		}
	}
	unlock, err := lockData(data)
	if err != nil {
		return nil, err
	}
	defer unlock()

	if within(data, home) {
		// One tree: the data directory is inside the home.
		rel, _ := filepath.Rel(home, data)
		err = swapIn(home, func(stage string) error {
			if existing {
				if err := linkTree(home, stage, func(p string, d fs.DirEntry) bool { return d.IsDir() && p == data }); err != nil {
					return err
				}
			}
			if err := fillHome(from, stage); err != nil {
				return err
			}
			return stageData(from, data, filepath.Join(stage, rel), m, log)
		})
	} else {
		// The data directory lies elsewhere: it is swapped first, then
		// the home (a restore cut off between the two is run again).
		if err = swapIn(data, func(stage string) error { return stageData(from, data, stage, m, log) }); err == nil {
			err = swapIn(home, func(stage string) error {
				if existing {
					if err := linkTree(home, stage, nil); err != nil {
						return err
					}
				}
				return fillHome(from, stage)
			})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("restore into %s: %w (the home is as it was)", home, err)
	}
	log.Info("Restored", "home", home, "height", m.Height, "hash", m.HeadHash, "node", m.Node)
	return m, nil
}

// restoreTarget is the home config the restored home will use, and
// whether the home holds a node already. A home that is neither missing,
// empty, nor a node's home is refused.
func restoreTarget(from, home string) (*HomeConfig, bool, error) {
	entries, err := os.ReadDir(home)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(home, ConfigFile)); err != nil {
			return nil, false, fmt.Errorf("%s is neither empty nor a node's home (no %s); restore into a node's home or a new folder", home, ConfigFile)
		}
		hc, err := LoadHomeConfig(home)
		return hc, true, err
	}
	hc, err := LoadHomeConfig(filepath.Join(from, BackupHomeDir))
	if err != nil {
		return nil, false, fmt.Errorf("the backup holds no usable home config (%v); restore onto the node's home instead", err)
	}
	return hc, false, nil
}

// checkSameChain refuses a home whose genesis is of another chain.
func checkSameChain(m *BackupManifest, hc *HomeConfig, home string, log *slog.Logger) error {
	spec, err := chain.LoadSpec(homePath(home, hc.Genesis))
	if err != nil {
		return err
	}
	genesis, err := genesisHash(spec, log)
	if err != nil {
		return err
	}
	if spec.ChainID() != m.ChainID || genesis != m.GenesisHash {
		return fmt.Errorf("backup is of chain %d genesis %s, this home holds chain %d genesis %s",
			m.ChainID, shortHash(m.GenesisHash), spec.ChainID(), shortHash(genesis))
	}
	return nil
}

// genesisHash builds the genesis block of spec in a scratch ledger.
func genesisHash(spec *chain.Spec, log *slog.Logger) (common.Hash, error) {
	tmp, err := os.MkdirTemp("", "charter-genesis-")
	if err != nil {
		return common.Hash{}, err
	}
	defer os.RemoveAll(tmp)
	l, err := ledger.Open(tmp, spec, ledger.Options{CacheMB: 8, TrieCacheMB: 8, BlockCacheN: 1}, log)
	if err != nil {
		return common.Hash{}, fmt.Errorf("genesis: %w", err)
	}
	h := l.Genesis().Hash()
	return h, l.Close()
}

// checkSameNode refuses a home that holds another node: two nodes with
// one identity would sign twice. The node ids are compared when the
// home's key opens, else the names.
func checkSameNode(m *BackupManifest, hc *HomeConfig, home string, password []byte) error {
	key, err := identity.LoadNodeKey(homePath(home, hc.NodeKey), password)
	if err == nil {
		if id := crypto.PubkeyToAddress(key.PublicKey); id != m.Node {
			return fmt.Errorf("backup is of node %s, this home holds node %s; restore a node's backup onto its own home or into a new folder", m.Node.Hex(), id.Hex())
		}
		return nil
	}
	if hc.Name != m.Name || hc.Org != m.Org {
		return fmt.Errorf("backup is of node %s (%s), this home holds node %s (%s); restore a node's backup onto its own home or into a new folder", m.Name, m.Org, hc.Name, hc.Org)
	}
	return nil
}

// lockData takes the ledger's lock as a node does, so that a running node
// is recognised and none starts during the restore.
func lockData(data string) (func(), error) {
	dir := filepath.Join(data, "chaindata")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return func() {}, nil
	}
	lock, err := vfs.Default.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("a node is running on %s (its ledger is locked: %v); stop it first", data, err)
	}
	return func() { lock.Close() }, nil
}

// restoreStep marks the steps of a restore for the crash tests, which
// stop the process there.
var restoreStep = func(string) {}

// stagingName is the staging folder beside target.
func stagingName(target string) string {
	return filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".restoring")
}

// swapIn builds the new content of target in a staging folder beside it
// (fill), syncs it, and puts it in target's place in one rename; the old
// content is removed after.
func swapIn(target string, fill func(stage string) error) error {
	stage := stagingName(target)
	if err := os.RemoveAll(stage); err != nil {
		return fmt.Errorf("remove the staging folder of an earlier restore: %w", err)
	}
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return err
	}
	if err := fill(stage); err != nil {
		os.RemoveAll(stage)
		return err
	}
	if _, err := hashTree(stage); err != nil { // syncs every file and folder
		os.RemoveAll(stage)
		return err
	}
	restoreStep("staged")
	if err := exchange(stage, target); err != nil {
		os.RemoveAll(stage)
		return err
	}
	restoreStep("swapped")
	if err := (durable.OSFS{}).SyncDir(filepath.Dir(target)); err != nil {
		return err
	}
	return os.RemoveAll(stage) // now the old content
}

// fillHome copies the backup's home files the staged home lacks.
func fillHome(from, stage string) error {
	src := filepath.Join(from, BackupHomeDir)
	return copyTree(src, stage, func(p string, d fs.DirEntry) bool {
		if d.IsDir() {
			return false
		}
		rel, _ := filepath.Rel(src, p)
		_, err := os.Lstat(filepath.Join(stage, rel))
		return err == nil
	})
}

// stageData writes the backup's data directory into stage, with the
// logs of the data directory being replaced (hard links, else copies).
func stageData(from, data, stage string, m *BackupManifest, log *slog.Logger) error {
	if err := copyTree(filepath.Join(from, BackupDataDir), stage, nil); err != nil {
		return err
	}
	if m.Engine == "raft" {
		if err := raftRestoreTerm(filepath.Join(stage, backupRaftDir), log); err != nil {
			return err
		}
	}
	return linkTree(filepath.Join(data, backupLogsDir), filepath.Join(stage, backupLogsDir), nil)
}

// linkTree puts the regular files under src at the same places under dst
// by hard links (copies where links fail): the home's own files, which
// the old tree's removal after the swap leaves in place. A missing src
// links nothing.
func linkTree(src, dst string, skip func(path string, d fs.DirEntry) bool) error {
	if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if skip != nil && skip(p, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if os.Link(p, target) == nil {
			return nil
		}
		return copyFile(p, target)
	})
}

// raftTermJump is how far a restored raft log's term moves on.
const raftTermJump = 1 << 32

// raftRestoreTerm moves the restored raft log's term far past any term the
// node can have seen since the backup, with no vote cast in it. The node
// may have voted in later terms before its data was lost: in a term of
// its own past none of those, it cannot vote twice. And its first answer
// to the leader, which believes it holds entries it acknowledged after
// the backup, carries the higher term: the leader steps down, the others
// elect a leader (the restored node, being behind, cannot win), and the
// new leader sends it what it lacks.
func raftRestoreTerm(dir string, log *slog.Logger) error {
	w, err := raft.OpenWAL(durable.OSFS{}, dir, 0, log)
	if err != nil {
		return fmt.Errorf("raft log of the backup: %w", err)
	}
	hs, _, err := w.InitialState()
	if err == nil {
		term := hs.GetTerm() + raftTermJump
		err = w.Save(&raftpb.HardState{Term: &term, Vote: new(uint64(0)), Commit: new(hs.GetCommit())}, nil, nil, true)
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("raft log of the backup: move its term on: %w", err)
	}
	return nil
}
