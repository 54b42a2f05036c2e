package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTestnetRestartsAFailedNode runs a 4-node bft testnet with
// --restart on-failure under load: a node killed with -9 is restarted
// (one line says so, endpoints.json names its new pid), and it catches up
// with the others; a node stopped with SIGTERM exits cleanly and stays down.
func TestTestnetRestartsAFailedNode(t *testing.T) {
	const n, victim, stopped = 4, 2, 3
	dir := initNetwork(t, "bft", n)
	tn := runTestnet(t, dir, "--restart", "on-failure")
	waitFor(t, 30*time.Second, "every node connected to every other", func() bool {
		for i := 0; i < n; i++ {
			if c, err := peerCount(tn.url(i)); err != nil || c != n-1 {
				return false
			}
		}
		return true
	})
	// Load through node0 and node1 only, which stay up throughout.
	l := startLoad(t, map[string][]int{tn.url(0): {0, 1}, tn.url(1): {2, 3}}, tn.urls()[:2], 20*time.Millisecond)
	waitFor(t, 30*time.Second, "the chain moves under load", func() bool { h, err := height(tn.url(0)); return err == nil && h >= 5 })

	old := tn.pids[victim]
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 node%d: %v", victim, err)
	}
	line := fmt.Sprintf("node%d (pid %d) signal: killed; restart 1 in 1s", victim, old)
	waitFor(t, 20*time.Second, "testnet reports the restart: "+line, func() bool { return strings.Contains(tn.out.String(), line) })
	var pid int
	waitFor(t, 30*time.Second, fmt.Sprintf("endpoints.json names node%d's new process", victim), func() bool {
		pid = endpointsPID(t, dir, victim)
		return pid != old && syscall.Kill(pid, 0) == nil
	})
	tn.pids[victim] = pid
	target, err := height(tn.url(0))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, fmt.Sprintf("restarted node%d reaches height %d", victim, target), func() bool {
		h, err := height(tn.url(victim))
		return err == nil && h >= target
	})
	sent, acked := l.finish(tn.urls())
	if len(sent) == 0 || acked != len(sent) {
		t.Fatalf("%d of %d transactions sent through node0 and node1 got a receipt", acked, len(sent))
	}
	head := tn.waitConverged(60 * time.Second)
	tn.checkAgreement(head, sent)
	if strings.Count(tn.out.String(), "; restart ") != 1 {
		t.Errorf("one restart expected, testnet says:\n%s", tn.out.String())
	}

	// SIGTERM: a clean stop, which on-failure leaves alone.
	term := tn.pids[stopped]
	if err := syscall.Kill(term, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	line = fmt.Sprintf("node%d (pid %d) exit status 0; not restarted", stopped, term)
	waitFor(t, 40*time.Second, "testnet reports the clean stop: "+line, func() bool { return strings.Contains(tn.out.String(), line) })
	if got := endpointsPID(t, dir, stopped); got != term {
		t.Errorf("endpoints.json names pid %d for node%d, stopped as pid %d and not restarted", got, stopped, term)
	}
}

func endpointsPID(t *testing.T, dir string, i int) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "endpoints.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ep endpoints
	if err := json.Unmarshal(raw, &ep); err != nil {
		t.Fatal(err)
	}
	return ep.Nodes[i].PID
}
