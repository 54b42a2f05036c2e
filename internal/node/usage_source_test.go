package node

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
)

// TestIndexGovernanceAndUsageOfANode runs a development node with an
// index: a proposal voted and executed shows in governance_proposals and
// governance_votes with the state's status, and the usage table equals
// the system state's usage per organization and day, for the development
// organization and for an account of none, a failed transaction included.
func TestIndexGovernanceAndUsageOfANode(t *testing.T) {
	tn := startNodeWith(t, t.TempDir(), func(c *Config) { c.Index = &IndexConfig{} })
	admin := tn.accts[0]
	// An account of no organization (the development chain's default
	// roles let it send), funded by the admin.
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	loner := crypto.PubkeyToAddress(key.PublicKey)
	if r, err := sendTx(t, tn.client, admin.Key, loner, big.NewInt(1e18), nil); err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("fund: %v", err)
	}
	sendOK(t, "transfer of no organization", tn.client, key, common.Address{9}, nil)
	sendOK(t, "transfer", tn.client, tn.accts[1].Key, common.Address{9}, nil)
	// The admin takes the account into its organization: from then on its
	// transactions count as the organization's.
	setRoles, err := system.Registry.Pack("setAccountRoles", loner, uint32(system.RoleRead|system.RoleWrite))
	if err != nil {
		t.Fatal(err)
	}
	sendOK(t, "set roles", tn.client, admin.Key, system.RegistryAddress, setRoles)
	sendOK(t, "transfer of the organization", tn.client, key, common.Address{9}, nil)

	id := propose(t, tn.client, admin.Key, system.ActSetParameter, system.ParamMaxTxBytes, big.NewInt(65536))
	sendOK(t, "vote", tn.client, admin.Key, system.GovernanceAddress, govCall(t, "vote", id, true))
	// A vote on a proposal that is no longer open reverts: metered, with no state written.
	if r, err := sendTx(t, tn.client, admin.Key, system.GovernanceAddress, nil, govCall(t, "vote", id, true)); err != nil || r.Status != types.ReceiptStatusFailed {
		t.Fatalf("a second vote: %v, want a failed receipt", err)
	}
	waitUntil(t, 10*time.Second, "the proposal executed", func() bool { return proposalStatus(t, tn.Node, id) == system.ProposalExecuted })
	head := tn.ledger.Head().Number.Uint64()
	waitUntil(t, 10*time.Second, "the index at the head", func() bool { return tn.Index().Indexed() >= head })
	at := tn.Index().Indexed()
	b := tn.ledger.BlockByNumber(at)
	st, err := tn.ledger.StateAt(b.Root())
	if err != nil {
		t.Fatal(err)
	}
	sys := system.Read(st)
	p, _ := sys.Proposal(id)

	query := func(q string, args ...any) [][]any {
		t.Helper()
		_, rows, err := tn.Index().Query(t.Context(), q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return rows
	}
	num := func(v any) uint64 {
		switch x := v.(type) {
		case int64:
			return uint64(x)
		case string:
			var n uint64
			fmt.Sscan(x, &n)
			return n
		}
		t.Fatalf("not a number: %T %v", v, v)
		return 0
	}

	rows := query(`SELECT status, action_name, class, org, proposer, decided_block, activates_at, memo FROM governance_proposals WHERE id = ?`, int64(id))
	if len(rows) != 1 {
		t.Fatalf("proposal %d: %v", id, rows)
	}
	r := rows[0]
	if r[0] != "executed" || r[1] != "SetParameter" || r[2] != "parameters" || r[3] != chain.DevOrg ||
		r[4] != strings.ToLower(admin.Address.Hex()) || num(r[5]) != p.Decided || num(r[6]) != p.ActivatesAt || r[7] != "test" {
		t.Fatalf("proposal row %v; state: %+v", r, p)
	}
	rows = query(`SELECT org, voter, support, weight FROM governance_votes WHERE proposal_id = ?`, int64(id))
	if len(rows) != 1 || rows[0][0] != chain.DevOrg || rows[0][1] != strings.ToLower(admin.Address.Hex()) || num(rows[0][3]) != p.Votes[0].Weight {
		t.Fatalf("votes %v; state: %+v", rows, p.Votes)
	}

	rows = query(`SELECT account, org, roles, by FROM system_roles_changed`)
	if len(rows) != 1 || rows[0][0] != strings.ToLower(loner.Hex()) || rows[0][1] != chain.DevOrg || rows[0][2] != "3" || rows[0][3] != strings.ToLower(admin.Address.Hex()) {
		t.Fatalf("system_roles_changed %v", rows)
	}

	// Usage: every row equals the state's, and every organization the
	// state has usage for on those days has a row.
	days := map[uint64]bool{b.Time() / 86400: true}
	got := map[string]system.Usage{}
	for _, r := range query(`SELECT day, org, txs, gas, state_bytes FROM usage`) {
		day := num(r[0])
		days[day] = true
		got[fmt.Sprint(day, "/", r[1])] = system.Usage{Txs: num(r[2]), Gas: num(r[3]), StateBytes: num(r[4])}
	}
	want := map[string]system.Usage{}
	for day := range days {
		for _, o := range append([]string{""}, sys.OrgNames()...) {
			if u := sys.Usage(o, day); u != (system.Usage{}) {
				want[fmt.Sprint(day, "/", o)] = u
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("usage table %v, state %v", got, want)
	}
	txs := map[string]uint64{}
	for k, u := range got {
		txs[k[strings.IndexByte(k, '/')+1:]] += u.Txs
	}
	if txs[""] != 1 || txs[chain.DevOrg] < 7 {
		t.Fatalf("usage %v: want one transaction of no organization and at least seven of %s", got, chain.DevOrg)
	}
}
