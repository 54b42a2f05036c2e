// Package e2e runs real charter processes on 127.0.0.1 and checks them as
// a black box over JSON-RPC.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

var charterBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "charter-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	charterBin = filepath.Join(dir, "charter")
	if bin := os.Getenv("CHARTER_BIN"); bin != "" {
		charterBin = bin
	} else {
		build := exec.Command("go", "build", "-o", charterBin, "../../cmd/charter")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build charter:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one charter process.
type proc struct {
	cmd    *exec.Cmd
	url    string
	stderr *lockedBuffer
	exited chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var rpcLine = regexp.MustCompile(`JSON-RPC: (http://\S+)`)

// startDev runs `charter dev` with the given extra flags on a free port and
// waits until it answers JSON-RPC.
func startDev(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(charterBin, append([]string{"dev", "--http.port", "0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { p.kill() })
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := rpcLine.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case p.url = <-urls:
	case <-p.exited:
		t.Fatalf("charter dev exited at start: %s", p.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("charter dev printed no RPC address within 60s: %s", p.stderr.String())
	}
	waitFor(t, 30*time.Second, "JSON-RPC answers", func() bool {
		c, err := gethrpc.Dial(p.url)
		if err != nil {
			return false
		}
		defer c.Close()
		var id string
		return c.Call(&id, "eth_chainId") == nil
	})
	return p
}

func (p *proc) client(t *testing.T) *ethclient.Client {
	t.Helper()
	c, err := ethclient.Dial(p.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	<-p.exited
}

// terminate sends SIGTERM and waits up to 30s for a clean exit.
func (p *proc) terminate(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("charter exited %d after SIGTERM: %s", code, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("charter did not stop within 30s of SIGTERM")
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
