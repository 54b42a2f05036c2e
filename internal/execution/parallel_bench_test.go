package execution

import (
	"math/big"
	"runtime"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/execution/evmtest"
)

const parBenchTxs = 1000

// BenchmarkParallelApply compares Apply (block verification) sequential
// and parallel on blocks of parBenchTxs transactions: plain transfers and
// ERC-20 transfers between distinct accounts (no conflicts), and calls of
// one hot counter (every transaction conflicts with the one before). Each
// iteration applies the block both ways, one after the other, so that
// the ratio comes from one run on a shared machine: seq-ns/tx, par-ns/tx,
// speedup (sequential time over parallel), and the CPU time of each per
// transaction. On a machine shared with other work, wall time says little
// about two idle cores; two-core-bound is what they could give at most:
// the sequential CPU time over the larger of the committer thread's CPU
// time (par-committer-ns/tx) and half the parallel CPU time. The block is
// built beforehand, so both ways find every
// sender recovered (the node recovers each sender once, at admission).
func BenchmarkParallelApply(b *testing.B) {
	for _, kind := range []string{"transfers", "erc20", "hot-contract"} {
		b.Run(kind, func(b *testing.B) {
			c := newBenchChain(b, parBenchTxs)
			txs := make([]*types.Transaction, parBenchTxs)
			switch kind {
			case "transfers":
				for i, k := range c.keys {
					to := common.BigToAddress(big.NewInt(int64(i + 0x10000))) // clear of the system contracts at 0x…0400
					txs[i] = c.sign(k, &to, 21000, nil)
				}
			case "erc20":
				tokenAddr := c.deployToken(b)
				for i, k := range c.keys {
					txs[i] = c.sign(k, &tokenAddr, 100_000, token.TransferData(common.BigToAddress(big.NewInt(int64(i+0x10000))), big.NewInt(1)))
				}
			case "hot-contract":
				deployer := crypto.PubkeyToAddress(c.admin.PublicKey)
				hot := crypto.CreateAddress(deployer, c.nonce[deployer])
				c.extend(b, c.sign(c.admin, nil, 1_000_000, evmtest.Counter.Code))
				for i, k := range c.keys {
					txs[i] = c.sign(k, &hot, 100_000, evmtest.Counter.Pack("bump"))
				}
			}
			h := chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1)
			built, err := c.exec.Build(h, c.st.Copy(), &listSource{txs})
			if err != nil || len(built.Block.Transactions()) != parBenchTxs {
				b.Fatalf("build: %v, %d of %d included", err, len(built.Block.Transactions()), parBenchTxs)
			}
			block := built.Block
			par := c.exec.WithOptions(Options{Parallel: true})
			kept, rerun := parallelStats.kept.Load(), parallelStats.rerun.Load()
			own, serial := parallelStats.own.Load(), parallelStats.serial.Load()
			// The committer runs on the benchmark's goroutine: locked to
			// its thread, the thread's CPU time is the committer's.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			var seqWall, parWall, seqCPU, parCPU, seqThread, parThread time.Duration
			for i := 0; i < b.N; i++ {
				for _, p := range []bool{false, true} {
					b.StopTimer()
					st := c.st.Copy()
					ex, wall, cpu, thread := c.exec, &seqWall, &seqCPU, &seqThread
					if p {
						ex, wall, cpu, thread = par, &parWall, &parCPU, &parThread
					}
					c0, th0, t0 := processCPU(), threadCPU(), time.Now()
					b.StartTimer()
					_, err := ex.Apply(c.head, block, st)
					b.StopTimer()
					*wall += time.Since(t0)
					*thread += threadCPU() - th0
					*cpu += processCPU() - c0
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*parBenchTxs) }
			b.ReportMetric(per(seqWall), "seq-ns/tx")
			b.ReportMetric(per(parWall), "par-ns/tx")
			b.ReportMetric(float64(seqWall)/float64(parWall), "speedup")
			b.ReportMetric(per(seqCPU), "seq-cpu-ns/tx")
			b.ReportMetric(per(parCPU), "par-cpu-ns/tx")
			b.ReportMetric(per(seqThread), "seq-thread-ns/tx")
			b.ReportMetric(per(parThread), "par-committer-ns/tx")
			b.ReportMetric(float64(seqCPU)/float64(max(parThread, parCPU/2)), "two-core-bound")
			b.ReportMetric(float64(parCPU)/float64(seqCPU), "cpu-ratio")
			total := float64(b.N * parBenchTxs)
			b.ReportMetric(float64(parallelStats.kept.Load()-kept)/total, "kept-frac")
			b.ReportMetric(float64(parallelStats.rerun.Load()-rerun)/total, "rerun-frac")
			b.ReportMetric(float64(parallelStats.own.Load()-own)/total, "own-frac")
			b.ReportMetric(float64(parallelStats.serial.Load()-serial)/total, "serial-frac")
		})
	}
}
