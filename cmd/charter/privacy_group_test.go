package main

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/system"
)

type groupOut struct {
	ID              common.Hash `json:"id"`
	PrivacyGroupID  string      `json:"privacyGroupId"`
	Name            string      `json:"name"`
	Description     string      `json:"description"`
	Creator         string      `json:"creator"`
	Org             string      `json:"org"`
	Members         []string    `json:"members"`
	InactiveMembers []string    `json:"inactiveMembers"`
	MembersHash     common.Hash `json:"membersHash"`
	Status          string      `json:"status"`
	Added           []string    `json:"added"`
	Removed         string      `json:"removed"`
	Deleted         bool        `json:"deleted"`
}

// A privacy group of the dev organization and a second one admitted by
// governance, through every subcommand, against a charter dev node.
func TestPrivacyGroupCLI(t *testing.T) {
	d := startDevNode(t)
	dir := t.TempDir()

	// Admit org2 with an admin of its own, and give it gas money.
	ca, err := identity.NewRootCA("org2", identity.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := filepath.Join(dir, "ca.crt")
	if err := identity.WriteCertFile(roots, ca.Cert); err != nil {
		t.Fatal(err)
	}
	org2Key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	org2Admin := crypto.PubkeyToAddress(org2Key.PublicKey)
	org2File := filepath.Join(dir, "org2-admin.key")
	if err := identity.SaveNodeKey(org2File, org2Key, nil); err != nil {
		t.Fatal(err)
	}
	var p proposeOut
	decodeJSON(t, mustRun(t, "gov", "propose", "add-organization", "--name", "org2", "--roots", roots, "--tier", "write",
		"--admin", org2Admin.Hex(), "--memo", "org2 joins", "--rpc", d.url, "--key", d.key, "--json"), &p)
	mustRun(t, "gov", "vote", itoa(p.Proposal), "yes", "--rpc", d.url, "--key", d.key)
	d.waitStatus(t, p.Proposal, "executed")
	mustRun(t, "send", "--to", org2Admin.Hex(), "--value", "1", "--rpc", d.url, "--key", d.key)

	rpcKey := []string{"--rpc", d.url, "--key", d.key}
	// create: the key's organization is a member without being named.
	var g groupOut
	decodeJSON(t, mustRun(t, append([]string{"privacy", "group", "create", "--name", "trade", "--description", "dev and org2",
		"--member", "org2", "--json"}, rpcKey...)...), &g)
	if g.ID == (common.Hash{}) || g.PrivacyGroupID != system.GroupIDBase64(g.ID) || g.Org != chain.DevOrg || g.Name != "trade" ||
		!slices.Equal(g.Members, []string{"dev", "org2"}) || g.MembersHash != system.MembersHash([]string{"dev", "org2"}) {
		t.Fatalf("create answered %+v", g)
	}
	id, b64 := g.ID.Hex(), g.PrivacyGroupID

	// show, by either form of the id.
	var shown groupOut
	decodeJSON(t, mustRun(t, "privacy", "group", "show", b64, "--rpc", d.url, "--json"), &shown)
	if shown.ID != g.ID || shown.Creator != chain.DevOrg || shown.Description != "dev and org2" || shown.Status != "active" ||
		!slices.Equal(shown.Members, g.Members) || shown.MembersHash != g.MembersHash || len(shown.InactiveMembers) != 0 {
		t.Fatalf("show answered %+v", shown)
	}
	text := mustRun(t, "privacy", "group", "show", id, "--rpc", d.url)
	for _, re := range []string{`(?m)^privacyGroupId\s+` + regexp.QuoteMeta(b64) + `$`, `(?m)^Members\s+dev, org2$`, `(?m)^Status\s+active$`,
		`(?m)^Members hash\s+` + g.MembersHash.Hex() + `$`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Fatalf("show does not match %s:\n%s", re, text)
		}
	}

	// list: the key's organization by default, or --org.
	var list []groupOut
	decodeJSON(t, mustRun(t, "privacy", "group", "list", "--rpc", d.url, "--key", d.key, "--json"), &list)
	if len(list) != 1 || list[0].ID != g.ID {
		t.Fatalf("list of dev: %+v", list)
	}
	if out := mustRun(t, "privacy", "group", "list", "--org", "org2", "--rpc", d.url); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(b64) + `\s+trade\s+dev\s+dev, org2\s+\d+$`).MatchString(out) {
		t.Fatalf("list of org2:\n%s", out)
	}

	// org2's admin takes org2 out; dev's admin adds it back.
	org2Args := []string{"--rpc", d.url, "--key", org2File}
	var rm groupOut
	decodeJSON(t, mustRun(t, append([]string{"privacy", "group", "remove", id, "org2", "--json"}, org2Args...)...), &rm)
	if rm.Org != "org2" || rm.Removed != "org2" || rm.Deleted || rm.MembersHash != system.MembersHash([]string{"dev"}) {
		t.Fatalf("remove answered %+v", rm)
	}
	if out := mustRun(t, "privacy", "group", "list", "--org", "org2", "--rpc", d.url); out != "organization org2 belongs to no privacy group\n" {
		t.Fatalf("list of org2 after its removal: %q", out)
	}
	mustFail(t, "execution reverted: organization org2 of "+org2Admin.Hex()+" is not a member of group "+id,
		append([]string{"privacy", "group", "delete", id}, org2Args...)...)
	if out := mustRun(t, append([]string{"privacy", "group", "add", b64, "org2"}, rpcKey...)...); out != "group "+id+": org2 added by dev\n" {
		t.Fatalf("add printed %q", out)
	}

	// A group created with its own id; removing its last member deletes it.
	own := "0x" + strings.Repeat("ab", 32)
	if out := mustRun(t, append([]string{"privacy", "group", "create", "--name", "solo", "--id", own}, rpcKey...)...); !strings.HasPrefix(out, "group "+own+" (privacyGroupId ") {
		t.Fatalf("create --id printed %q", out)
	}
	if out := mustRun(t, append([]string{"privacy", "group", "remove", own, "dev"}, rpcKey...)...); out != "group "+own+": dev removed by dev; it had no other member and is deleted\n" {
		t.Fatalf("remove of the last member printed %q", out)
	}

	// delete the first group: shown as deleted, listed no more.
	if out := mustRun(t, append([]string{"privacy", "group", "delete", id}, org2Args...)...); out != "group "+id+" deleted by org2\n" {
		t.Fatalf("delete printed %q", out)
	}
	decodeJSON(t, mustRun(t, "privacy", "group", "show", id, "--rpc", d.url, "--json"), &shown)
	if shown.Status != "deleted" || !slices.Equal(shown.Members, []string{"dev", "org2"}) {
		t.Fatalf("deleted group: %+v", shown)
	}
	decodeJSON(t, mustRun(t, "privacy", "group", "list", "--org", "dev", "--rpc", d.url, "--json"), &list)
	if len(list) != 0 {
		t.Fatalf("list after the deletion: %+v", list)
	}

	// Refusals: one line each, and the ones the arguments alone decide
	// send nothing.
	ctx := context.Background()
	nonce, err := d.client.NonceAt(ctx, d.accts[0].Address, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		want string
		args []string
	}{
		{"charter privacy: execution reverted: organization nope is not in the registry", append([]string{"privacy", "group", "create", "--name", "x", "--member", "nope"}, rpcKey...)},
		{"charter privacy: execution reverted: group " + own + " exists already", append([]string{"privacy", "group", "create", "--name", "x", "--id", own}, rpcKey...)},
		{"charter privacy: execution reverted: group " + id + " is deleted", append([]string{"privacy", "group", "add", id, "org2"}, rpcKey...)},
		{"charter privacy: group name of 65 bytes, at most 64", append([]string{"privacy", "group", "create", "--name", strings.Repeat("n", 65)}, rpcKey...)},
		{"charter privacy: --member: organization org2 listed twice", append([]string{"privacy", "group", "create", "--name", "x", "--member", "org2,org2"}, rpcKey...)},
		{"charter privacy: --id: the zero id asks the registry to derive one", append([]string{"privacy", "group", "create", "--name", "x", "--id", common.Hash{}.Hex()}, rpcKey...)},
		{`charter privacy: group id "0x12": want 0x and 64 hex digits, or 44 characters of base64`, []string{"privacy", "group", "show", "0x12", "--rpc", d.url}},
		{"charter privacy: no privacy group " + common.Hash{1}.Hex(), []string{"privacy", "group", "show", common.Hash{1}.Hex(), "--rpc", d.url}},
		{`charter privacy: organization "nope" is not in the registry`, []string{"privacy", "group", "list", "--org", "nope", "--rpc", d.url}},
		{"charter privacy: give --org, or --key", []string{"privacy", "group", "list", "--rpc", d.url}},
		{"charter privacy: --key is required", []string{"privacy", "group", "delete", id, "--rpc", d.url}},
		{"charter privacy: remove one organization at a time", append([]string{"privacy", "group", "remove", id, "dev,org2"}, rpcKey...)},
		{"charter privacy: missing arguments; usage: charter privacy group add ID ORG", append([]string{"privacy", "group", "add", id}, rpcKey...)},
		{`charter privacy: unknown subcommand "rename"`, []string{"privacy", "group", "rename"}},
	}
	for _, c := range cases {
		if line := mustFail(t, c.want, c.args...); !strings.HasPrefix(line, c.want) {
			t.Errorf("charter %s: stderr %q, want it to start with %q", strings.Join(c.args, " "), line, c.want)
		}
	}
	if after, err := d.client.NonceAt(ctx, d.accts[0].Address, nil); err != nil || after != nonce {
		t.Fatalf("admin nonce %d then %d (%v): a refused command sent a transaction", nonce, after, err)
	}
}
