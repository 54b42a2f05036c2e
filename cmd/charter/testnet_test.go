package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestRestartDelayDoublesToTheBoundAndResets(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for i := 0; i < 8; i++ {
		d = restartDelay(d, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		30 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if d := restartDelay(30*time.Second, restartResetAfter); d != restartMinDelay {
		t.Errorf("after %s up: delay %s, want %s", restartResetAfter, d, restartMinDelay)
	}
	if d := restartDelay(8*time.Second, restartResetAfter-time.Second); d != 16*time.Second {
		t.Errorf("after a short run: delay %s, want 16s", d)
	}
}

func TestFailedIsAnAbnormalExit(t *testing.T) {
	for _, c := range []struct {
		script string
		failed bool
	}{
		{"exit 0", false},
		{"exit 3", true},
		{"kill -KILL $$", true},
		{"kill -SEGV $$", true},
	} {
		cmd := exec.Command("sh", "-c", c.script)
		cmd.Run()
		if got := failed(cmd.ProcessState); got != c.failed {
			t.Errorf("%q (%s): failed %v, want %v", c.script, cmd.ProcessState, got, c.failed)
		}
	}
	if failed(nil) {
		t.Error("failed(nil): a process that never ran did not fail")
	}
}

func TestTestnetRefusesAnUnknownRestartPolicy(t *testing.T) {
	var out, errb bytes.Buffer
	err := runTestnet([]string{"--dir", t.TempDir(), "--restart", "always"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "--restart") || !strings.Contains(err.Error(), "on-failure") {
		t.Fatalf("err %v, want one naming --restart and its values", err)
	}
}
