package privstate

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// reference runs the token scenario on a store that never stops, for the
// others to compare with.
func reference(t *testing.T, c *pubChain) (map[uint64]*BlockResult, *tokenScenario) {
	t.Helper()
	s := openStore(t, t.TempDir(), c, Options{})
	defer s.Close()
	sc := newTokenScenario(t)
	return sc.run(t, s, c, groupA), sc
}

// sameAsReference checks every block of the scenario on s against the
// reference's results.
func sameAsReference(t *testing.T, s *Store, ref map[uint64]*BlockResult, sc *tokenScenario) {
	t.Helper()
	for _, n := range sc.order {
		root, err := s.PrivateRoot(groupA, n)
		if err != nil || root != ref[n].Root {
			t.Fatalf("root after block %d: %s (%v), reference %s", n, root, err, ref[n].Root)
		}
		for _, want := range ref[n].Receipts {
			got, err := s.Receipt(groupA, want.TxHash)
			if err != nil {
				t.Fatalf("receipt %s: %v", want.TxHash, err)
			}
			if a, b := receiptText(t, got), receiptText(t, want); a != b {
				t.Fatalf("receipt in block %d differs from the reference:\n%s\n%s", n, a, b)
			}
		}
	}
	if n, err := s.Nonce(groupA, sc.alice.addr); err != nil || n != 3 {
		t.Fatalf("alice's nonce %d (%v), want 3: a block ran twice or not at all", n, err)
	}
}

func TestApplyAgainIsExactlyOnce(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	ref, sc := reference(t, c)

	dir := t.TempDir()
	s := openStore(t, dir, c, Options{})
	first := mustApply(t, s, groupA, c.at(2), sc.blocks[2]...)
	again := mustApply(t, s, groupA, c.at(2), sc.blocks[2]...)
	if !again.Replayed || first.Replayed || again.Root != first.Root || receiptText(t, again.Receipts[0]) != receiptText(t, first.Receipts[0]) {
		t.Fatalf("block 2 again: replayed %v, root %s, first %s", again.Replayed, again.Root, first.Root)
	}
	// The store stops between two blocks and starts again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Nonce(groupA, sc.alice.addr); !errors.Is(err, ErrClosed) {
		t.Fatalf("read of a closed store: %v", err)
	}
	s = openStore(t, dir, c, Options{})
	defer s.Close()
	for _, n := range sc.order {
		res := mustApply(t, s, groupA, c.at(n), sc.blocks[n]...)
		if res.Replayed != (n == 2) {
			t.Fatalf("block %d: replayed %v", n, res.Replayed)
		}
	}
	// The blocks again, all of them, after the head moved on.
	for _, n := range sc.order {
		if res := mustApply(t, s, groupA, c.at(n), sc.blocks[n]...); !res.Replayed || res.Root != ref[n].Root {
			t.Fatalf("block %d replayed %v root %s", n, res.Replayed, res.Root)
		}
	}
	sameAsReference(t, s, ref, sc)

	// Another block at an applied height is a conflict; a height below the
	// head that was never applied is out of order; neither changes anything.
	other := *c.at(5)
	other.Extra = []byte("fork")
	if _, err := s.ApplyBlock(groupA, &other, sc.blocks[5]); !errors.Is(err, ErrConflict) {
		t.Fatalf("another block 5: %v, want ErrConflict", err)
	}
	if _, err := s.ApplyBlock(groupA, c.at(7), nil); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("block 7 below head 9: %v, want ErrOutOfOrder", err)
	}
	sameAsReference(t, s, ref, sc)
}

// A write cut off inside the store (an error at each step of the commit)
// leaves the group where a retry applies the block exactly once.
func TestFailedCommitThenRetry(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	ref, sc := reference(t, c)
	for _, point := range []string{"after-state", "before-sync", "after-sync"} {
		t.Run(point, func(t *testing.T) {
			s := openStore(t, t.TempDir(), c, Options{})
			defer s.Close()
			mustApply(t, s, groupA, c.at(2), sc.blocks[2]...)
			s.testFail = func(p string) error {
				if p == point {
					return fmt.Errorf("cut at %s", p)
				}
				return nil
			}
			if _, err := s.ApplyBlock(groupA, c.at(5), sc.blocks[5]); err == nil || !strings.Contains(err.Error(), point) {
				t.Fatalf("apply with a cut at %s: %v", point, err)
			}
			s.testFail = nil
			for _, n := range sc.order[1:] {
				mustApply(t, s, groupA, c.at(n), sc.blocks[n]...)
			}
			sameAsReference(t, s, ref, sc)
		})
	}
}

// The process dies (os.Exit, the store never closed) at each step of the
// commit of block 5; a new process opens the store, applies every block
// from the start, and ends where the reference did: each block once.
func TestCrashThenReplay(t *testing.T) {
	if os.Getenv("PRIVSTATE_CRASH_DIR") != "" {
		crashChild(t)
		return
	}
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	ref, sc := reference(t, c)
	for _, point := range []string{"after-state", "before-sync", "after-sync"} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashThenReplay$", "-test.count=1")
			cmd.Env = append(os.Environ(), "PRIVSTATE_CRASH_DIR="+dir, "PRIVSTATE_CRASH_POINT="+point)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 3 {
				t.Fatalf("child did not crash at %s: %v\n%s", point, err, out)
			}
			s := openStore(t, dir, c, Options{})
			defer s.Close()
			head, _, err := s.Head(groupA)
			if err != nil || (head != 2 && head != 5) || (point == "after-state" && head != 2) || (point == "after-sync" && head != 5) {
				t.Fatalf("head after a crash at %s: %d (%v)", point, head, err)
			}
			for _, n := range sc.order {
				mustApply(t, s, groupA, c.at(n), sc.blocks[n]...)
			}
			sameAsReference(t, s, ref, sc)
		})
	}
}

// crashChild is the process TestCrashThenReplay kills: it applies the
// scenario and exits at the crash point of block 5.
func crashChild(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 12)
	s, err := Open(os.Getenv("PRIVSTATE_CRASH_DIR"), spec, c, Options{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	point := os.Getenv("PRIVSTATE_CRASH_POINT")
	var block uint64
	s.testFail = func(p string) error {
		if p == point && block == 5 {
			os.Exit(3)
		}
		return nil
	}
	sc := newTokenScenario(t)
	for _, n := range sc.order {
		block = n
		if _, err := s.ApplyBlock(groupA, c.at(n), sc.blocks[n]); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("the crash point was never reached")
}
