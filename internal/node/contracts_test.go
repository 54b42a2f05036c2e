package node

import (
	"bytes"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/system"
)

// TestRegisteredContractByName deploys a contract, registers it in the
// contract registry, and finds it by name where the node's readers look:
// the registry view the indexer and streams use, and the REST gateway's
// contract calls by name.
func TestRegisteredContractByName(t *testing.T) {
	tn := startNode(t, t.TempDir())
	key := tn.accts[0].Key
	if _, ok := tn.contracts.ByName("answerer"); ok {
		t.Fatal("a fresh chain knows the name answerer")
	}
	before := tn.contracts.Generation()
	from := crypto.PubkeyToAddress(key.PublicKey)
	// Runtime code that returns 42 for any call; the init code copies it.
	runtime := common.FromHex("602a60005260206000f3")
	initCode := append(common.FromHex("600a600c600039600a6000f3"), runtime...)
	deploy := tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 0, Gas: 100000,
		GasFeeCap: big.NewInt(2e9), GasTipCap: big.NewInt(1), Data: initCode})
	if err := tn.client.SendTransaction(t.Context(), deploy); err != nil {
		t.Fatal(err)
	}
	rec := tn.waitReceipt(t, deploy.Hash())
	if rec.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("deploy failed: %+v", rec)
	}
	addr := crypto.CreateAddress(from, 0)
	doc := []byte(`[{"type":"function","name":"answer","inputs":[],"outputs":[{"name":"","type":"uint256"}],"stateMutability":"view"}]`)
	data, err := system.ContractRegistry.Pack("registerContract", "answerer", addr, doc, [32]byte(crypto.Keccak256Hash(doc)))
	if err != nil {
		t.Fatal(err)
	}
	reg := tn.sign(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, Gas: 2_000_000,
		GasFeeCap: big.NewInt(2e9), GasTipCap: big.NewInt(1), To: &system.ContractsAddress, Data: data})
	if err := tn.client.SendTransaction(t.Context(), reg); err != nil {
		t.Fatal(err)
	}
	if rec := tn.waitReceipt(t, reg.Hash()); rec.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("registerContract failed: %+v", rec)
	}
	waitUntil(t, 10*time.Second, "the registry view knows the name", func() bool {
		c, ok := tn.contracts.ByName("answerer")
		return ok && c.Address == addr && c.ABI != nil && c.Version == 1
	})
	if c, ok := tn.contracts.ByAddress(addr); !ok || c.Name != "answerer" || c.Org == "" {
		t.Fatalf("ByAddress(%s) = %+v, %v", addr, c, ok)
	}
	if tn.contracts.Generation() == before {
		t.Fatalf("generation did not change with the registration")
	}

	resp, err := http.Post("http://"+tn.RPCAddr()+"/api/v1/contracts/answerer/call/answer", "application/json", strings.NewReader(`{"args":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ReturnData hexutil.Bytes `json:"returnData"`
	}
	var raw bytes.Buffer
	if err := json.NewDecoder(bytes.NewReader(mustRead(t, resp, &raw))).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("call by name: %d %s (%v)", resp.StatusCode, raw.String(), err)
	}
	if new(big.Int).SetBytes(out.ReturnData).Int64() != 42 {
		t.Fatalf("call by name returned %x, want 42", out.ReturnData)
	}
}

func mustRead(t *testing.T, resp *http.Response, buf *bytes.Buffer) []byte {
	t.Helper()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
