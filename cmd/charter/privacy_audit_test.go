package main

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chain"
	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/node"
	"github.com/charter-ledger/charter/internal/system"
)

type auditOut struct {
	ID        common.Hash `json:"id"`
	Org       string      `json:"org"`
	Auditor   string      `json:"auditor"`
	From      *uint64     `json:"from"`
	Revoke    bool        `json:"revoke"`
	Effective bool        `json:"effective"`
	Purged    bool        `json:"purged"`
}

// Purge, auditor grants and the disclosure log, against a charter dev
// node: org2 audits a group of dev alone, so that dev's admin decides
// alone; a second group is purged by a governance proposal.
func TestPrivacyAuditCLI(t *testing.T) {
	d := startDevNode(t)
	dir := t.TempDir()
	rpcKey := []string{"--rpc", d.url, "--key", d.key}

	// org2 joins; its admin gets the auditor role, decided by both.
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
	decodeJSON(t, mustRun(t, append([]string{"gov", "propose", "add-organization", "--name", "org2", "--roots", roots, "--tier", "write",
		"--admin", org2Admin.Hex(), "--memo", "org2 joins", "--json"}, rpcKey...)...), &p)
	mustRun(t, "gov", "vote", itoa(p.Proposal), "yes", "--rpc", d.url, "--key", d.key)
	d.waitStatus(t, p.Proposal, "executed")
	mustRun(t, "send", "--to", org2Admin.Hex(), "--value", "1", "--rpc", d.url, "--key", d.key)
	decodeJSON(t, mustRun(t, append([]string{"gov", "propose", "grant-roles", "--account", org2Admin.Hex(), "--org", "org2",
		"--roles", "read,auditor", "--memo", "org2 audits", "--json"}, rpcKey...)...), &p)
	mustRun(t, "gov", "vote", itoa(p.Proposal), "yes", "--rpc", d.url, "--key", d.key)
	mustRun(t, "gov", "vote", itoa(p.Proposal), "yes", "--rpc", d.url, "--key", org2File)
	d.waitStatus(t, p.Proposal, "executed")

	var g groupOut
	decodeJSON(t, mustRun(t, append([]string{"privacy", "group", "create", "--name", "audited", "--json"}, rpcKey...)...), &g)
	id := g.ID.Hex()

	// Grant: dev is the only member, so its approval makes it effective.
	var a auditOut
	decodeJSON(t, mustRun(t, append([]string{"privacy", "disclose", g.PrivacyGroupID, "--org", "org2", "--from", "3", "--json"}, rpcKey...)...), &a)
	if a.ID != g.ID || a.Org != chain.DevOrg || a.Auditor != "org2" || a.From == nil || *a.From != 3 || a.Revoke || !a.Effective {
		t.Fatalf("disclose answered %+v", a)
	}

	// A member records two disclosures (a node's call; dev's admin may too).
	fs := newFlagSet("test", io.Discard)
	sf := addSendFlags(fs)
	if err := fs.Parse(rpcKey); err != nil {
		t.Fatal(err)
	}
	h1, h2 := crypto.Keccak256Hash([]byte("p1")), crypto.Keccak256Hash([]byte("p2"))
	s, err := sendRegistry(sf, "recordDisclosure", [32]byte(g.ID), "org2", [][32]byte{h1, h2})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(eventLogs(s.receipt, system.RegistryAddress, system.Registry.Events["Disclosed"].ID)); n != 2 {
		t.Fatalf("%d Disclosed events", n)
	}

	// The log, from the chain's events.
	var entries []auditEntry
	decodeJSON(t, mustRun(t, "privacy", "log", id, "--rpc", d.url, "--json"), &entries)
	var events []string
	for _, e := range entries {
		events = append(events, e.Event)
	}
	if !slices.Equal(events, []string{"AuditorChangeApproved", "AuditorGranted", "Disclosed", "Disclosed"}) {
		t.Fatalf("log events %v", events)
	}
	if e := entries[1]; e.Auditor != "org2" || e.From == nil || *e.From != 3 {
		t.Fatalf("grant entry %+v", e)
	}
	if e := entries[3]; e.Org != chain.DevOrg || e.Auditor != "org2" || e.PayloadHash != h2 || e.Tx != s.tx.Hash() || e.Block != s.receipt.BlockNumber.Uint64() {
		t.Fatalf("disclosure entry %+v", e)
	}
	text := mustRun(t, "privacy", "log", g.PrivacyGroupID, "--rpc", d.url)
	for _, re := range []string{`(?m)^\d+\s+AuditorGranted\s+-\s+org2\s+from height 3$`, `(?m)^\d+\s+Disclosed\s+dev\s+org2\s+payload ` + h1.Hex() + `$`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Fatalf("log does not match %s:\n%s", re, text)
		}
	}

	// Revoke, then purge: both by dev alone.
	if out := mustRun(t, append([]string{"privacy", "disclose", id, "--org", "org2", "--revoke"}, rpcKey...)...); out != "group "+id+": dev approved revoking org2's access; every member approved: in effect\n" {
		t.Fatalf("disclose --revoke printed %q", out)
	}
	decodeJSON(t, mustRun(t, append([]string{"privacy", "purge", id, "--json"}, rpcKey...)...), &a)
	if a.Org != chain.DevOrg || !a.Purged {
		t.Fatalf("purge answered %+v", a)
	}
	var shown groupOut
	decodeJSON(t, mustRun(t, "privacy", "group", "show", id, "--rpc", d.url, "--json"), &shown)
	if shown.Status != "purged" {
		t.Fatalf("group after the purge: %+v", shown)
	}
	decodeJSON(t, mustRun(t, "privacy", "log", id, "--rpc", d.url, "--json"), &entries)
	if n := len(entries); n != 8 || entries[5].Event != "AuditorRevoked" || entries[7].Event != "GroupPurged" || entries[7].Height == 0 {
		t.Fatalf("log after the purge: %+v", entries)
	}

	// A group of dev and org2: org2's approval alone does not purge it.
	decodeJSON(t, mustRun(t, append([]string{"privacy", "group", "create", "--name", "pair", "--member", "org2", "--json"}, rpcKey...)...), &g)
	if out := mustRun(t, "privacy", "purge", g.ID.Hex(), "--rpc", d.url, "--key", org2File); out != "group "+g.ID.Hex()+": org2 approved its purge; waiting for the other members' admins\n" {
		t.Fatalf("purge by one of two printed %q", out)
	}
	// Governance purges it at once (class privacy: both organizations).
	decodeJSON(t, mustRun(t, append([]string{"gov", "propose", "purge-group", "--group", g.PrivacyGroupID, "--memo", "court order", "--json"}, rpcKey...)...), &p)
	mustRun(t, "gov", "vote", itoa(p.Proposal), "yes", "--rpc", d.url, "--key", d.key)
	mustRun(t, "gov", "vote", itoa(p.Proposal), "yes", "--rpc", d.url, "--key", org2File)
	d.waitStatus(t, p.Proposal, "executed")
	decodeJSON(t, mustRun(t, "privacy", "group", "show", g.ID.Hex(), "--rpc", d.url, "--json"), &shown)
	if shown.Status != "purged" {
		t.Fatalf("group after PurgeGroup: %+v", shown)
	}

	// Refusals: one line each; those the arguments decide send nothing.
	ctx := context.Background()
	nonce, err := d.client.NonceAt(ctx, d.accts[0].Address, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		want string
		args []string
	}{
		{"charter privacy: execution reverted: group " + id + " is purged", append([]string{"privacy", "purge", id}, rpcKey...)},
		{"charter privacy: --org is required", append([]string{"privacy", "disclose", id, "--from", "1"}, rpcKey...)},
		{"charter privacy: --from is required", append([]string{"privacy", "disclose", id, "--org", "org2"}, rpcKey...)},
		{"charter privacy: --from and --revoke exclude each other", append([]string{"privacy", "disclose", id, "--org", "org2", "--from", "1", "--revoke"}, rpcKey...)},
		{`charter privacy: --from "x": want a block height`, append([]string{"privacy", "disclose", id, "--org", "org2", "--from", "x"}, rpcKey...)},
		{`charter privacy: group id "0x12"`, []string{"privacy", "log", "0x12", "--rpc", d.url}},
		{`charter privacy: --to-block "soon"`, []string{"privacy", "log", id, "--to-block", "soon", "--rpc", d.url}},
		{`charter privacy: unknown subcommand "audit"; want group, purge, disclose or log`, []string{"privacy", "audit"}},
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

// charter dev's node is the dev organization's node, funded.
func TestDevNodeGenesis(t *testing.T) {
	spec, err := chain.DevSpec(chain.DefaultChainID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	id := common.HexToAddress("0x00000000000000000000000000000000000000d1")
	devNodeGenesis(spec, id)
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := spec.SystemGenesis()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(g.Nodes, func(n system.Node) bool { return n.ID == id && n.Org == chain.DevOrg && !n.Validator }) {
		t.Fatalf("genesis nodes %+v", g.Nodes)
	}
	if b := spec.Alloc[id].Balance; b == nil || b.Cmp(node.NodeBalance) != 0 {
		t.Fatalf("dev node balance %v", b)
	}
}
