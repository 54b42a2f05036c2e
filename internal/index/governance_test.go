package index

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/chaindata"
	"github.com/charter-ledger/charter/internal/system"
)

// govChain is a generated chain whose receipts carry the governance
// contract's logs, with what its system state says of each block.
type govChain struct {
	*chain
	sys []chaindata.BlockSystem
	// Proposals as the index must end with a SystemSource (state) and
	// without (logs only).
	wantState, wantLogs map[uint64]wantProposal
	votes               int
	roles               []uint64 // blocks of the RolesChanged logs
	usage               map[usageKey]usageSum
}

type wantProposal struct {
	Block                 uint64
	Action                uint8
	Org, Proposer, Memo   string
	Expires               uint64
	Status                string
	Decided, ActivatesAt  uint64
	Result                string
	ActionName, ClassName string
	TxHash                common.Hash
	CreatedLog            int
}

const govDayStart = 1_700_006_400 // a UTC midnight (19676 × 86400)

// genGovChain builds n+1 blocks. Organizations acme (admin a) and beta
// (admin b) govern; c, of no organization, only transfers. Every 10
// blocks a cycle: at phase 1 acme proposes (expires 5 blocks on) and
// beta proposes one nobody votes on (expires 3 on); at 2 acme votes yes;
// at 3 beta votes yes (passed, activating 2 blocks on: executed, or
// failed every other time), no (rejected), or acme cancels. Block times
// step 1000 s from 50 blocks before a UTC midnight.
func genGovChain(tb testing.TB, n int) *govChain {
	signer := types.LatestSignerForChainID(testChainID)
	keys := make([]*ecdsa.PrivateKey, 3)
	addrs := make([]common.Address, 3)
	for i := range keys {
		k, err := crypto.ToECDSA(crypto.Keccak256([]byte{'g', byte(i)}))
		if err != nil {
			tb.Fatal(err)
		}
		keys[i], addrs[i] = k, crypto.PubkeyToAddress(k.PublicKey)
	}
	orgOf := []string{"acme", "beta", ""}
	weight := []uint64{2, 1}
	nonces := make([]uint64, 3)
	g := system.Governance.Events
	mkLog := func(name string, topics []common.Hash, args ...any) *types.Log {
		ev := g[name]
		d, err := ev.Inputs.NonIndexed().Pack(args...)
		if err != nil {
			tb.Fatal(name, err)
		}
		return &types.Log{Address: system.GovernanceAddress, Topics: append([]common.Hash{ev.ID}, topics...), Data: d}
	}
	idT := func(id uint64) common.Hash { return common.BigToHash(new(big.Int).SetUint64(id)) }
	addrT := func(a common.Address) common.Hash { return common.BytesToHash(a[:]) }

	gc := &govChain{chain: &chain{}, wantState: map[uint64]wantProposal{}, wantLogs: map[uint64]wantProposal{}, usage: map[usageKey]usageSum{}}
	// state: what the chain's state says; logs: what the logs alone tell.
	state, logs := gc.wantState, gc.wantLogs
	var nextID uint64 = 1
	var cycleID, idleID uint64
	var parent common.Hash
	for num := 0; num <= n; num++ {
		type txSpec struct {
			from   int
			gov    bool
			sys    bool // to the registry
			logs   []*types.Log
			failed bool
		}
		var specs []txSpec
		touched := map[uint64]bool{}
		// Start of block: expiry and execution, in no transaction.
		for id, p := range state {
			if p.Status == "open" && p.Expires+1 == uint64(num) {
				p.Status, p.Decided = "expired", uint64(num)
				state[id], touched[id] = p, true
				lp := logs[id]
				lp.Status, lp.Decided = "expired", uint64(num)
				logs[id] = lp
			}
			if p.Status == "passed" && p.ActivatesAt == uint64(num) {
				if (num/10)%2 == 0 {
					p.Status = "executed"
				} else {
					p.Status, p.Result = "failed", "organization gone"
				}
				state[id], touched[id] = p, true
			}
		}
		cycle, phase := num/10, num%10
		if num > 0 {
			specs = append(specs, txSpec{from: 2}, txSpec{from: 2, failed: num%4 == 0})
			switch phase {
			case 1:
				cycleID, idleID = nextID, nextID+1
				nextID += 2
				action := uint8(system.ActSetParameter)
				if cycle%2 == 1 {
					action = uint8(system.ActFreeze)
				}
				memo := fmt.Sprintf("cycle %d", cycle)
				specs = append(specs, txSpec{from: 0, gov: true, logs: []*types.Log{mkLog("ProposalCreated", []common.Hash{idT(cycleID), addrT(addrs[0])}, action, "acme", uint64(num+5), memo)}})
				specs = append(specs, txSpec{from: 1, gov: true, logs: []*types.Log{mkLog("ProposalCreated", []common.Hash{idT(idleID), addrT(addrs[1])}, uint8(system.ActSetDefaultRoles), "beta", uint64(num+3), "idle")}})
				for _, x := range []struct {
					id      uint64
					from    int
					action  uint8
					expires uint64
					memo    string
				}{{cycleID, 0, action, uint64(num + 5), memo}, {idleID, 1, uint8(system.ActSetDefaultRoles), uint64(num + 3), "idle"}} {
					p := wantProposal{Block: uint64(num), Action: x.action, Org: orgOf[x.from], Proposer: hexAddr(addrs[x.from]), Memo: x.memo,
						Expires: x.expires, Status: "open", ActionName: system.Action(x.action).String(), ClassName: system.Action(x.action).Class().String()}
					state[x.id], logs[x.id], touched[x.id] = p, p, true
				}
			case 4:
				specs = append(specs, txSpec{from: 0, sys: true, logs: []*types.Log{roleLog(tb, addrs[2], "acme", uint32(cycle), addrs[0])}})
				gc.roles = append(gc.roles, uint64(num))
			case 2:
				specs = append(specs, txSpec{from: 0, gov: true, logs: []*types.Log{mkLog("VoteCast", []common.Hash{idT(cycleID), addrT(addrs[0])}, "acme", true, weight[0])}})
				gc.votes++
				touched[cycleID] = true
			case 3:
				p, lp := state[cycleID], logs[cycleID]
				switch cycle % 3 {
				case 0:
					at := uint64(num + 2)
					specs = append(specs, txSpec{from: 1, gov: true, logs: []*types.Log{
						mkLog("VoteCast", []common.Hash{idT(cycleID), addrT(addrs[1])}, "beta", true, weight[1]),
						mkLog("ProposalPassed", []common.Hash{idT(cycleID)}, at)}})
					gc.votes++
					p.Status, p.Decided, p.ActivatesAt = "passed", uint64(num), at
					lp.Status, lp.Decided, lp.ActivatesAt = "passed", uint64(num), at
				case 1:
					specs = append(specs, txSpec{from: 1, gov: true, logs: []*types.Log{
						mkLog("VoteCast", []common.Hash{idT(cycleID), addrT(addrs[1])}, "beta", false, weight[1]),
						mkLog("ProposalRejected", []common.Hash{idT(cycleID)})}})
					gc.votes++
					p.Status, p.Decided = "rejected", uint64(num)
					lp.Status, lp.Decided = "rejected", uint64(num)
				case 2:
					specs = append(specs, txSpec{from: 0, gov: true, logs: []*types.Log{mkLog("ProposalCancelled", []common.Hash{idT(cycleID)})}})
					p.Status, p.Decided = "cancelled", uint64(num)
					lp.Status, lp.Decided = "cancelled", uint64(num)
				}
				state[cycleID], logs[cycleID], touched[cycleID] = p, lp, true
			}
		}
		var txs types.Transactions
		var rs types.Receipts
		day := (govDayStart - 50*1000 + uint64(num)*1000) / 86400
		use := map[string]*chaindata.OrgUsage{}
		for i, s := range specs {
			to := addrs[(s.from+1)%3]
			if s.gov {
				to = system.GovernanceAddress
			}
			if s.sys {
				to = system.RegistryAddress
			}
			tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: testChainID, Nonce: nonces[s.from], GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2),
				Gas: 200000, To: &to, Value: big.NewInt(int64(num))}), signer, keys[s.from])
			if err != nil {
				tb.Fatal(err)
			}
			nonces[s.from]++
			r := &types.Receipt{Type: tx.Type(), Status: types.ReceiptStatusSuccessful, GasUsed: 21000 + uint64(i)*100 + uint64(len(s.logs))*60000, Logs: s.logs}
			stateBytes := uint64(32 * (1 + len(s.logs)))
			if s.failed {
				r.Status, r.Logs, stateBytes = types.ReceiptStatusFailed, nil, 0
			}
			r.CumulativeGasUsed = r.GasUsed
			if len(rs) > 0 {
				r.CumulativeGasUsed += rs[len(rs)-1].CumulativeGasUsed
			}
			r.Bloom = types.CreateBloom(r)
			txs, rs = append(txs, tx), append(rs, r)
			u := use[orgOf[s.from]]
			if u == nil {
				u = &chaindata.OrgUsage{Org: orgOf[s.from], Day: day}
				use[orgOf[s.from]] = u
			}
			u.Txs++
			u.Gas += r.GasUsed
			u.StateBytes += stateBytes
		}
		var bs chaindata.BlockSystem
		for _, o := range []string{"", "acme", "beta"} {
			if u := use[o]; u != nil {
				bs.Usage = append(bs.Usage, *u)
				k := usageKey{u.Day, o}
				sum, ok := gc.usage[k]
				if !ok {
					sum.first = uint64(num)
				}
				sum.txs, sum.gas, sum.stateBytes, sum.last = sum.txs+u.Txs, sum.gas+u.Gas, sum.stateBytes+u.StateBytes, uint64(num)
				gc.usage[k] = sum
			}
		}
		var ids []uint64
		for id := range touched {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			p := state[id]
			bs.Proposals = append(bs.Proposals, chaindata.ProposalState{ID: id, Status: p.Status, Decided: p.Decided, ActivatesAt: p.ActivatesAt, Result: p.Result})
		}
		gasUsed := uint64(0)
		if len(rs) > 0 {
			gasUsed = rs[len(rs)-1].CumulativeGasUsed
		}
		h := &types.Header{ParentHash: parent, Number: big.NewInt(int64(num)), Time: govDayStart - 50*1000 + uint64(num)*1000, GasLimit: 30_000_000,
			GasUsed: gasUsed, Difficulty: big.NewInt(0), Extra: []byte("gov")}
		b := types.NewBlock(h, &types.Body{Transactions: txs}, rs, trie.NewStackTrie(nil))
		logIndex := uint(0)
		for i, r := range rs {
			r.BlockHash, r.BlockNumber, r.TxHash, r.TransactionIndex = b.Hash(), b.Number(), txs[i].Hash(), uint(i)
			for _, l := range r.Logs {
				l.BlockHash, l.BlockNumber, l.TxHash, l.TxIndex, l.Index = b.Hash(), b.NumberU64(), txs[i].Hash(), uint(i), logIndex
				logIndex++
				if l.Topics[0] == g["ProposalCreated"].ID {
					id := new(big.Int).SetBytes(l.Topics[1][:]).Uint64()
					for _, m := range []map[uint64]wantProposal{state, logs} {
						p := m[id]
						p.TxHash, p.CreatedLog = txs[i].Hash(), int(l.Index)
						m[id] = p
					}
				}
			}
		}
		gc.blocks, gc.receipts = append(gc.blocks, b), append(gc.receipts, rs)
		gc.sys = append(gc.sys, bs)
		parent = b.Hash()
	}
	// Proposals still open at the end are not yet expired in either.
	return gc
}

func roleLog(tb testing.TB, account common.Address, org string, roles uint32, by common.Address) *types.Log {
	ev := system.Registry.Events["RolesChanged"]
	d, err := ev.Inputs.NonIndexed().Pack(org, roles)
	if err != nil {
		tb.Fatal(err)
	}
	return &types.Log{Address: system.RegistryAddress, Topics: []common.Hash{ev.ID, common.BytesToHash(account[:]), common.BytesToHash(by[:])}, Data: d}
}

// checkRoles checks system_roles_changed against the chain up to head.
func checkRoles(t *testing.T, db *sql.DB, gc *govChain, head uint64) {
	t.Helper()
	var want []uint64
	for _, b := range gc.roles {
		if b <= head {
			want = append(want, b)
		}
	}
	rows, err := db.Query(`SELECT block_number, account, org, roles, by FROM system_roles_changed ORDER BY block_number`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []uint64
	for rows.Next() {
		var b uint64
		var account, org, roles, by string
		if err := rows.Scan(&b, &account, &org, &roles, &by); err != nil {
			t.Fatal(err)
		}
		if org != "acme" || roles != fmt.Sprint((b/10)) || by != gc.wantState[1].Proposer || !strings.HasPrefix(account, "0x") {
			t.Fatalf("system_roles_changed at %d: %s %s %s %s", b, account, org, roles, by)
		}
		got = append(got, b)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("system_roles_changed at blocks %v, want %v", got, want)
	}
}

// sysSource is a fakeSource that is also a chaindata.SystemSource.
type sysSource struct {
	*fakeSource
	sys     []chaindata.BlockSystem
	noState uint64 // blocks below it have no state (0: all have)
}

func (s *sysSource) BlockSystem(n uint64) (chaindata.BlockSystem, error) {
	if n > s.head.Load() {
		return chaindata.BlockSystem{}, fmt.Errorf("no block %d", n)
	}
	if n < s.noState {
		return chaindata.BlockSystem{}, chaindata.ErrNoSystemState
	}
	return s.sys[n], nil
}

func readProposals(t *testing.T, db *sql.DB) map[uint64]wantProposal {
	t.Helper()
	rows, err := db.Query(`SELECT id, block_number, tx_hash, log_index, action, action_name, class, org, proposer, expires, memo, status,
		decided_block, activates_at, result FROM governance_proposals`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uint64]wantProposal{}
	for rows.Next() {
		var p wantProposal
		var id int64
		var txh string
		var decided, activates sql.NullInt64
		var result sql.NullString
		if err := rows.Scan(&id, &p.Block, &txh, &p.CreatedLog, &p.Action, &p.ActionName, &p.ClassName, &p.Org, &p.Proposer, &p.Expires, &p.Memo, &p.Status,
			&decided, &activates, &result); err != nil {
			t.Fatal(err)
		}
		p.TxHash = common.HexToHash(txh)
		p.Decided, p.ActivatesAt, p.Result = uint64(decided.Int64), uint64(activates.Int64), result.String
		out[uint64(id)] = p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantAt is what the index must hold after block head: proposals made up
// to head, with what happened to them up to head.
func (gc *govChain) wantAt(head uint64, withState bool) map[uint64]wantProposal {
	// Replay: statuses in the generator are final ones; recompute for head
	// by walking the per-block states (state) or the logs (no state).
	out := map[uint64]wantProposal{}
	final := gc.wantLogs
	if withState {
		final = gc.wantState
	}
	for id, p := range final {
		if p.Block > head {
			continue
		}
		q := p
		q.Status, q.Decided, q.ActivatesAt, q.Result = "open", 0, 0, ""
		if p.Decided != 0 && p.Decided <= head {
			q.Decided, q.ActivatesAt = p.Decided, p.ActivatesAt
			switch {
			case p.Status == "executed" || p.Status == "failed":
				q.Status = "passed"
				if p.ActivatesAt <= head {
					q.Status, q.Result = p.Status, p.Result
				}
			default:
				q.Status = p.Status
			}
		}
		out[id] = q
	}
	return out
}

func TestGovernanceAndUsage(t *testing.T) {
	gc := genGovChain(t, 85)
	backends(t, func(t *testing.T, db func(string) Config) {
		for _, mode := range []string{"state", "logs"} {
			t.Run(mode, func(t *testing.T) {
				var src chaindata.Source = newSource(gc.chain, 40)
				if mode == "state" {
					src = &sysSource{fakeSource: src.(*fakeSource), sys: gc.sys}
				}
				cfg := db("gov_" + mode)
				cfg.PollInterval = 5 * time.Millisecond
				ix := open(t, cfg, src)
				defer ix.Close()
				check := func(head uint64) {
					t.Helper()
					got, want := readProposals(t, ix.db), gc.wantAt(head, mode == "state")
					if !reflect.DeepEqual(got, want) {
						for id := range want {
							if !reflect.DeepEqual(got[id], want[id]) {
								t.Errorf("proposal %d at head %d:\n got %+v\nwant %+v", id, head, got[id], want[id])
							}
						}
						t.Fatalf("%d proposals, want %d", len(got), len(want))
					}
				}
				runUntil(t, ix, 40)
				check(40)
				src.(interface{ setHead(uint64) }).setHead(85)
				runUntil(t, ix, 85)
				check(85)
				checkRoles(t, ix.db, gc, 85)

				// Votes: one row per VoteCast log, equal to it.
				var votes int
				if err := ix.db.QueryRow(`SELECT count(*) FROM governance_votes`).Scan(&votes); err != nil || votes != gc.votes {
					t.Fatalf("%d votes (%v), want %d", votes, err, gc.votes)
				}
				var org, voter string
				var support bool
				var w int64
				if err := ix.db.QueryRow(`SELECT org, voter, support, weight FROM governance_votes WHERE proposal_id = 3 AND org = 'beta'`).Scan(&org, &voter, &support, &w); err != nil {
					t.Fatal(err)
				}
				if org != "beta" || support || w != 1 || voter != gc.wantState[2].Proposer {
					t.Fatalf("vote of beta on 3: %s %s %v %d", org, voter, support, w)
				}
				// Usage: equal to the state's per day and organization, or empty.
				got := readUsage(t, ix.db)
				want := gc.usage
				if mode == "logs" {
					want = map[usageKey]usageSum{}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("usage\n got %v\nwant %v", got, want)
				}
				if mode == "state" && len(got) < 4 {
					t.Fatalf("usage of %d days × organizations: the chain should cross a day", len(got))
				}
				var date string
				if err := ix.db.QueryRow(`SELECT date FROM usage ORDER BY day LIMIT 1`).Scan(&date); mode == "state" && (err != nil || date != "2023-11-14") {
					t.Fatalf("date %q (%v)", date, err)
				}
				if mode == "state" {
					// The state's values are in the table, from block 0.
					var from int64
					if err := ix.db.QueryRow(`SELECT from_block FROM table_coverage WHERE table_name = 'usage'`).Scan(&from); err != nil || from != 0 {
						t.Fatalf("usage covers from %d (%v)", from, err)
					}
				}
			})
		}
	})
}

func (s *fakeSource) setHead(n uint64) { s.head.Store(n) }

func readUsage(t *testing.T, db *sql.DB) map[usageKey]usageSum {
	t.Helper()
	rows, err := db.Query(`SELECT day, org, txs, gas, state_bytes, first_block, last_block FROM usage`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[usageKey]usageSum{}
	for rows.Next() {
		var k usageKey
		var s usageSum
		if err := rows.Scan(&k.day, &k.org, &s.txs, &s.gas, &s.stateBytes, &s.first, &s.last); err != nil {
			t.Fatal(err)
		}
		out[k] = s
	}
	return out
}

// A database indexed before the system tables existed gets governance
// from its logs and says usage starts after its checkpoint.
func TestSystemTablesOnOlderDatabase(t *testing.T) {
	gc := genGovChain(t, 60)
	backends(t, func(t *testing.T, db func(string) Config) {
		cfg := db("older")
		src := &sysSource{fakeSource: newSource(gc.chain, 30), sys: gc.sys}
		ix := open(t, cfg, src)
		runUntil(t, ix, 30)
		for _, s := range []string{`DROP TABLE governance_proposals`, `DROP TABLE governance_votes`, `DROP TABLE usage`, `DROP TABLE table_coverage`, `DROP TABLE system_roles_changed`} {
			if _, err := ix.db.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
		ix.Close()
		src.head.Store(60)
		ix = open(t, cfg, src)
		defer ix.Close()
		runUntil(t, ix, 60)
		got, want := readProposals(t, ix.db), gc.wantAt(60, true)
		for id, p := range want {
			// Executions are in no log: those before the tables existed stay passed.
			if (p.Status == "executed" || p.Status == "failed") && p.ActivatesAt <= 30 {
				p.Status, p.Result = "passed", ""
				want[id] = p
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("proposals\n got %+v\nwant %+v", got, want)
		}
		checkRoles(t, ix.db, gc, 60)
		var from int64
		if err := ix.db.QueryRow(`SELECT from_block FROM table_coverage WHERE table_name = 'usage'`).Scan(&from); err != nil || from != 31 {
			t.Fatalf("usage covers from %d (%v), want 31", from, err)
		}
		var firstBlock int64
		if err := ix.db.QueryRow(`SELECT min(first_block) FROM usage`).Scan(&firstBlock); err != nil || firstBlock != 31 {
			t.Fatalf("usage starts at block %d (%v)", firstBlock, err)
		}
	})
}

// Blocks whose state the source no longer holds add no usage; the others do.
func TestUsageWithoutState(t *testing.T) {
	gc := genGovChain(t, 30)
	backends(t, func(t *testing.T, db func(string) Config) {
		src := &sysSource{fakeSource: newSource(gc.chain, 30), sys: gc.sys, noState: 11}
		ix := open(t, db("nostate"), src)
		defer ix.Close()
		runUntil(t, ix, 30)
		var txs int64
		if err := ix.db.QueryRow(`SELECT sum(txs) FROM usage`).Scan(&txs); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, b := range gc.blocks[11:] {
			want += len(b.Transactions())
		}
		if txs != int64(want) {
			t.Fatalf("%d transactions in usage, want %d (blocks 11 to 30)", txs, want)
		}
	})
}

const govCrashChildEnv = "CHARTER_INDEX_GOV_CRASH_CHILD"

// TestGovCrashChild is the process TestGovernanceCrashResume kills.
func TestGovCrashChild(t *testing.T) {
	dsn := os.Getenv(govCrashChildEnv)
	if dsn == "" {
		t.Skip("run by TestGovernanceCrashResume")
	}
	gc := genGovChain(t, 150)
	src := &sysSource{fakeSource: newSource(gc.chain, 150), sys: gc.sys}
	src.delay = 2 * time.Millisecond
	cfg := Config{SQLitePath: dsn, BatchBlocks: 3}
	if strings.HasPrefix(dsn, "postgres://") {
		cfg = Config{PostgresURL: dsn, BatchBlocks: 3}
	}
	ix := open(t, cfg, src)
	ix.Run(context.Background())
}

// systemHash hashes the system tables' rows.
func systemHash(t *testing.T, db *sql.DB) string {
	t.Helper()
	h := sha256.New()
	for _, q := range []string{
		`SELECT id, status, decided_block, activates_at, result FROM governance_proposals ORDER BY id`,
		`SELECT proposal_id, org, block_number, log_index FROM governance_votes ORDER BY proposal_id, org`,
		`SELECT day, org, txs, gas, state_bytes, first_block, last_block FROM usage ORDER BY day, org`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					vals[i] = string(b)
				}
			}
			fmt.Fprintf(h, "%v\n", vals)
		}
		rows.Close()
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// Killed with SIGKILL mid-backfill, the index resumes with the system
// tables equal to a clean run's: usage sums are added exactly once, since
// they are written in the transaction of their blocks and the checkpoint.
func TestGovernanceCrashResume(t *testing.T) {
	gc := genGovChain(t, 150)
	backends(t, func(t *testing.T, db func(string) Config) {
		clean := open(t, db("govclean"), &sysSource{fakeSource: newSource(gc.chain, 150), sys: gc.sys})
		runUntil(t, clean, 150)
		want := systemHash(t, clean.db)
		if got := readUsage(t, clean.db); !reflect.DeepEqual(got, gc.usage) {
			t.Fatalf("clean usage\n got %v\nwant %v", got, gc.usage)
		}
		clean.Close()

		cfg := db("govcrash")
		dsn := cfg.SQLitePath + cfg.PostgresURL
		// The first run is stopped between batches (and makes the schema).
		first := open(t, cfg, &sysSource{fakeSource: newSource(gc.chain, 150), sys: gc.sys})
		runUntil(t, first, 20)
		first.Close()
		for round := 0; round < 2; round++ {
			cmd := exec.Command(os.Args[0], "-test.run=^TestGovCrashChild$", "-test.v")
			cmd.Env = append(os.Environ(), govCrashChildEnv+"="+dsn)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			ro := open(t, cfg, newSource(gc.chain, 150))
			start := ro.Indexed()
			waitFor(t, "the child to index some blocks", func() bool {
				var n int64
				ro.db.QueryRow(`SELECT block_number FROM checkpoint WHERE id = 1`).Scan(&n)
				return uint64(n) >= start+30
			})
			ro.Close()
			cmd.Process.Kill()
			cmd.Wait()
		}
		ix := open(t, cfg, &sysSource{fakeSource: newSource(gc.chain, 150), sys: gc.sys})
		defer ix.Close()
		if ix.Indexed() >= 150 {
			t.Fatalf("the child finished (%d) before it was killed", ix.Indexed())
		}
		t.Logf("resuming after block %d", ix.Indexed())
		runUntil(t, ix, 150)
		if got := systemHash(t, ix.db); got != want {
			t.Fatalf("after crashes the system tables differ from a clean run's: usage %v", readUsage(t, ix.db))
		}
	})
}

// A registered contract whose decoded table would take a system table's
// name gets its version appended.
func TestReservedTableNames(t *testing.T) {
	c := genChain(t, 10, 4, 0)
	backends(t, func(t *testing.T, db func(string) Config) {
		reg := &fakeContracts{}
		reg.register(chaindata.Contract{Name: "Governance", Version: 1, Address: tokenAddr, ABI: mustABI(`[
		 {"type":"event","name":"Votes","inputs":[{"name":"n","type":"uint256","indexed":false}]},
		 {"type":"event","name":"Transfer","inputs":[{"name":"from","type":"address","indexed":true},{"name":"to","type":"address","indexed":true},{"name":"value","type":"uint256","indexed":false}]}]`)})
		reg.register(chaindata.Contract{Name: "System", Version: 1, Address: common.HexToAddress("0x0c"), ABI: mustABI(`[
		 {"type":"event","name":"RolesChanged","inputs":[{"name":"n","type":"uint256","indexed":false}]}]`)})
		cfg := db("reserved")
		cfg.Contracts = reg
		ix := open(t, cfg, newSource(c, 10))
		defer ix.Close()
		runUntil(t, ix, 10)
		rows, err := ix.db.Query(`SELECT table_name FROM event_tables ORDER BY table_name`)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for rows.Next() {
			var n string
			rows.Scan(&n)
			names = append(names, n)
		}
		rows.Close()
		if want := []string{"governance_transfer", "governance_votes_v1", "system_roles_changed_v1"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("decoded tables %v, want %v", names, want)
		}
		var n int
		if err := ix.db.QueryRow(`SELECT count(*) FROM governance_transfer`).Scan(&n); err != nil || n == 0 {
			t.Fatalf("governance_transfer: %d rows (%v)", n, err)
		}
	})
}
