package privstate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"
)

// FuzzDecodeRecords feeds arbitrary bytes to every decoder of what a
// group's database and the tombstones hold: none may panic, and a block
// record that decodes has lists that agree and derive, and only rejected
// transactions whose bytes do not decode.
func FuzzDecodeRecords(f *testing.F) {
	spec := testSpec(f)
	c := newPubChain(spec, 9)
	s := openStore(f, f.TempDir(), c, Options{})
	sc := newTokenScenario(f)
	sc.run(f, s, c, groupA)
	bad := newAccount(f, 7)
	mustApply(f, s, groupB, c.at(3), bad.tx(f, nil, 1, nil)) // rejected: intrinsic gas
	refused := bad.tx(f, nil, 100_000, nil)
	refused.Reject = "refused by the caller"
	mustApply(f, s, groupB, c.at(5), carried([]byte("not a private transaction")), refused)
	for _, g := range []common.Hash{groupA, groupB} {
		if err := s.read(g, func(h *handle) error {
			for _, n := range []uint64{2, 3, 5, 9} {
				if raw, ok, _ := h.getOptional(numKey(prefBlock, n)); ok {
					f.Add(raw)
				}
				if raw, ok, _ := h.getOptional(numKey(prefRoot, n)); ok {
					f.Add(raw)
				}
			}
			raw, _, _ := h.getOptional(keyHead)
			f.Add(raw)
			return nil
		}); err != nil {
			f.Fatal(err)
		}
	}
	s.Close()
	empty, _ := rlp.EncodeToBytes(&blockRecord{})
	f.Add(empty)
	f.Add([]byte("12\n"))
	f.Add([]byte{})

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		if rec, err := decodeBlockRecord(raw); err == nil {
			if len(rec.Receipts) != len(rec.Txs) || len(rec.Extras) != len(rec.Txs) || len(rec.Markers) != len(rec.Txs) || len(rec.Txs) > MaxRecordedTxsPerBlock {
				t.Fatalf("decoded record with %d transactions, %d receipts, %d extras, %d markers", len(rec.Txs), len(rec.Receipts), len(rec.Extras), len(rec.Markers))
			}
			if txs, err := rec.decodeTxs(); err == nil {
				rs, err := (&Store{}).derive(rec, txs, 1, common.Hash{1})
				if err != nil || len(rs) != len(txs) {
					t.Fatalf("derive: %d receipts, %v", len(rs), err)
				}
				for i, r := range rs {
					if r.Rejected == "" && txs[i] == nil {
						t.Fatalf("receipt %d ran without a transaction that decodes", i)
					}
				}
			}
		}
		_, _ = decodeRootRecord(raw)
		var head headRecord
		_ = rlp.DecodeBytes(raw, &head)
		_, _, _ = decodeTxLookup(raw)
		path := filepath.Join(dir, "tombstone")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := readTombstone(path); err == nil && len(raw) > maxTombstoneBytes {
			t.Fatalf("a tombstone of %d bytes read", len(raw))
		}
	})
}
