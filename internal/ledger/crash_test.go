package ledger

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The crash tests run a child process (this test binary) that commits
// heights into a data directory and dies at a chosen point of Commit, or
// is killed; the parent then opens the directory and checks the promise
// of the package: the ledger is at the previous or the new height, with
// that height's state, and goes on committing.

const crashMarker = 100 // account whose balance is the height that set it

// crashBlock is the state change of height h, the same in every process.
func crashBlock(h uint64) []int { return []int{int(h % 5), crashMarker} }

// crashReplay executes a block of the crash tests again.
func crashReplay(_ *Ledger, _ *types.Header, block *types.Block, st *state.StateDB) error {
	h := block.NumberU64()
	setBalances(h, crashBlock(h)...)(st)
	return nil
}

func crashOptions(scheme string) Options {
	if scheme == "archive" {
		return Options{StateHistory: StateArchive, CacheMB: 8, TrieCacheMB: 8}
	}
	o := Options{StateHistory: 4, CacheMB: 8, TrieCacheMB: 8, Replay: crashReplay}
	if scheme == "path-flushing" {
		// The whole state written to disk every 5 heights: crashes land
		// during and after those writes too.
		o.StateFlushHeights = 5
	}
	return o
}

// TestCrashChild is the child process; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("CHARTER_LEDGER_CRASH_DIR")
	if dir == "" {
		t.Skip("child process of the crash tests")
	}
	stage := os.Getenv("CHARTER_LEDGER_CRASH_STAGE")
	at, _ := strconv.ParseUint(os.Getenv("CHARTER_LEDGER_CRASH_AT"), 10, 64)
	sync := os.Getenv("CHARTER_LEDGER_CRASH_SYNC") == "1"
	l, err := Open(dir, devSpec(t, 5), crashOptions(os.Getenv("CHARTER_LEDGER_CRASH_SCHEME")), quiet)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	testCrashPoint = func(s string, h uint64) {
		if s == stage && h == at {
			if sync {
				_ = l.kv.SyncKeyValue()
			}
			os.Exit(7)
		}
	}
	for range 100_000 {
		h := l.Head().Number.Uint64() + 1
		commitNext(t, l, setBalances(h, crashBlock(h)...))
		fmt.Println(h)
	}
	os.Exit(3)
}

// runCrashChild runs the child until it dies at the crash point, or, for
// stage "kill", kills it once it has committed `after` heights.
func runCrashChild(t *testing.T, dir, scheme, stage string, at uint64, sync bool, after int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), "CHARTER_LEDGER_CRASH_DIR="+dir, "CHARTER_LEDGER_CRASH_SCHEME="+scheme,
		"CHARTER_LEDGER_CRASH_STAGE="+stage, "CHARTER_LEDGER_CRASH_AT="+strconv.FormatUint(at, 10))
	if sync {
		cmd.Env = append(cmd.Env, "CHARTER_LEDGER_CRASH_SYNC=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	lines := bufio.NewScanner(out)
	n := 0
	var last string
	for lines.Scan() {
		last = lines.Text()
		if n++; stage == "kill" && n == after {
			_ = cmd.Process.Kill()
		}
	}
	err = cmd.Wait()
	if stage != "kill" {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
			t.Fatalf("child did not stop at %s of height %d: %v (last line %q)", stage, at, err, last)
		}
	} else if n < after {
		t.Fatalf("child ended after %d heights, before it was killed: %v (last line %q)", n, err, last)
	}
}

// checkAfterCrash opens the directory and checks head and state; it
// returns the head height.
func checkAfterCrash(t *testing.T, dir, scheme string, logs *bytes.Buffer) uint64 {
	t.Helper()
	l, err := Open(dir, devSpec(t, 5), crashOptions(scheme), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("open after crash: %v", err)
	}
	defer l.Close()
	head := l.Head()
	h := head.Number.Uint64()
	if h > 0 {
		if got := balance(t, l, head.Root, crashMarker); got != h {
			t.Fatalf("head %d: marker balance %d", h, got)
		}
		if got := balance(t, l, head.Root, int(h%5)); got != h {
			t.Fatalf("head %d: balance of account %d is %d", h, h%5, got)
		}
	}
	if h > 1 {
		// The parent's state is readable too (inside every window).
		parent := l.HeaderByNumber(h - 1)
		if got := balance(t, l, parent.Root, crashMarker); got != h-1 && h-1 != 0 {
			t.Fatalf("block %d: marker balance %d", h-1, got)
		}
	}
	return h
}

func TestCrashAtAnyInstant(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	defer func(d time.Duration) { replayProgressEvery = d }(replayProgressEvery)
	replayProgressEvery = 0
	for _, scheme := range []string{"path", "path-flushing", "archive"} {
		t.Run(scheme, func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(1, uint64(len(scheme))))
			head := uint64(0)
			cases := []struct {
				stage string
				sync  bool
			}{{"state", false}, {"state", true}, {"block", false}, {"block", true}, {"kill", false}, {"kill", false}, {"kill", false}}
			for _, c := range cases {
				at := head + 1 + uint64(rng.IntN(8))
				runCrashChild(t, dir, scheme, c.stage, at, c.sync, 5+rng.IntN(40))
				var logs bytes.Buffer
				got := checkAfterCrash(t, dir, scheme, &logs)
				// A killed child has committed heights whose state was in
				// memory only.
				if scheme == "path" && c.stage == "kill" && !strings.Contains(logs.String(), "Rebuilt the state") {
					t.Fatalf("open after a crash at %s of height %d: no state rebuilt; log:\n%s", c.stage, at, logs.String())
				}
				// Progress lines (every height here: replayProgressEvery is
				// 0), unless only the genesis state was rebuilt.
				if strings.Contains(logs.String(), "Rebuilt the state") && !strings.Contains(logs.String(), " to=0 ") &&
					!strings.Contains(logs.String(), "Rebuilding the lost state") {
					t.Fatalf("a rebuild said nothing while it ran; log:\n%s", logs.String())
				}
				switch {
				case c.stage == "state" && got != at-1,
					c.stage == "block" && c.sync && got != at,
					c.stage == "block" && !c.sync && got != at-1 && got != at:
					t.Fatalf("crash at %s of height %d (synced %v): head %d", c.stage, at, c.sync, got)
				case got < head:
					t.Fatalf("head went back from %d to %d", head, got)
				}
				t.Logf("crash at %s of %d (synced %v): head %d", c.stage, at, c.sync, got)
				head = got
			}
		})
	}
}
