package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestMembersAndOrganization(t *testing.T) {
	h := newHarness(t, nil)
	var m Members
	h.get("/api/v1/members").want(t, http.StatusOK).decode(t, &m)
	if m.Height != 0 || len(m.Organizations) != 2 {
		t.Fatalf("members: %+v", m)
	}
	dev, bank := m.Organizations[0], m.Organizations[1]
	if dev.Name != devOrg || dev.Tier != "validate" || dev.Status != "active" || dev.Weight != 1 || len(dev.Nodes) != 0 {
		t.Fatalf("dev: %+v", dev)
	}
	if bank.Name != bankOrg || bank.Tier != "write" || bank.Weight != 2 || len(bank.Nodes) != 1 ||
		bank.Nodes[0].ID != bankNode.Hex() || !bank.Nodes[0].Validator || bank.Nodes[0].Revoked {
		t.Fatalf("bank: %+v", bank)
	}
	if strings.Join(m.Validators, ",") != bankNode.Hex() {
		t.Fatalf("validators %v", m.Validators)
	}

	h.f.propose(t, "maxOpenProposals", 32)
	var org OrganizationDetail
	h.get("/api/v1/members/"+devOrg).want(t, http.StatusOK).decode(t, &org)
	if org.Name != devOrg || org.Height != 1 || len(org.Accounts) != len(h.f.spec.Governance.Accounts)-1 ||
		len(org.OpenProposals) != 1 || org.OpenProposals[0] != 1 {
		t.Fatalf("dev detail: %+v", org)
	}
	if a := org.Accounts[0]; a.Address != h.f.dev[0].Address.Hex() || strings.Join(a.Roles, ",") != "read,write,deploy,admin" || a.Frozen {
		t.Fatalf("dev account 0: %+v", a)
	}
	var b OrganizationDetail
	h.get("/api/v1/members/"+bankOrg).want(t, http.StatusOK).decode(t, &b)
	if len(b.Accounts) != 1 || b.Accounts[0].Address != bankWriter.Hex() || len(b.OpenProposals) != 0 {
		t.Fatalf("bank detail: %+v", b)
	}
	h.get("/api/v1/members/nobody").wantProblem(t, http.StatusNotFound, `no organization "nobody"`, "org")
	h.get("/api/v1/members/"+strings.Repeat("x", 65)).wantProblem(t, http.StatusBadRequest, "org: want an organization's name", "org")
}

func TestProposalsPageNewestFirstAcrossPages(t *testing.T) {
	h := newHarness(t, nil)
	var empty page[Proposal]
	h.get("/api/v1/governance/proposals").want(t, http.StatusOK).decode(t, &empty)
	if len(empty.Items) != 0 || empty.Next != "" {
		t.Fatalf("no proposals: %+v", empty)
	}
	for i := 1; i <= 23; i++ {
		h.f.propose(t, "maxOpenProposals", int64(16+i))
	}
	var ids []uint64
	path := "/api/v1/governance/proposals?limit=10"
	for pages := 0; ; pages++ {
		if pages == 4 {
			t.Fatal("more than 3 pages")
		}
		r := h.get(path).want(t, http.StatusOK)
		var pg page[Proposal]
		r.decode(t, &pg)
		for _, p := range pg.Items {
			ids = append(ids, p.ID)
		}
		if pg.Next == "" {
			break
		}
		if want := fmt.Sprintf(`</api/v1/governance/proposals?cursor=%s&limit=10>; rel="next"`, pg.Next); r.header.Get("Link") != want {
			t.Fatalf("Link %q, want %q", r.header.Get("Link"), want)
		}
		path = "/api/v1/governance/proposals?limit=10&cursor=" + pg.Next
	}
	if len(ids) != 23 || ids[0] != 23 || ids[22] != 1 {
		t.Fatalf("ids %v", ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]-1 {
			t.Fatalf("ids %v not newest first without gaps", ids)
		}
	}

	var p Proposal
	h.get("/api/v1/governance/proposals/5").want(t, http.StatusOK).decode(t, &p)
	if p.ID != 5 || p.Action != "SetParameter" || p.Class != "parameters" || p.Status != "open" || p.Org != devOrg ||
		p.Proposer != h.f.dev[0].Address.Hex() || p.Memo != "maxOpenProposals to 21" || p.Created != 5 || p.TotalWeight != 3 || p.ThresholdBps == 0 {
		t.Fatalf("proposal 5: %+v", p)
	}
	if string(p.Args) != `{"name":"maxOpenProposals","value":"21"}` {
		t.Fatalf("proposal 5 args %s", p.Args)
	}
	h.get("/api/v1/governance/proposals/24").wantProblem(t, http.StatusNotFound, "no proposal 24 (there are 23)", "id")
	h.get("/api/v1/governance/proposals/x").wantProblem(t, http.StatusBadRequest, "id: not a decimal number", "id")
	h.get("/api/v1/governance/proposals?cursor="+encodeCursor("blocks", 3)).wantProblem(t, http.StatusBadRequest, "cursor: not a cursor of this list", "cursor")
}
