package main

import (
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/chain"
)

// deploy creates a contract of two bytes of code (STOP and tag) from
// development account 1 and waits for it.
func (d *devNode) deploy(t *testing.T, tag byte) common.Address {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	acct := d.accts[1]
	nonce, err := d.client.PendingNonceAt(ctx, acct.Address)
	if err != nil {
		t.Fatal(err)
	}
	head, err := d.client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	initCode := []byte{0x60, 0x02, 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, 0x02, 0x60, 0x00, 0xf3, 0x00, tag}
	id := big.NewInt(int64(chain.DefaultChainID))
	tx, err := types.SignNewTx(acct.Key, types.LatestSignerForChainID(id), &types.DynamicFeeTx{ChainID: id, Nonce: nonce, Gas: 200_000,
		GasFeeCap: new(big.Int).Mul(head.BaseFee, big.NewInt(2)), GasTipCap: new(big.Int), Data: initCode})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := d.client.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if r.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("deployment %s failed", tx.Hash().Hex())
			}
			return r.ContractAddress
		} else if !errors.Is(err, ethereum.NotFound) {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for deployment %s within the deadline", tx.Hash().Hex())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestContractRegistryCLI: register, list, show and abi; a second
// registration of the name refused; an upgrade by proposal and vote; a
// deprecation by gov propose.
func TestContractRegistryCLI(t *testing.T) {
	d := startDevNode(t)
	dir := t.TempDir()
	doc1, doc2 := []byte(`[{"type":"function","name":"a","inputs":[],"outputs":[]}]`), []byte(`[{"type":"function","name":"b","inputs":[],"outputs":[]}]`)
	abi1, abi2 := filepath.Join(dir, "a1.json"), filepath.Join(dir, "a2.json")
	if err := os.WriteFile(abi1, doc1, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(abi2, doc2, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, 24*1024+1), 0o600); err != nil {
		t.Fatal(err)
	}
	c1, c2 := d.deploy(t, 1), d.deploy(t, 2)
	rpcKey := []string{"--rpc", d.url, "--key", d.key}

	if out := mustRun(t, "contract", "list", "--rpc", d.url); out != "no contracts registered\n" {
		t.Fatalf("list of none: %q", out)
	}
	var reg struct {
		Name    string         `json:"name"`
		Version uint64         `json:"version"`
		Address common.Address `json:"address"`
		Org     string         `json:"org"`
		ABIHash common.Hash    `json:"abiHash"`
	}
	decodeJSON(t, mustRun(t, append([]string{"contract", "register", "--name", "token", "--address", c1.Hex(), "--abi", abi1, "--json"}, rpcKey...)...), &reg)
	if reg.Name != "token" || reg.Version != 1 || reg.Address != c1 || reg.Org != chain.DevOrg || reg.ABIHash != crypto.Keccak256Hash(doc1) {
		t.Fatalf("register answered %+v", reg)
	}
	mustFail(t, "name token is registered already by organization "+chain.DevOrg,
		append([]string{"contract", "register", "--name", "token", "--address", c2.Hex(), "--abi", abi2}, rpcKey...)...)
	mustFail(t, "the registry keeps at most 24576", append([]string{"contract", "register", "--name", "big", "--address", c2.Hex(), "--abi", big}, rpcKey...)...)
	mustFail(t, "holds no code", append([]string{"contract", "register", "--name", "none", "--address", "0x00000000000000000000000000000000000000e1", "--abi", abi2}, rpcKey...)...)

	list := mustRun(t, "contract", "list", "--rpc", d.url)
	if !regexp.MustCompile(`(?m)^token\s+1\s+` + c1.Hex() + `\s+` + chain.DevOrg + `\s+no$`).MatchString(list) {
		t.Fatalf("list:\n%s", list)
	}
	if out := mustRun(t, "contract", "abi", "token", "--rpc", d.url); out != string(doc1)+"\n" {
		t.Fatalf("abi: %q", out)
	}

	// An upgrade is a proposal; the development organization's yes passes it.
	var p proposeOut
	decodeJSON(t, mustRun(t, append([]string{"contract", "upgrade", "--name", "token", "--address", c2.Hex(), "--abi", abi2, "--memo", "v2", "--json"}, rpcKey...)...), &p)
	if p.Action != "upgrade-contract" || p.Proposal == 0 {
		t.Fatalf("upgrade answered %+v", p)
	}
	mustRun(t, append([]string{"gov", "vote", itoa(p.Proposal), "yes"}, rpcKey...)...)
	d.waitStatus(t, p.Proposal, "executed")
	decodeJSON(t, mustRun(t, append([]string{"gov", "propose", "deprecate-contract", "--name", "token", "--version", "1", "--memo", "old", "--json"}, rpcKey...)...), &p)
	mustRun(t, append([]string{"gov", "vote", itoa(p.Proposal), "yes"}, rpcKey...)...)
	d.waitStatus(t, p.Proposal, "executed")

	var versions []struct {
		Version    uint64         `json:"version"`
		Address    common.Address `json:"address"`
		ABIHash    common.Hash    `json:"abiHash"`
		Deprecated bool           `json:"deprecated"`
	}
	decodeJSON(t, mustRun(t, "contract", "show", "token", "--rpc", d.url, "--json"), &versions)
	if len(versions) != 2 || versions[0].Address != c1 || !versions[0].Deprecated || versions[1].Version != 2 || versions[1].Address != c2 ||
		versions[1].Deprecated || versions[1].ABIHash != crypto.Keccak256Hash(doc2) {
		t.Fatalf("show: %+v", versions)
	}
	if out := mustRun(t, "contract", "show", "token", "--rpc", d.url); !strings.Contains(out, "Contract token of "+chain.DevOrg+", 2 version(s)") {
		t.Fatalf("show:\n%s", out)
	}
	if out := mustRun(t, "contract", "abi", "token", "--version", "1", "--rpc", d.url); out != string(doc1)+"\n" {
		t.Fatalf("abi --version 1: %q", out)
	}
	if out := mustRun(t, "contract", "abi", "token", "--rpc", d.url); out != string(doc2)+"\n" {
		t.Fatalf("abi of the newest: %q", out)
	}
	mustFail(t, "contract token has versions 1 to 2, not 3", "contract", "abi", "token", "--version", "3", "--rpc", d.url)
	mustFail(t, `no contract is registered as "nothing"`, "contract", "show", "nothing", "--rpc", d.url)
}
