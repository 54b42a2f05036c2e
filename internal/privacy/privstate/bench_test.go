package privstate

import (
	"crypto/rand"
	"math/big"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/bench/token"
)

// BenchmarkApplyBlock100Transfers applies public blocks that each carry
// 100 private ERC-20 transfers of one group: execution, commit of the
// state, receipts and records, and the fsync. Signing is not timed.
func BenchmarkApplyBlock100Transfers(b *testing.B) {
	const perBlock = 100
	spec := testSpec(b)
	c := newPubChain(spec, b.N+1)
	s := openStore(b, b.TempDir(), c, Options{})
	defer s.Close()
	alice := newAccount(b, 1)
	tok := alice.created(0)
	mustSucceed(b, mustApply(b, s, groupA, c.at(1), alice.tx(b, nil, 3_000_000, token.DeployData(big.NewInt(1e18)))))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		txs := make([]Tx, perBlock)
		for j := range txs {
			to := common.BigToAddress(big.NewInt(int64(1_000_000 + i*perBlock + j)))
			txs[j] = alice.tx(b, &tok, 100_000, token.TransferData(to, big.NewInt(1)))
		}
		b.StartTimer()
		res, err := s.ApplyBlock(groupA, c.at(uint64(i+2)), txs)
		if err != nil {
			b.Fatal(err)
		}
		if r := res.Receipts[perBlock-1]; r.Status != types.ReceiptStatusSuccessful {
			b.Fatalf("transfer failed: %q", r.Rejected)
		}
	}
	b.ReportMetric(float64(b.N*perBlock)/b.Elapsed().Seconds(), "transfers/s")
}

// BenchmarkGroupWrites measures the CPU the group database spends on the
// private ERC-20 load of the 4-validator benchmark: per public block, 1,000
// payloads of 2,600 random bytes (hybrid envelopes of two recipients) and
// 1,000 transfers to new accounts. It reports the process's CPU seconds
// (user and system, pebble's flushes and compactions included) per 1,000
// transfers, for group caches of 16 and 64 MB.
func BenchmarkGroupWrites(b *testing.B) {
	for _, c := range []struct {
		name    string
		cacheMB int
		payload int
	}{{"cache16-hybrid", 16, 2600}, {"cache64-hybrid", 64, 2600}, {"cache16-x25519", 16, 430}, {"cache64-x25519", 64, 430}} {
		b.Run(c.name, func(b *testing.B) {
			const perBlock, blocks = 1000, 20
			spec := testSpec(b)
			ch := newPubChain(spec, blocks+2)
			s := openStore(b, b.TempDir(), ch, Options{GroupCacheMB: c.cacheMB})
			defer s.Close()
			alice := newAccount(b, 1)
			tok := alice.created(0)
			mustSucceed(b, mustApply(b, s, groupA, ch.at(1), alice.tx(b, nil, 3_000_000, token.DeployData(big.NewInt(1e18)))))
			all := make([][]Tx, blocks)
			for i := range all {
				all[i] = make([]Tx, perBlock)
				for j := range all[i] {
					to := common.BigToAddress(big.NewInt(int64(1_000_000 + i*perBlock + j)))
					all[i][j] = alice.tx(b, &tok, 100_000, token.TransferData(to, big.NewInt(1)))
				}
			}
			payload := make([]byte, c.payload)
			b.ResetTimer() // one pass whatever b.N: run with -benchtime 1x
			before := cpuSeconds()
			for i := range all {
				for j := 0; j < perBlock; j++ {
					rand.Read(payload)
					if err := s.KeepPayload(groupA, crypto.Keccak256Hash(payload), payload); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := s.ApplyBlock(groupA, ch.at(uint64(i+2)), all[i]); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuSeconds() - before
			b.ReportMetric(cpu/float64(blocks), "cpu-s/1000tx")
		})
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
