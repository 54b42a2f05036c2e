package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charter-ledger/charter/internal/snapshot"
)

const childHomeEnv = "CHARTER_TEST_STATESYNC_HOME"

// TestStateSyncChild is the process TestStateSyncResumesAfterKill kills:
// it runs the node of $CHARTER_TEST_STATESYNC_HOME with sync snapshot and
// stalls for good after two chunks are stored.
func TestStateSyncChild(t *testing.T) {
	home := os.Getenv(childHomeEnv)
	if home == "" {
		t.Skip("run by TestStateSyncResumesAfterKill")
	}
	var stored atomic.Int64
	syncTestHook = func(uint64) {
		if stored.Add(1) >= 2 {
			select {} // killed here
		}
	}
	startHomeNode(t, home, "child", func(c *Config) {
		c.Snapshots = SnapshotConfig{Sync: SyncSnapshot, SyncWait: time.Minute}
	})
	t.Fatal("the sync finished although it should stall")
}

// TestStateSyncResumesAfterKill: a node killed (SIGKILL) in the middle of
// a state sync keeps the chunks it verified; started again it fetches
// only the rest, imports, and follows the network.
func TestStateSyncResumesAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a second process")
	}
	nodes := startSnapshotNetwork(t, "bft", 4, 8)
	fillState(t, nodes[0], 0, 1200)
	height := waitSnapshots(t, nodes[:3], nodes[0].Ledger().Head().Number.Uint64())

	home := nodes[3].home
	nodes[3].Stop()
	dataDir := homeDataDir(t, home)
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStateSyncChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childHomeEnv+"="+home)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	chunks := func() int {
		m, _ := filepath.Glob(filepath.Join(dataDir, "statesync", "chunk-*"))
		n := 0
		for _, p := range m {
			if !strings.HasSuffix(p, ".tmp") { // a write the kill cut
				n++
			}
		}
		return n
	}
	waitUntil(t, 90*time.Second, "the child stores two chunks", func() bool {
		select {
		case err := <-done:
			out.mu.Lock()
			log := out.b.String()
			out.mu.Unlock()
			t.Fatalf("the child ended: %v\n%s", err, log)
		default:
		}
		return chunks() >= 2
	})
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	<-done
	kept := chunks()
	if _, err := os.Stat(filepath.Join(dataDir, "chaindata")); !os.IsNotExist(err) {
		t.Fatalf("a killed sync left chaindata: %v", err)
	}

	joined := startHomeNode(t, home, "resumed", func(c *Config) {
		c.Snapshots = SnapshotConfig{Sync: SyncSnapshot, SyncWait: time.Minute}
	})
	st := joined.StateSync()
	if st == nil {
		t.Fatal("no state sync after the restart")
	}
	t.Logf("kept %d chunks; state sync: %+v", kept, *st)
	if st.Height != height || st.Resumed != uint64(kept) || st.Resumed+st.Fetched != st.Chunks || st.Fetched == 0 {
		t.Fatalf("after the kill: %+v, want snapshot %d resumed with the %d kept chunks", *st, height, kept)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "statesync")); !os.IsNotExist(err) {
		t.Fatal("the sync's chunks were not removed after the import")
	}
	fillState(t, nodes[1], 1, 10)
	target := nodes[1].Ledger().Head().Number.Uint64()
	waitUntil(t, 60*time.Second, "the resumed node reaches the others' head", func() bool {
		return joined.Ledger().Head().Number.Uint64() >= target
	})
	agreeFrom(t, []*netNode{nodes[0], nodes[1], nodes[2], joined}, st.Height)
}

// TestSnapshotStoreDropsPartialFiles: what an export killed half way
// leaves (a .tmp file, a snapshot cut short) is removed when the node
// starts, and the node serves its whole snapshots only.
func TestSnapshotStoreDropsPartialFiles(t *testing.T) {
	nodes := startSnapshotNetwork(t, "bft", 4, 4)
	fillState(t, nodes[0], 0, 20)
	h := waitSnapshots(t, nodes[:1], 4)
	home := nodes[0].home
	nodes[0].Stop()
	dir := filepath.Join(homeDataDir(t, home), "snapshots")
	whole := filepath.Join(dir, snapshotName(h))
	raw, err := os.ReadFile(whole)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, snapshotName(h+1000))
	tmp := filepath.Join(dir, snapshotName(h+2000)+".tmp")
	if err := os.WriteFile(cut, raw[:len(raw)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, raw[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	restarted := startHomeNode(t, home, "restarted", func(c *Config) {
		c.Snapshots = SnapshotConfig{Every: 4, Keep: 2, ChunkBytes: snapshot.MinChunkBytes}
	})
	for _, p := range []string{cut, tmp} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s survived the restart", filepath.Base(p))
		}
	}
	if got := restarted.LatestSnapshot(); got < h {
		t.Fatalf("serves snapshot %d, want %d or later", got, h)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			continue // an export of the restarted node in progress
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		if _, err := snapshot.Open(f, fi.Size()); err != nil {
			t.Fatalf("%s does not open: %v", e.Name(), err)
		}
		f.Close()
	}
}
