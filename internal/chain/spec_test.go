package chain

import (
	"errors"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/privacy"
)

func TestDevAccountsMatchTheWellKnownKeys(t *testing.T) {
	accts, err := DevAccounts(DevAccountCount)
	if err != nil {
		t.Fatal(err)
	}
	// The addresses every Hardhat and Anvil user knows.
	want := map[int]string{
		0:  "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
		1:  "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
		19: "0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199",
	}
	for i, addr := range want {
		if accts[i].Address != common.HexToAddress(addr) {
			t.Errorf("account %d = %s, want %s", i, accts[i].Address, addr)
		}
	}
}

func TestParseSpecDefaultsAndForks(t *testing.T) {
	spec, err := ParseSpec([]byte(`{"config":{"chainId":7},"alloc":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	if spec.ChainID() != 7 || uint64(spec.GasLimit) != DefaultGasLimit || spec.Consensus.Engine != "solo" {
		t.Fatalf("defaults not filled: %+v", spec)
	}
	if !spec.Config.IsOsaka(common.Big0, 0) || !spec.Config.IsLondon(common.Big0) {
		t.Fatal("forks through Osaka must be active at genesis")
	}
	if spec.PrivacyScheme() != privacy.SchemeHybrid {
		t.Fatalf("privacy envelope scheme %s by default, want hybrid", spec.PrivacyScheme())
	}
	for _, sc := range privacy.Schemes {
		x, err := ParseSpec([]byte(`{"config":{"chainId":7},"alloc":{},"privacyEnvelope":"` + sc.String() + `"}`))
		if err != nil || x.PrivacyScheme() != sc {
			t.Fatalf("privacyEnvelope %s: %v", sc, err)
		}
	}
	h := spec.GenesisHeader(common.Hash{})
	if h.BaseFee == nil || h.WithdrawalsHash == nil || h.ExcessBlobGas == nil || h.RequestsHash == nil {
		t.Fatal("genesis header lacks fork fields")
	}
}

func TestParseSpecErrorsNameTheField(t *testing.T) {
	cases := []struct{ doc, field string }{
		{`{"alloc":{}}`, "config.chainId"},
		{`{"config":{"chainId":0}}`, "config.chainId"},
		{`{"config":{"chainId":1},"gasLimit":10}`, "gasLimit"},
		{`{"config":{"chainId":1},"txGasLimit":99999999999}`, "txGasLimit"},
		{`{"config":{"chainId":1},"consensus":{"engine":"pow"}}`, "consensus.engine"},
		{`{"config":{"chainId":1},"consensus":{"engine":"bft"}}`, "consensus.validators"},
		{`{"config":{"chainId":1},"blockTimeMs":1}`, "blockTimeMs"},
		{`{"config":{"chainId":1},"privacyEnvelope":"mlkem"}`, "privacyEnvelope"},
		{`{"config":{"chainId":1},"gasLimt":1}`, "unknown field"},
		{`{"config":{"chainId":1}} {}`, "trailing data"},
		{`not json`, "invalid"},
	}
	for _, c := range cases {
		_, err := ParseSpec([]byte(c.doc))
		if err == nil || !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want one naming %q", c.doc, err, c.field)
		}
	}
}

func TestSpecRoundTrip(t *testing.T) {
	spec, err := DevSpec(1337, 1000)
	if err != nil {
		t.Fatal(err)
	}
	data, err := spec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseSpec(data)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, data)
	}
	if len(again.Alloc) != DevAccountCount || again.ChainID() != 1337 {
		t.Fatal("round trip lost data")
	}
}
