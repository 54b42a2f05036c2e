package chain

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/identity"
)

func rootPEM(t *testing.T, org string) string {
	t.Helper()
	ca, err := identity.NewRootCA(org, identity.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(identity.EncodeCertsPEM(ca.Cert))
}

func TestOrganizationsRoundTrip(t *testing.T) {
	root := rootPEM(t, "bank")
	doc, _ := json.Marshal(map[string]any{
		"config": map[string]any{"chainId": 5},
		"organizations": []map[string]any{
			{"name": "bank", "roots": []string{root}, "tier": "validate"},
			{"name": "regulator", "roots": []string{root}, "tier": "read", "roles": []string{"auditor"}},
		},
	})
	spec, err := ParseSpec(doc)
	if err != nil {
		t.Fatal(err)
	}
	data, err := spec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSpec(data)
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	if len(again.Organizations) != 2 || again.Org("regulator") == nil || again.Org("regulator").Roles[0] != "auditor" ||
		again.Org("bank").Roots[0] != root || again.Org("nobody") != nil {
		t.Fatalf("organizations lost in the round trip: %+v", again.Organizations)
	}
}

func TestOrganizationErrorsNameTheField(t *testing.T) {
	root := rootPEM(t, "bank")
	leaf := func() string {
		ca, _ := identity.NewRootCA("bank", identity.CAOptions{})
		cert, _, err := ca.IssueNode("n0", nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return string(identity.EncodeCertsPEM(cert))
	}()
	cases := []struct {
		orgs  []map[string]any
		field string
	}{
		{[]map[string]any{{"name": "", "roots": []string{root}}}, "organizations[0].name"},
		{[]map[string]any{{"name": strings.Repeat("x", 65), "roots": []string{root}}}, "organizations[0].name"},
		{[]map[string]any{{"name": "a", "roots": []string{root}}, {"name": "a", "roots": []string{root}}}, "organizations[1].name"},
		{[]map[string]any{{"name": "a"}}, "organizations[0].roots"},
		{[]map[string]any{{"name": "a", "roots": []string{"not pem"}}}, "organizations[0].roots[0]"},
		{[]map[string]any{{"name": "a", "roots": []string{root, leaf}}}, "organizations[0].roots[1]"},
		{[]map[string]any{{"name": "a", "roots": []string{root + "junk"}}}, "organizations[0].roots[0]"},
		{[]map[string]any{{"name": "a", "roots": []string{root}, "tier": "admin"}}, "organizations[0].tier"},
		{[]map[string]any{{"name": "a", "roots": []string{root}, "roles": []string{" "}}}, "organizations[0].roles[0]"},
		{[]map[string]any{{"name": "a", "roots": []string{root}, "colour": "red"}}, "unknown field"},
	}
	for _, c := range cases {
		// A network engine: only a development (solo) chain's organizations may have no roots.
		doc, _ := json.Marshal(map[string]any{"config": map[string]any{"chainId": 5}, "organizations": c.orgs,
			"consensus": map[string]any{"engine": "raft", "validators": []string{"0x0000000000000000000000000000000000000001"}}})
		_, err := ParseSpec(doc)
		if err == nil || !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%v: err = %v, want one naming %q", c.orgs, err, c.field)
		}
	}
}
