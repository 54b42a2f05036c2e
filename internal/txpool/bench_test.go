package txpool

import (
	"crypto/ecdsa"
	"runtime"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// benchTxs signs perSender transactions for each of senders accounts,
// interleaved by sender as concurrent clients submit them; reversed sends
// each account's nonces from the highest down, so that every transaction
// but the last of each account waits queued and is then promoted.
func benchTxs(b *testing.B, senders, perSender int, reversed bool) ([]*ecdsa.PrivateKey, []*types.Transaction, []common.Address) {
	b.Helper()
	keys := make([]*ecdsa.PrivateKey, senders)
	for i := range keys {
		keys[i], _ = crypto.GenerateKey()
	}
	var txs []*types.Transaction
	var froms []common.Address
	for j := 0; j < perSender; j++ {
		nonce := uint64(j)
		if reversed {
			nonce = uint64(perSender - 1 - j)
		}
		for _, k := range keys {
			txs = append(txs, tx(k, nonce, 1))
			froms = append(froms, crypto.PubkeyToAddress(k.PublicKey))
		}
	}
	return keys, txs, froms
}

// benchAdmit measures the stateful part of admission (what runs under the
// pool lock), per transaction, into an empty pool each round. cpu-ns/tx is
// the CPU time of the admitting thread (garbage collection on other
// threads not counted), steadier than ns/tx on a shared machine.
func benchAdmit(b *testing.B, senders, perSender int, reversed bool) {
	keys, txs, froms := benchTxs(b, senders, perSender, reversed)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p, _ := newTestPool(Config{}, keys...)
		b.StartTimer()
		start := threadCPU()
		for j, err := range p.AddBatch(txs, froms) {
			if err != nil {
				b.Fatalf("tx %d: %v", j, err)
			}
		}
		cpu += threadCPU() - start
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(txs)), "ns/tx")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(txs)), "cpu-ns/tx")
}

func BenchmarkAdmitInOrder(b *testing.B)  { benchAdmit(b, 256, 16, false) }
func BenchmarkAdmitReversed(b *testing.B) { benchAdmit(b, 256, 16, true) }
func BenchmarkAdmitOneSender(b *testing.B) {
	benchAdmit(b, 1, 4096, false)
}

// BenchmarkAdd is the whole admission of one transaction as JSON-RPC runs
// it: stateless checks, sender recovery (the bulk of it), stateful checks.
func BenchmarkAdd(b *testing.B) { benchAdd(b, false) }

// BenchmarkAddSigned is the admission of a transaction the node signed
// itself (a private transaction's marker): the same checks, the sender
// given.
func BenchmarkAddSigned(b *testing.B) { benchAdd(b, true) }

func benchAdd(b *testing.B, signed bool) {
	keys, txs, froms := benchTxs(b, 256, 16, false)
	raws := make([][]byte, len(txs))
	for i, x := range txs {
		raws[i], _ = x.MarshalBinary()
	}
	b.ReportAllocs()
	b.ResetTimer()
	var p *Pool
	for i := 0; i < b.N; i++ {
		j := i % len(txs)
		if j == 0 {
			b.StopTimer()
			p, _ = newTestPool(Config{}, keys...)
			b.StartTimer()
		}
		// A fresh decode, as from the network: no cached sender.
		var x types.Transaction
		if err := x.UnmarshalBinary(raws[j]); err != nil {
			b.Fatal(err)
		}
		var err error
		if signed {
			err = p.AddSigned(&x, froms[j])
		} else {
			err = p.Add(&x)
		}
		if err != nil {
			b.Fatalf("tx %d: %v", j, err)
		}
	}
}

// BenchmarkAdmitFullPool admits honest senders' transactions into a pool
// that one flooder fills: each admission evicts the flooder's tail.
func BenchmarkAdmitFullPool(b *testing.B) {
	fKeys, fTxs, fFroms := benchTxs(b, 1, 4096, false)
	keys, txs, froms := benchTxs(b, 256, 8, false)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p, _ := newTestPool(Config{GlobalSlots: 4096}, append(keys, fKeys...)...)
		for j, err := range p.AddBatch(fTxs, fFroms) {
			if err != nil {
				b.Fatalf("flooder tx %d: %v", j, err)
			}
		}
		b.StartTimer()
		start := threadCPU()
		for j, err := range p.AddBatch(txs, froms) {
			if err != nil {
				b.Fatalf("tx %d: %v", j, err)
			}
		}
		cpu += threadCPU() - start
		if u := p.Usage(); u.Evicted != uint64(len(txs)) {
			b.Fatalf("%d evicted, want %d", u.Evicted, len(txs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(txs)), "ns/tx")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(txs)), "cpu-ns/tx")
}
