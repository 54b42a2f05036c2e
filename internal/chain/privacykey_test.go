package chain

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/charter-ledger/charter/internal/privacy"
)

func privacyPub(t *testing.T) *privacy.PublicKey {
	t.Helper()
	k, err := privacy.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// TestGenesisPrivacyKeys: organizations' privacyKey and privacyKem reach
// the registry's genesis and survive a round trip; an organization may
// have none.
func TestGenesisPrivacyKeys(t *testing.T) {
	root := rootPEM(t, "bank")
	pub := privacyPub(t)
	doc, _ := json.Marshal(map[string]any{
		"config": map[string]any{"chainId": 5},
		"organizations": []map[string]any{
			{"name": "bank", "roots": []string{root}, "privacyKey": pub.Identity().String(), "privacyKem": pub.KEMString()},
			{"name": "shop", "roots": []string{root}},
		},
	})
	spec, err := ParseSpec(doc)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := spec.Marshal()
	if spec, err = ParseSpec(data); err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	if strings.Count(string(data), `"privacyKey"`) != 1 {
		t.Fatalf("the genesis writes privacyKey for an organization without one:\n%s", data)
	}
	g, err := spec.SystemGenesis()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.PrivacyKeys["bank"], pub.Bytes()) || len(g.PrivacyKeys) != 1 {
		t.Fatalf("registry genesis keys %d, bank's equal: %v", len(g.PrivacyKeys), bytes.Equal(g.PrivacyKeys["bank"], pub.Bytes()))
	}
}

// TestGenesisPrivacyKeyErrorsNameTheField: half a key, a malformed one,
// and one key for two organizations are refused, naming the field.
func TestGenesisPrivacyKeyErrorsNameTheField(t *testing.T) {
	root := rootPEM(t, "bank")
	pub, other := privacyPub(t), privacyPub(t)
	id, kem := pub.Identity().String(), pub.KEMString()
	for _, c := range []struct {
		name       string
		bank, shop map[string]any
		want       string
	}{
		{"key without kem", map[string]any{"privacyKey": id}, nil, "organizations[0].privacyKem: required with privacyKey"},
		{"kem without key", map[string]any{"privacyKem": kem}, nil, "organizations[0].privacyKey: required with privacyKem"},
		{"short identity", map[string]any{"privacyKey": id[:40], "privacyKem": kem}, nil,
			"organizations[0].privacyKey: invalid privacy identity: \"" + id[:40] + "\" is 40 characters, want 44"},
		{"short kem", map[string]any{"privacyKey": id, "privacyKem": kem[:100]}, nil,
			"organizations[0].privacyKem: invalid privacy public key: ML-KEM-768 key of 75 bytes, want 1184"},
		{"another organization's kem", map[string]any{"privacyKey": strings.Repeat("A", 43) + "=", "privacyKem": other.KEMString()}, nil,
			"organizations[0].privacyKem: invalid privacy public key: X25519 part is a point of small order"},
		{"shared", map[string]any{"privacyKey": id, "privacyKem": kem}, map[string]any{"privacyKey": id, "privacyKem": other.KEMString()},
			"organizations[1].privacyKey: the key of organizations[0] already"},
	} {
		bank := map[string]any{"name": "bank", "roots": []string{root}}
		shop := map[string]any{"name": "shop", "roots": []string{root}}
		for k, v := range c.bank {
			bank[k] = v
		}
		for k, v := range c.shop {
			shop[k] = v
		}
		doc, _ := json.Marshal(map[string]any{"config": map[string]any{"chainId": 5}, "organizations": []any{bank, shop}})
		_, err := ParseSpec(doc)
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}
