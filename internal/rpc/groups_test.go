package rpc

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/system"
)

// withGroup makes the fake's genesis hold a privacy group of the dev
// organization, created by development account 0, and returns it.
func withGroup(t *testing.T, f *fakeBackend) system.Group {
	t.Helper()
	st, err := state.New(f.blocks[0].Root(), f.sdb)
	if err != nil {
		t.Fatal(err)
	}
	g, err := system.Open(st, 0, 0).CreateGroup(testAccounts(t)[0].Address, common.Hash{}, "trade", "dev alone", []string{chain.DevOrg})
	if err != nil {
		t.Fatal(err)
	}
	root, err := st.Commit(f.spec.Config.Rules(common.Big0, true, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.blocks[0] = types.NewBlock(f.spec.GenesisHeader(root), &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	f.mu.Unlock()
	return g
}

func TestCharterGroups(t *testing.T) {
	f := newFake(t)
	g := withGroup(t, f)
	ts := serve(t, f, Config{})
	for _, id := range []string{g.ID.Hex(), system.GroupIDBase64(g.ID)} {
		var info GroupInfo
		if err := ts.http.Call(&info, "charter_group", id); err != nil {
			t.Fatal(err)
		}
		if info.ID != g.ID || info.PrivacyGroupID != system.GroupIDBase64(g.ID) || info.Name != "trade" || info.Description != "dev alone" ||
			info.Creator != chain.DevOrg || len(info.Members) != 1 || info.Members[0] != chain.DevOrg || info.MembersHash != system.MembersHash([]string{chain.DevOrg}) ||
			info.Status != "active" || info.InactiveMembers == nil || len(info.InactiveMembers) != 0 || info.Auditors == nil {
			t.Fatalf("charter_group(%s) = %+v", id, info)
		}
	}
	var list []GroupInfo
	if err := ts.http.Call(&list, "charter_groups", chain.DevOrg); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != g.ID {
		t.Fatalf("charter_groups(dev) = %+v", list)
	}
	var out any
	rpcError(t, ts.http.Call(&out, "charter_group", "0x12"), -32602, `group id "0x12": want 0x and 64 hex digits, or 44 characters of base64`)
	rpcError(t, ts.http.Call(&out, "charter_group", common.Hash{1}.Hex()), -32602, "no privacy group "+common.Hash{1}.Hex())
	rpcError(t, ts.http.Call(&out, "charter_groups", "nope"), -32602, `organization "nope" is not in the registry`)
}
