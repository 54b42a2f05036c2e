package privstate

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
)

func TestTransactionBounds(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 5)
	s := openStore(t, t.TempDir(), c, Options{})
	defer s.Close()
	alice := newAccount(t, 1)
	rec := alice.created(0)
	mustSucceed(t, mustApply(t, s, groupA, c.at(1), alice.tx(t, nil, 200_000, creation(recorderRuntime))))

	// Bytes over MaxPrivateTxBytes are rejected unread (privtx could not
	// sign them), and the record keeps their hash alone; a transaction at
	// the bound runs.
	oversized := carried(append(alice.tx(t, &rec, 5_000_000, nil).Raw, make([]byte, MaxPrivateTxBytes)...))
	alice.nonce--
	fits := alice.tx(t, &rec, 5_000_000, make([]byte, MaxPrivateTxBytes-200))
	if len(fits.Raw) > MaxPrivateTxBytes || len(fits.Raw) < MaxPrivateTxBytes-300 || len(oversized.Raw) <= MaxPrivateTxBytes {
		t.Fatalf("test transactions of %d and %d bytes do not straddle the bound", len(fits.Raw), len(oversized.Raw))
	}
	res := mustApply(t, s, groupA, c.at(2), oversized, fits)
	if r := res.Receipts[0]; !strings.Contains(r.Rejected, "MaxPrivateTxBytes") || r.TxHash != txHash(oversized) || r.Marker != oversized.Marker {
		t.Fatalf("oversized transaction: rejected %q, hash %s, marker %s", r.Rejected, r.TxHash, r.Marker)
	}
	if r := res.Receipts[1]; r.Rejected != "" || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("transaction at the bound: rejected %q status %d", r.Rejected, r.Status)
	}
	if r, err := s.ReceiptByMarker(groupA, oversized.Marker); err != nil || r.TxHash != txHash(oversized) {
		t.Fatalf("receipt of the oversized transaction by its marker: %v", err)
	}
	if _, _, _, err := s.Transaction(groupA, txHash(oversized)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the oversized transaction read back: %v, want ErrNotFound", err)
	}
	if err := s.read(groupA, func(h *handle) error {
		br, err := h.blockRecord(2)
		if err == nil && (len(br.Txs[0]) != 0 || len(br.Txs[1]) != len(fits.Raw)) {
			err = fmt.Errorf("block record keeps %d and %d bytes", len(br.Txs[0]), len(br.Txs[1]))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}

	// A caller's reason longer than MaxReasonBytes is kept cut.
	long := alice.tx(t, &rec, 50_000, nil)
	alice.nonce--
	long.Reject = strings.Repeat("é", MaxReasonBytes)
	res = mustApply(t, s, groupA, c.at(3), long)
	if r := res.Receipts[0].Rejected; len(r) > MaxReasonBytes || len(r) < MaxReasonBytes-1 || !utf8.ValidString(r) {
		t.Fatalf("reason of %d bytes kept as %d bytes (valid UTF-8 %v)", len(long.Reject), len(r), utf8.ValidString(r))
	}

	// MaxPrivateTxsPerBlock run, the next is rejected.
	txs := make([]Tx, MaxPrivateTxsPerBlock+1)
	for i := range txs {
		txs[i] = alice.tx(t, &rec, 50_000, common.LeftPadBytes([]byte{byte(i)}, 32))
	}
	res = mustApply(t, s, groupA, c.at(4), txs...)
	for i, r := range res.Receipts[:MaxPrivateTxsPerBlock] {
		if r.Rejected != "" || r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("transaction %d of the block: rejected %q status %d", i, r.Rejected, r.Status)
		}
	}
	if r := res.Receipts[MaxPrivateTxsPerBlock].Rejected; !strings.Contains(r, "MaxPrivateTxsPerBlock") {
		t.Fatalf("transaction past the bound: rejected %q", r)
	}
	if r, err := s.Receipt(groupA, txHash(txs[MaxPrivateTxsPerBlock])); err != nil || !strings.Contains(r.Rejected, "MaxPrivateTxsPerBlock") {
		t.Fatalf("receipt of the transaction past the bound: %v", err)
	}

	// More than a public block can carry is refused whole, and creates
	// nothing for a group the node does not hold.
	many := make([]Tx, MaxRecordedTxsPerBlock+1)
	for i := range many {
		many[i] = txs[0]
	}
	if _, err := s.ApplyBlock(groupB, c.at(5), many); !errors.Is(err, ErrTooMany) || !strings.Contains(err.Error(), "MaxRecordedTxsPerBlock") {
		t.Fatalf("%d transactions: %v", len(many), err)
	}
	if _, err := os.Stat(s.GroupDir(groupB)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused call created the group's folder: %v", err)
	}

	// Payloads.
	if err := s.PutPayload(groupA, common.Hash{1}, make([]byte, MaxPayloadBytes+1)); !errors.Is(err, ErrTooMany) || !strings.Contains(err.Error(), "MaxPayloadBytes") {
		t.Fatalf("oversized payload: %v", err)
	}
	if _, err := s.Payload(groupA, common.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused payload read back: %v", err)
	}
	payload := make([]byte, MaxPayloadBytes)
	payload[0], payload[MaxPayloadBytes-1] = 1, 2
	if err := s.PutPayload(groupB, common.Hash{2}, payload); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Payload(groupB, common.Hash{2}); err != nil || len(got) != MaxPayloadBytes || got[MaxPayloadBytes-1] != 2 {
		t.Fatalf("payload at the bound: %d bytes, %v", len(got), err)
	}
	if n, root, err := s.Head(groupB); err != nil || n != 0 || root != types.EmptyRootHash {
		t.Fatalf("group with a payload alone: head %d %s, %v", n, root, err)
	}
}

func TestLogQueryBounds(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 4)
	s := openStore(t, t.TempDir(), c, Options{})
	defer s.Close()
	alice := newAccount(t, 1)
	logger := alice.created(0)
	mustSucceed(t, mustApply(t, s, groupA, c.at(1), alice.tx(t, nil, 200_000, creation(loggerRuntime))))
	mustSucceed(t, mustApply(t, s, groupA, c.at(2), alice.tx(t, &logger, 10_000_000, common.BigToHash(big.NewInt(MaxLogsPerQuery)).Bytes())))
	mustSucceed(t, mustApply(t, s, groupA, c.at(3), alice.tx(t, &logger, 100_000, common.BigToHash(big.NewInt(1)).Bytes())))

	logs, err := s.Logs(groupA, LogQuery{From: 2, To: 2})
	if err != nil || len(logs) != MaxLogsPerQuery {
		t.Fatalf("block 2: %d logs, %v", len(logs), err)
	}
	if l := logs[MaxLogsPerQuery-1]; l.Address != logger || l.Index != MaxLogsPerQuery-1 || l.BlockNumber != 2 {
		t.Fatalf("last log: %+v", l)
	}
	if _, err := s.Logs(groupA, LogQuery{From: 0, To: Latest}); !errors.Is(err, ErrTooMany) || !strings.Contains(err.Error(), "MaxLogsPerQuery") {
		t.Fatalf("blocks 0 to 3: %v", err)
	}
	if logs, err := s.Logs(groupA, LogQuery{From: 3, To: Latest, Addresses: []common.Address{logger}}); err != nil || len(logs) != 1 {
		t.Fatalf("block 3: %d logs, %v", len(logs), err)
	}
	if logs, err := s.Logs(groupA, LogQuery{From: 0, To: Latest, Addresses: []common.Address{{1}}}); err != nil || len(logs) != 0 {
		t.Fatalf("another address: %d logs, %v", len(logs), err)
	}
	if logs, err := s.Logs(groupA, LogQuery{From: 0, To: Latest, Topics: [][]common.Hash{{{1}}}}); err != nil || len(logs) != 0 {
		t.Fatalf("a topic no log has: %d logs, %v", len(logs), err)
	}
	if _, err := s.Logs(groupA, LogQuery{From: 3, To: 3 + MaxLogRange}); !errors.Is(err, ErrTooMany) || !strings.Contains(err.Error(), "MaxLogRange") {
		t.Fatalf("a range of MaxLogRange+1 blocks: %v", err)
	}
	if logs, err := s.Logs(groupA, LogQuery{From: 3, To: 2 + MaxLogRange}); err != nil || len(logs) != 1 {
		t.Fatalf("a range of MaxLogRange blocks: %d logs, %v", len(logs), err)
	}
}

func TestOptions(t *testing.T) {
	spec := testSpec(t)
	c := newPubChain(spec, 1)
	for _, n := range []int{-1, MaxOpenGroupsLimit + 1} {
		if _, err := Open(t.TempDir(), spec, c, Options{MaxOpenGroups: n}, quietLog()); err == nil || !strings.Contains(err.Error(), "MaxOpenGroups") {
			t.Errorf("MaxOpenGroups %d: %v", n, err)
		}
	}
}

// Many groups on a store that may open two at once: never more open,
// every group's data intact after being closed and opened again, under
// concurrent writers and readers.
func TestOpenGroupsBound(t *testing.T) {
	const (
		groups  = 6
		blocks  = 5
		maxOpen = 2
	)
	spec := testSpec(t)
	c := newPubChain(spec, blocks)
	s := openStore(t, t.TempDir(), c, Options{MaxOpenGroups: maxOpen})
	defer s.Close()

	ids := make([]common.Hash, groups)
	for i := range ids {
		ids[i] = common.BigToHash(big.NewInt(int64(1000 + i)))
	}
	var (
		wg      sync.WaitGroup
		errs    = make(chan error, 4*groups)
		stop    = make(chan struct{})
		maxSeen int
		seenMu  sync.Mutex
	)
	watch := func() {
		n := s.OpenGroups()
		seenMu.Lock()
		maxSeen = max(maxSeen, n)
		seenMu.Unlock()
	}
	for g := range ids {
		wg.Add(2)
		go func(g int) { // a writer per group
			defer wg.Done()
			acct := newAccount(t, byte(g))
			rec := acct.created(0)
			for n := uint64(1); n <= blocks; n++ {
				var tx Tx
				if n == 1 {
					tx = acct.tx(t, nil, 200_000, creation(recorderRuntime))
				} else {
					tx = acct.tx(t, &rec, 100_000, common.BigToHash(big.NewInt(int64(g*100)+int64(n))).Bytes())
				}
				if _, err := s.ApplyBlock(ids[g], c.at(n), []Tx{tx}); err != nil {
					errs <- fmt.Errorf("group %d block %d: %w", g, n, err)
					return
				}
				watch()
			}
		}(g)
		go func(g int) { // a reader per group
			defer wg.Done()
			for i := 0; i < 50; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.PrivateRoot(ids[g], Latest); err != nil && !errors.Is(err, ErrUnknownGroup) {
					errs <- fmt.Errorf("read group %d: %w", g, err)
					return
				}
				watch()
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if maxSeen > maxOpen || maxSeen == 0 {
		t.Fatalf("%d group databases open at once, bound %d", maxSeen, maxOpen)
	}
	for g := range ids {
		acct := newAccount(t, byte(g))
		rec := acct.created(0)
		if err := s.View(ids[g], Latest, func(st *state.StateDB) error {
			want := common.BigToHash(big.NewInt(int64(g*100) + blocks))
			if got := st.GetState(rec, common.Hash{}); got != want {
				return fmt.Errorf("group %d keeps %s, want %s", g, got, want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if s.OpenGroups() > maxOpen {
			t.Fatalf("%d open", s.OpenGroups())
		}
	}
}
