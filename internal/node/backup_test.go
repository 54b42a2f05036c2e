package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/charter-ledger/charter/internal/chain"
)

// load sends transfers from key to c until stopped; it returns how many
// the node took.
func startLoad(t *testing.T, c *ethclient.Client, key *ecdsa.PrivateKey) (stop func() int) {
	t.Helper()
	signer := types.LatestSignerForChainID(big.NewInt(chain.DefaultChainID))
	to := common.HexToAddress("0xBACC0F")
	from := crypto.PubkeyToAddress(key.PublicKey)
	done := make(chan struct{})
	var wg sync.WaitGroup
	sent := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for nonce := uint64(0); ; {
			select {
			case <-done:
				return
			default:
			}
			tx := types.MustSignNewTx(key, signer, &types.DynamicFeeTx{ChainID: big.NewInt(chain.DefaultChainID),
				Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := c.SendTransaction(ctx, tx)
			cancel()
			switch {
			case err == nil:
				nonce++
				sent++
			default:
				// Perhaps taken although the answer was lost: ask.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if n, err := c.PendingNonceAt(ctx, from); err == nil {
					nonce = n
				}
				cancel()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var once sync.Once
	return func() int {
		once.Do(func() { close(done); wg.Wait() })
		return sent
	}
}

// backupOverAPI asks the node at rpcAddr for a backup into dir, as
// charter backup does, and waits for it.
func backupOverAPI(t *testing.T, rpcAddr, dir string) *BackupManifest {
	t.Helper()
	url := "http://" + rpcAddr + BackupPath
	body, _ := json.Marshal(BackupRequest{Dir: dir})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s: %s %s", BackupPath, resp.Status, raw)
	}
	var st BackupStatus
	waitUntil(t, 60*time.Second, "the backup to finish", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st.State != "running"
	})
	if st.State != "done" {
		t.Fatalf("backup %s: %s", st.State, st.Error)
	}
	return st.Manifest
}

// runHome runs the node of a home in this process.
func runHome(t *testing.T, home string) *netNode {
	t.Helper()
	return startHomeNode(t, home, "restored", nil)
}

// treeDigest names every file under dir with its size and content hash,
// to see that a refused restore changed nothing.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Base(p) == "LOCK" {
			return err
		}
		size, sum, err := hashFile(p, false)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, fmt.Sprintf("%s %d %s", rel, size, sum))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestBackupUnderLoadRestoreRejoins: a validator is backed up over its
// API while transactions flow, its home is wiped, restored from the
// backup, and it starts at the backup's head and state root, catches up
// and agrees with the others block by block.
func TestBackupUnderLoadRestoreRejoins(t *testing.T) {
	for _, engine := range []string{"raft", "bft"} {
		t.Run(engine, func(t *testing.T) {
			n := 3
			if engine == "bft" {
				n = 4
			}
			nodes := startNetwork(t, engine, n)
			waitUntil(t, 20*time.Second, "every node connected", func() bool {
				for _, nd := range nodes {
					if nd.PeerCount() != n-1 {
						return false
					}
				}
				return true
			})
			accts, _ := chain.DevAccounts(1)
			stop := startLoad(t, nodes[0].client, accts[0].Key)
			defer stop()
			victim := nodes[1]
			waitUntil(t, 30*time.Second, "some blocks with transactions", func() bool {
				return victim.Ledger().Head().Number.Uint64() >= 5
			})
			dir := filepath.Join(t.TempDir(), "backup")
			m := backupOverAPI(t, victim.RPCAddr(), dir)
			hdr := victim.Ledger().HeaderByNumber(m.Height)
			if hdr == nil || hdr.Hash() != m.HeadHash || hdr.Root != m.StateRoot || m.Node != victim.Self() ||
				m.ChainID != chain.DefaultChainID || m.GenesisHash != victim.Ledger().Genesis().Hash() || m.Engine != engine {
				t.Fatalf("manifest %+v does not describe the node's block %d", m, m.Height)
			}
			if _, err := VerifyBackup(dir); err != nil {
				t.Fatal(err)
			}
			// Over a running node: refused.
			if _, err := Restore(dir, victim.home, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "is running") {
				t.Fatalf("restore over the running node: %v", err)
			}
			// Onto another node's home of the chain: refused.
			if _, err := Restore(dir, nodes[2].home, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "this home holds node") {
				t.Fatalf("restore onto another node's home: %v", err)
			}

			victim.Stop()
			if err := os.RemoveAll(victim.home); err != nil {
				t.Fatal(err)
			}
			got, err := Restore(dir, victim.home, RestoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Height != m.Height {
				t.Fatalf("restored height %d, backup %d", got.Height, m.Height)
			}
			restored := runHome(t, victim.home)
			if h := restored.Ledger().Head(); h.Number.Uint64() < m.Height {
				t.Fatalf("restored node starts at %d, below the backup's %d", h.Number, m.Height)
			}
			if h := restored.Ledger().HeaderByNumber(m.Height); h == nil || h.Hash() != m.HeadHash || h.Root != m.StateRoot {
				t.Fatalf("restored block %d differs from the backup's manifest", m.Height)
			}
			// It rejoins: it reaches the others' head while the load goes on.
			target := nodes[0].Ledger().Head().Number.Uint64() + 3
			last := time.Now()
			waitUntil(t, 60*time.Second, fmt.Sprintf("the restored node to catch up to %d", target), func() bool {
				if time.Since(last) > 5*time.Second {
					last = time.Now()
					t.Logf("heads: node0 %d, restored %d, node2 %d", nodes[0].Ledger().Head().Number, restored.Ledger().Head().Number, nodes[2].Ledger().Head().Number)
				}
				return restored.Ledger().Head().Number.Uint64() >= target
			})
			sent := stop()
			if sent == 0 {
				t.Fatal("no transaction was sent")
			}
			others := []*netNode{nodes[0], restored}
			for i, nd := range nodes {
				if i != 1 {
					others = append(others, nd)
				}
			}
			waitUntil(t, 60*time.Second, "every node at one head", func() bool {
				h := nodes[0].Ledger().Head().Hash()
				for _, nd := range others {
					if nd.Ledger().Head().Hash() != h {
						return false
					}
				}
				return true
			})
			for h := uint64(1); h <= nodes[0].Ledger().Head().Number.Uint64(); h++ {
				want := nodes[0].Ledger().HeaderByNumber(h)
				if got := restored.Ledger().HeaderByNumber(h); got == nil || got.Hash() != want.Hash() || got.Root != want.Root {
					t.Fatalf("block %d: the restored node disagrees", h)
				}
			}
		})
	}
}

// backupFixture runs a one-validator raft network, commits a few
// transactions, backs the node up, and stops it: its home (at a height
// above the backup's) and the backup.
func backupFixture(t *testing.T, chainID uint64) (home, dir string, m *BackupManifest) {
	t.Helper()
	root := t.TempDir()
	_, inits, err := InitNetwork(InitOptions{Dir: root, Validators: 1, Engine: "raft", DevAccounts: true, BlockTimeMs: 100, ChainID: chainID,
		RPCPort: freePortBase(t, 1), P2PPort: freePortBase(t, 1), MetricsPort: freePortBase(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	nd := runHome(t, inits[0].Home)
	accts, _ := chain.DevAccounts(1)
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(chainID))
	to := common.HexToAddress("0xBACC0F")
	send := func(nonce uint64) {
		tx := types.MustSignNewTx(accts[0].Key, signer, &types.DynamicFeeTx{ChainID: new(big.Int).SetUint64(chainID),
			Nonce: nonce, Gas: 21000, GasFeeCap: big.NewInt(1), To: &to, Value: big.NewInt(1)})
		if err := nd.client.SendTransaction(context.Background(), tx); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 20*time.Second, "the transaction's receipt", func() bool {
			_, err := nd.client.TransactionReceipt(context.Background(), tx.Hash())
			return err == nil
		})
	}
	for i := uint64(0); i < 3; i++ {
		send(i)
	}
	dir = filepath.Join(root, "backup")
	if m, err = nd.Backup(dir); err != nil {
		t.Fatal(err)
	}
	send(3) // the home moves on past the backup
	nd.Stop()
	return inits[0].Home, dir, m
}

// TestRestoreRefusesWrongChainAndDamage: a backup is not restored onto a
// home of another chain, nor when it is half-written or damaged; the
// home is left as it was. A good one restores onto the node's own home.
func TestRestoreRefusesWrongChainAndDamage(t *testing.T) {
	home, dir, m := backupFixture(t, chain.DefaultChainID)
	before := treeDigest(t, home)

	// Another chain's home.
	other, _, _ := backupFixture(t, 1338)
	_, err := Restore(dir, other, RestoreOptions{})
	want := fmt.Sprintf("backup is of chain %d genesis %s, this home holds chain 1338 genesis ", m.ChainID, shortHash(m.GenesisHash))
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("restore onto another chain: %v; want %q…", err, want)
	}

	damaged := func(name string, spoil func(d string)) {
		t.Run(name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "copy")
			if err := copyTree(dir, d, nil); err != nil {
				t.Fatal(err)
			}
			spoil(d)
			if _, err := Restore(d, home, RestoreOptions{}); err == nil {
				t.Fatal("restore of a damaged backup succeeded")
			} else if !errors.Is(err, ErrBackupIncomplete) {
				t.Fatalf("restore of a damaged backup: %v, want ErrBackupIncomplete", err)
			}
			if got := treeDigest(t, home); got != before {
				t.Fatal("a refused restore changed the home")
			}
		})
	}
	damaged("no manifest", func(d string) { os.Remove(filepath.Join(d, ManifestFile)) })
	damaged("a flipped byte", func(d string) {
		var f BackupFile
		for _, f = range m.Files {
			if strings.HasPrefix(f.Path, "data/chaindata/") && f.Size > 0 {
				break
			}
		}
		p := filepath.Join(d, filepath.FromSlash(f.Path))
		raw, _ := os.ReadFile(p)
		raw[len(raw)/2] ^= 0x40
		os.WriteFile(p, raw, 0o600)
	})
	damaged("a missing file", func(d string) { os.Remove(filepath.Join(d, filepath.FromSlash(m.Files[len(m.Files)-1].Path))) })
	damaged("a file cut short", func(d string) {
		p := filepath.Join(d, filepath.FromSlash(m.Files[0].Path))
		info, _ := os.Stat(p)
		os.Truncate(p, info.Size()/2)
	})
	damaged("an extra file", func(d string) { os.WriteFile(filepath.Join(d, "data", "extra"), []byte("x"), 0o600) })

	// The node's own home: restored to the backup's height.
	if _, err := Restore(dir, home, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	nd := runHome(t, home)
	if h := nd.Ledger().Head(); h.Number.Uint64() != m.Height || h.Hash() != m.HeadHash || h.Root != m.StateRoot {
		t.Fatalf("restored head %d %s, backup %d %s", h.Number, h.Hash(), m.Height, m.HeadHash)
	}
}

// TestBackupAPIAnswersLoopbackOnly: the backup resource refuses a caller
// from another machine, and a second backup while one runs.
func TestBackupAPIAnswersLoopbackOnly(t *testing.T) {
	n := &Node{quit: make(chan struct{})}
	n.cfg.DataDir = t.TempDir()
	h := n.backupHandler()
	req := httptest.NewRequest(http.MethodPost, BackupPath, strings.NewReader(`{"dir":"/tmp/x"}`))
	req.RemoteAddr = "192.0.2.7:40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "loopback") {
		t.Fatalf("remote caller: %d %s", rec.Code, rec.Body)
	}
	n.backup.running, n.backup.dir = true, "/elsewhere"
	req = httptest.NewRequest(http.MethodPost, BackupPath, strings.NewReader(`{"dir":"`+filepath.Join(t.TempDir(), "b")+`"}`))
	req.RemoteAddr = "127.0.0.1:40000"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusConflict {
		t.Fatalf("second backup: %d %s", rec.Code, rec.Body)
	}
	req = httptest.NewRequest(http.MethodPost, BackupPath, strings.NewReader(`{"dir":"relative/dir"}`))
	req.RemoteAddr = "127.0.0.1:40000"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "absolute") {
		t.Fatalf("relative folder: %d %s", rec.Code, rec.Body)
	}
}

// restoreChildEnv names the backup and the home of a restore that the
// test binary runs as a child process, to be killed.
const restoreChildEnv = "CHARTER_TEST_RESTORE_CHILD"

// TestRestoreCrashChild is the child process of TestRestoreKilled: it
// restores, pausing at each step so that the parent's kill lands in
// every part of a restore.
func TestRestoreCrashChild(t *testing.T) {
	spec := os.Getenv(restoreChildEnv)
	if spec == "" {
		t.Skip("the child process of TestRestoreKilled")
	}
	from, home, _ := strings.Cut(spec, "|")
	if from == "hold" {
		// A node on home, in this process, until the parent kills it.
		hc, err := LoadHomeConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := hc.NodeConfig(home, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := New(cfg); err != nil {
			t.Fatal(err)
		}
		fmt.Println("holding")
		time.Sleep(time.Minute)
		return
	}
	restoreStep = func(string) { time.Sleep(40 * time.Millisecond) }
	if _, err := Restore(from, home, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreKilled: a restore killed (SIGKILL) at any instant leaves a
// home that is either as it was or restored whole, whose node opens; the
// next restore completes.
func TestRestoreKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs child processes")
	}
	home, dir, m := backupFixture(t, chain.DefaultChainID)
	open := func() common.Hash {
		t.Helper()
		hc, err := LoadHomeConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := hc.NodeConfig(home, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		nd, err := New(cfg)
		if err != nil {
			t.Fatalf("the node does not open after a killed restore: %v", err)
		}
		h := nd.Ledger().Head()
		nd.Stop()
		return h.Hash()
	}
	// A node of another process on the home: refused.
	hold := exec.Command(os.Args[0], "-test.run=^TestRestoreCrashChild$", "-test.count=1", "-test.v")
	hold.Env = append(os.Environ(), restoreChildEnv+"=hold|"+home)
	stdout, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	held := make(chan bool, 1)
	go func() {
		buf := make([]byte, 4096)
		var seen []byte
		for {
			n, err := stdout.Read(buf)
			seen = append(seen, buf[:n]...)
			if bytes.Contains(seen, []byte("holding")) {
				held <- true
				io.Copy(io.Discard, stdout)
				return
			}
			if err != nil {
				held <- false
				return
			}
		}
	}()
	select {
	case ok := <-held:
		if !ok {
			t.Fatal("the child node did not open")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child node did not open in 30s")
	}
	_, err = Restore(dir, home, RestoreOptions{})
	hold.Process.Kill()
	hold.Wait()
	if err == nil || !strings.Contains(err.Error(), "a node is running") {
		t.Fatalf("restore under a node of another process: %v", err)
	}

	restoredOnce := false
	for i, delay := range []time.Duration{0, 10, 25, 50, 80, 120, 160, 200, 250, 400} {
		delay *= time.Millisecond
		headBefore := open()
		cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), restoreChildEnv+"="+dir+"|"+home)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Kill()
		err := cmd.Wait()
		killed := err != nil
		if err != nil && !strings.Contains(err.Error(), "killed") {
			t.Fatalf("kill %d: the child failed by itself: %v\n%s", i, err, out.String())
		}
		after := open()
		switch after {
		case m.HeadHash:
			restoredOnce = true
		case headBefore:
		default:
			t.Fatalf("kill %d after %s (killed %v): the home's head is %s, neither as it was (%s) nor restored (%s)",
				i, delay, killed, after, headBefore, m.HeadHash)
		}
		_, staged := os.Stat(stagingName(home))
		t.Logf("kill %d after %s: killed %v, restored %v, staging folder left %v", i, delay, killed, after == m.HeadHash, staged == nil)
		if _, err := os.Stat(stagingName(home)); err == nil && !killed {
			t.Fatalf("kill %d: a finished restore left its staging folder", i)
		}
	}
	if !restoredOnce {
		// Every kill came before the swap: the last restore finishes it.
		t.Log("no killed restore got to the swap")
	}
	if _, err := Restore(dir, home, RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if h := open(); h != m.HeadHash {
		t.Fatalf("restored head %s, want %s", h, m.HeadHash)
	}
	if _, err := os.Stat(stagingName(home)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the staging folder is left after a whole restore: %v", err)
	}
}
