package execution

import (
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/system"
)

// benchChain is the development chain (charter dev's genesis) with funded
// senders, for benchmarks of block execution alone: no pool, no commit.
type benchChain struct {
	spec  *chain.Spec
	exec  *Executor
	head  *types.Header
	st    *state.StateDB
	admin *ecdsa.PrivateKey
	keys  []*ecdsa.PrivateKey
	nonce map[common.Address]uint64
}

func newBenchChain(b testing.TB, senders int) *benchChain {
	b.Helper()
	spec, err := chain.DevSpec(1337, 1000)
	if err != nil {
		b.Fatal(err)
	}
	dev, err := chain.DevAccounts(1)
	if err != nil {
		b.Fatal(err)
	}
	st, err := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
	if err != nil {
		b.Fatal(err)
	}
	g, err := spec.SystemGenesis()
	if err != nil {
		b.Fatal(err)
	}
	system.Seed(st, g)
	c := &benchChain{spec: spec, exec: New(spec, noHeaders{}), st: st, admin: dev[0].Key, nonce: map[common.Address]uint64{}}
	fund := uint256.NewInt(0).Mul(uint256.NewInt(1e18), uint256.NewInt(1000))
	st.SetBalance(dev[0].Address, fund, tracing.BalanceChangeUnspecified)
	for i := 0; i < senders; i++ {
		k, _ := crypto.GenerateKey()
		c.keys = append(c.keys, k)
		st.SetBalance(crypto.PubkeyToAddress(k.PublicKey), fund, tracing.BalanceChangeUnspecified)
	}
	c.head = spec.GenesisHeader(st.IntermediateRoot(spec.Config.Rules(common.Big0, true, 0)))
	return c
}

func (c *benchChain) sign(key *ecdsa.PrivateKey, to *common.Address, gas uint64, data []byte) *types.Transaction {
	from := crypto.PubkeyToAddress(key.PublicKey)
	tx := types.MustSignNewTx(key, c.exec.Signer(), &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: c.nonce[from], To: to, Gas: gas,
		Value: new(big.Int), GasFeeCap: big.NewInt(1_000_000_000), GasTipCap: big.NewInt(1), Data: data})
	c.nonce[from]++
	return tx
}

// extend builds a block of txs on the head and makes it the head; every
// transaction must succeed.
func (c *benchChain) extend(b testing.TB, txs ...*types.Transaction) {
	b.Helper()
	res, err := c.exec.Build(chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1), c.st, &listSource{txs})
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Rejected) > 0 || len(res.Receipts) != len(txs) {
		b.Fatalf("setup block: %d of %d included, rejected %v", len(res.Receipts), len(txs), res.Rejected)
	}
	for i, r := range res.Receipts {
		if r.Status != types.ReceiptStatusSuccessful {
			b.Fatalf("setup transaction %d failed", i)
		}
	}
	c.head = res.Block.Header()
}

// freeze freezes an address no transaction of the benchmark touches, by
// governance: the frozen count is then 1, and every frame pays for it.
func (c *benchChain) freeze(b testing.TB) { c.freezeTarget(b, common.HexToAddress("0xdead")) }

// freezeTarget freezes a by governance (two blocks: proposal and vote,
// then the one that executes it).
func (c *benchChain) freezeTarget(b testing.TB, a common.Address) {
	b.Helper()
	args, err := system.EncodeArgs(system.ActFreeze, a)
	if err != nil {
		b.Fatal(err)
	}
	propose, _ := system.Governance.Pack("propose", uint8(system.ActFreeze), args, "bench")
	vote, _ := system.Governance.Pack("vote", uint64(1), true)
	gov := system.GovernanceAddress
	c.extend(b, c.sign(c.admin, &gov, 1_000_000, propose), c.sign(c.admin, &gov, 1_000_000, vote))
	c.extend(b)
	if system.Read(c.st).Account(a).Frozen != true {
		b.Fatal("not frozen")
	}
}

// run times Build of one block of txs per iteration, on a fresh copy of
// the head state (copied outside the timer). Besides wall time per
// transaction it reports the process's CPU time per transaction (on
// Linux), which a machine shared with other work disturbs less.
func (c *benchChain) run(b *testing.B, txs []*types.Transaction) {
	h := chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1)
	b.ReportAllocs()
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := c.st.Copy()
		before := processCPU()
		b.StartTimer()
		res, err := c.exec.Build(types.CopyHeader(h), st, &listSource{txs})
		b.StopTimer()
		cpu += processCPU() - before
		b.StartTimer()
		if err != nil || len(res.Receipts) != len(txs) {
			b.Fatalf("%v: %d of %d included (%v)", err, len(res.Receipts), len(txs), res.Rejected)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(txs)), "ns/tx")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*len(txs)), "cpu-ns/tx")
}

const benchBlockTxs = 500

// BenchmarkExecuteTransfers is the EVM's share of a block of plain
// transfers (Build: permissions, EVM, state root), with nothing frozen and
// with one address frozen.
func BenchmarkExecuteTransfers(b *testing.B) {
	for _, frozen := range []bool{false, true} {
		b.Run(map[bool]string{false: "nothing-frozen", true: "one-frozen"}[frozen], func(b *testing.B) {
			c := newBenchChain(b, benchBlockTxs)
			if frozen {
				c.freeze(b)
			}
			txs := make([]*types.Transaction, benchBlockTxs)
			for i, k := range c.keys {
				to := common.BigToAddress(big.NewInt(int64(i + 1000)))
				txs[i] = c.sign(k, &to, 21000, nil)
			}
			c.run(b, txs)
		})
	}
}

// BenchmarkExecuteERC20 is BenchmarkExecuteTransfers for ERC-20 transfers
// between holders of the bench token.
func BenchmarkExecuteERC20(b *testing.B) {
	for _, frozen := range []bool{false, true} {
		b.Run(map[bool]string{false: "nothing-frozen", true: "one-frozen"}[frozen], func(b *testing.B) {
			c := newBenchChain(b, benchBlockTxs)
			if frozen {
				c.freeze(b)
			}
			tokenAddr := c.deployToken(b)
			txs := make([]*types.Transaction, benchBlockTxs)
			for i, k := range c.keys {
				txs[i] = c.sign(k, &tokenAddr, 100_000, token.TransferData(common.BigToAddress(big.NewInt(int64(i+1000))), big.NewInt(1)))
			}
			c.run(b, txs)
		})
	}
}

// BenchmarkGovernanceBlock is the cost of a block of proposals at the
// largest arguments the chain accepts (an organization with 8 KB of root
// certificates, 16 admins, 64 nodes that validate, a 1 KB memo: about 16
// KB of calldata each), from execution through the state root to the
// commit of the trie nodes (in memory: the disk write is the ledger's). It
// reports the CPU time per proposal and per byte of system-contract
// storage written (the unit of maxBlockGovBytes): the figure the
// governance budget of a block is chosen from.
func BenchmarkGovernanceBlock(b *testing.B) {
	for _, n := range []int{4, 16, 48} {
		b.Run(fmt.Sprintf("proposals=%d", n), func(b *testing.B) { benchGovernance(b, n, false) })
	}
	// Proposals refused as late as they can be: their last root is not a
	// certificate, found after the others are parsed. They write nothing,
	// so maxBlockGovTxs alone bounds them.
	b.Run("refused=64", func(b *testing.B) { benchGovernance(b, 64, true) })
}

// benchGovernance times blocks of n of the largest proposals, accepted
// or refused.
func benchGovernance(b *testing.B, n int, refused bool) {
	c := newBenchChain(b, 0)
	// One organization: every proposal of the benchmark is its
	// admin's, so it may have them all open; no budget bounds them.
	c.enact(b, system.ParamMaxOpenProposals, 256)
	c.enact(b, system.ParamMaxBlockGovBytes, 1<<20)
	c.enact(b, system.ParamMaxBlockGovTxs, 1024)
	roots := benchRoots(b)
	if refused {
		last := strings.LastIndex(roots, "-----BEGIN CERTIFICATE-----")
		roots = roots[:last] + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	}
	gov := system.GovernanceAddress
	txs := make([]*types.Transaction, n)
	for i := range txs {
		txs[i] = c.sign(c.admin, &gov, 8_000_000, largestProposal(b, fmt.Sprintf("org%d", i), roots))
	}
	h := chain.NewHeader(c.spec, c.head, common.Address{}, c.head.Time+1)
	var cpu time.Duration
	var written uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st := c.st.Copy()
		before := processCPU()
		b.StartTimer()
		res, err := c.exec.Build(types.CopyHeader(h), st, &listSource{txs})
		if err == nil {
			_, err = st.Commit(c.spec.Config.Rules(h.Number, true, h.Time), h.Number.Uint64())
		}
		b.StopTimer()
		cpu += processCPU() - before
		b.StartTimer()
		if err != nil || len(res.Receipts) != n {
			b.Fatalf("%v: %d of %d included (%v)", err, len(res.Receipts), n, res.Rejected)
		}
		for _, r := range res.Receipts {
			if (r.Status == types.ReceiptStatusSuccessful) == refused {
				b.Fatalf("a proposal's status is %d", r.Status)
			}
		}
		written = res.gov.bytes
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*n), "cpu-ns/proposal")
	b.ReportMetric(float64(written)/float64(n), "gov-bytes/proposal")
	if written > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/float64(written), "cpu-ns/gov-byte")
	}
}

// enact passes a chain parameter by the admin's proposal and vote (the
// development chain has one organization) in one block.
func (c *benchChain) enact(b *testing.B, name string, value uint64) {
	args, err := system.EncodeArgs(system.ActSetParameter, name, new(big.Int).SetUint64(value))
	if err != nil {
		b.Fatal(err)
	}
	id := system.Read(c.st).ProposalCount() + 1
	propose, _ := system.Governance.Pack("propose", uint8(system.ActSetParameter), args, "bench")
	vote, _ := system.Governance.Pack("vote", id, true)
	gov := system.GovernanceAddress
	c.extend(b, c.sign(c.admin, &gov, 1_000_000, propose), c.sign(c.admin, &gov, 1_000_000, vote))
	c.extend(b)
	if v, _ := system.Read(c.st).ParamValue(name); v != value {
		b.Fatalf("%s is %d, want %d", name, v, value)
	}
}

// benchRoots is distinct CA certificates in PEM, as many as fit the 8 KB
// bound of an organization's roots.
func benchRoots(b *testing.B) string {
	var out string
	for i := 0; ; i++ {
		ca, err := identity.NewRootCA(fmt.Sprintf("bench%d", i), identity.CAOptions{})
		if err != nil {
			b.Fatal(err)
		}
		pem := string(identity.EncodeCertsPEM(ca.Cert))
		if len(out)+len(pem) > 8192 {
			return out
		}
		out += pem
	}
}

// largestProposal is the calldata of a proposal to add organization name
// with every argument at its bound.
func largestProposal(b *testing.B, name, roots string) []byte {
	addr := func(what string, i int) common.Address {
		return common.BytesToAddress(crypto.Keccak256([]byte(name), []byte(what), big.NewInt(int64(i)).Bytes())[12:])
	}
	admins := make([]common.Address, 16)
	for i := range admins {
		admins[i] = addr("admin", i)
	}
	nodes := make([]common.Address, 64)
	fps := make([][32]byte, 64)
	for i := range nodes {
		nodes[i] = addr("node", i)
		fps[i] = crypto.Keccak256Hash([]byte(name), nodes[i][:])
	}
	args, err := system.EncodeArgs(system.ActAddOrganization, name, roots, uint8(system.TierValidate), uint64(1), admins, nodes, fps, nodes, []byte{})
	if err != nil {
		b.Fatal(err)
	}
	data, err := system.Governance.Pack("propose", uint8(system.ActAddOrganization), args, strings.Repeat("m", 1024))
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// deployToken deploys the test token from the admin and gives every key a
// balance, in a block of its own; it returns the token's address.
func (c *benchChain) deployToken(b *testing.B) common.Address {
	deployer := crypto.PubkeyToAddress(c.admin.PublicKey)
	tokenAddr := crypto.CreateAddress(deployer, c.nonce[deployer])
	setup := []*types.Transaction{c.sign(c.admin, nil, 3_000_000, token.DeployData(new(big.Int).Lsh(big.NewInt(1), 200)))}
	for _, k := range c.keys {
		setup = append(setup, c.sign(c.admin, &tokenAddr, 100_000, token.TransferData(crypto.PubkeyToAddress(k.PublicKey), new(big.Int).Lsh(big.NewInt(1), 100))))
	}
	c.extend(b, setup...)
	return tokenAddr
}
