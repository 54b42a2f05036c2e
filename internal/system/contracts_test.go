package system

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/crypto"
)

// contractsForwarder is forwarder calling the contract registry.
var contractsForwarder = func() []byte {
	b := bytes.Clone(forwarder)
	i := bytes.Index(b, []byte{0x61, 0x04, 0x01})
	b[i+2] = 0x02
	return b
}()

// deployed puts code at a fresh address and returns it.
func (f *fixture) deployed(i int) common.Address {
	a := testAddr("contract", i)
	f.st.SetCode(a, []byte{0x60, 0x00, 0x60, 0x00, 0xf3, byte(i)}, tracing.CodeChangeUnspecified)
	return a
}

func abiDoc(n int) []byte {
	doc := []byte(`[{"type":"function","name":"f","inputs":[],"outputs":[]}]`)
	if n > len(doc) {
		doc = append(doc, bytes.Repeat([]byte{' '}, n-len(doc))...)
	}
	return doc
}

func (e *chainEVM) register(from common.Address, name string, addr common.Address, doc []byte, hash common.Hash) ([]byte, error) {
	e.t.Helper()
	return e.send(from, ContractsAddress, pack(e.t, &ContractRegistry, "registerContract", name, addr, doc, [32]byte(hash)), 0)
}

func (e *chainEVM) contractsView(method string, args ...any) []any {
	e.t.Helper()
	ret, err := e.send(testAddr("caller", 1), ContractsAddress, pack(e.t, &ContractRegistry, method, args...), 0)
	if err != nil {
		reason, _ := abi.UnpackRevert(ret)
		e.t.Fatalf("%s: %v %q", method, err, reason)
	}
	out, err := ContractRegistry.Unpack(method, ret)
	if err != nil {
		e.t.Fatalf("unpack %s: %v", method, err)
	}
	return out
}

// wantContract checks a version through the Go reads and the views.
func (f *fixture) wantContract(h uint64, want ContractRecord, doc []byte, newest bool) {
	f.t.Helper()
	s := Read(f.st)
	got, ok := s.ContractVersion(want.Name, want.Version)
	if !ok || got != want {
		f.t.Fatalf("ContractVersion(%s, %d) = %+v, %v\nwant %+v", want.Name, want.Version, got, ok, want)
	}
	if d, ok := s.ContractABI(want.Name, want.Version); !ok || !bytes.Equal(d, doc) {
		f.t.Fatalf("ContractABI(%s, %d): %d bytes, %v", want.Name, want.Version, len(d), ok)
	}
	e := f.evm(h)
	row := []any{want.Version, want.Address, [32]byte(want.CodeHash), [32]byte(want.ABIHash), want.Org, want.Deprecated}
	if v := e.contractsView("contractVersion", want.Name, want.Version); fmt.Sprint(v) != fmt.Sprint(row) {
		f.t.Fatalf("view contractVersion = %v, want %v", v, row)
	}
	if v := e.contractsView("contractAbi", want.Name, want.Version); !bytes.Equal(v[0].([]byte), doc) {
		f.t.Fatalf("view contractAbi: %d bytes, want %d", len(v[0].([]byte)), len(doc))
	}
	if newest {
		if got, ok := s.ContractByName(want.Name); !ok || got != want {
			f.t.Fatalf("ContractByName(%s) = %+v, %v", want.Name, got, ok)
		}
		if v := e.contractsView("contractByName", want.Name); fmt.Sprint(v) != fmt.Sprint(row) {
			f.t.Fatalf("view contractByName = %v, want %v", v, row)
		}
		if got, ok := s.ContractByAddress(want.Address); !ok || got != want {
			f.t.Fatalf("ContractByAddress(%s) = %+v, %v", want.Address.Hex(), got, ok)
		}
	}
}

// TestRegisterContract: an account with deploy registers a name for its
// organization; the record, the ABI document and the event are readable;
// the list views and Contracts list it.
func TestRegisterContract(t *testing.T) {
	f := newFixture(t)
	addr := f.deployed(1)
	doc := abiDoc(0)
	e := f.evm(5)
	ret, err := e.register(deployerOf(1), "token.v-1_A", addr, doc, crypto.Keccak256Hash(doc))
	if err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("registerContract: %v %q", err, reason)
	}
	if out, err := ContractRegistry.Unpack("registerContract", ret); err != nil || out[0].(uint64) != 1 {
		t.Fatalf("registerContract returned %v %v", out, err)
	}
	want := ContractRecord{Name: "token.v-1_A", Version: 1, Address: addr, CodeHash: f.st.GetCodeHash(addr),
		ABIHash: crypto.Keccak256Hash(doc), Org: "org1", Height: 5}
	f.wantContract(6, want, doc, true)
	if got := Read(f.st).Contracts(); len(got) != 1 || got[0] != want {
		t.Fatalf("Contracts() = %+v", got)
	}
	e = f.evm(6)
	if v := e.contractsView("contractCount"); v[0].(uint64) != 1 {
		t.Fatalf("contractCount = %v", v)
	}
	if v := e.contractsView("contractAt", uint64(0)); v[0] != "token.v-1_A" || v[1].(uint64) != 1 {
		t.Fatalf("contractAt(0) = %v", v)
	}
	if v := e.contractsView("contractAt", uint64(1)); v[0] != "" || v[1].(uint64) != 0 {
		t.Fatalf("contractAt(1) = %v", v)
	}
	if v := e.contractsView("contractByName", "none"); v[0].(uint64) != 0 || v[4] != "" {
		t.Fatalf("contractByName(none) = %v", v)
	}
	// The event.
	logs := f.st.Logs()
	l := logs[len(logs)-1]
	ev := ContractRegistry.Events["ContractRegistered"]
	if l.Address != ContractsAddress || len(l.Topics) != 4 || l.Topics[0] != ev.ID ||
		l.Topics[1] != crypto.Keccak256Hash([]byte("token.v-1_A")) || l.Topics[2] != common.BytesToHash(addr[:]) || l.Topics[3] != common.BytesToHash(deployerOf(1).Bytes()) {
		t.Fatalf("log %+v", l)
	}
	vals, err := ev.Inputs.NonIndexed().Unpack(l.Data)
	if err != nil || vals[0] != "token.v-1_A" || vals[1] != "org1" || vals[2] != [32]byte(want.CodeHash) || vals[3] != [32]byte(want.ABIHash) {
		t.Fatalf("event data %v %v", vals, err)
	}
	// The registry's account is not empty, so the EVM keeps its storage.
	if f.st.GetCodeSize(ContractsAddress) == 0 || f.st.GetNonce(ContractsAddress) != 1 {
		t.Fatal("the contract registry's account was not made")
	}
	// A second name of another organization is listed after the first.
	addr2 := f.deployed(2)
	if ret, err := f.evm(7).register(deployerOf(2), "other", addr2, doc, crypto.Keccak256Hash(doc)); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("second registration: %v %q", err, reason)
	}
	if got := Read(f.st).Contracts(); len(got) != 2 || got[1].Name != "other" || got[1].Org != "org2" {
		t.Fatalf("Contracts() = %+v", got)
	}
}

// TestRegisterContractRefusals: every refusal reverts with its reason and
// changes nothing.
func TestRegisterContractRefusals(t *testing.T) {
	f := newFixture(t, withTiers("validate", "validate", "validate", "read"), withoutValidator(4))
	addr, addr2 := f.deployed(1), f.deployed(2)
	doc := abiDoc(0)
	hash := crypto.Keccak256Hash(doc)
	if ret, err := f.evm(5).register(deployerOf(1), "token", addr, doc, hash); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("registerContract: %v %q", err, reason)
	}
	big := abiDoc(MaxContractABI + 1)
	for _, c := range []struct {
		name string
		from common.Address
		cn   string
		addr common.Address
		doc  []byte
		hash common.Hash
		want string
	}{
		{"no deploy", writerOf(1), "t2", addr2, doc, hash, writerOf(1).Hex() + " lacks role deploy of organization org1"},
		{"admin has no deploy", adminOf(2), "t2", addr2, doc, hash, adminOf(2).Hex() + " lacks role deploy of organization org2"},
		{"read tier", deployerOf(4), "t2", addr2, doc, hash, deployerOf(4).Hex() + " lacks role deploy of organization org4"},
		{"no organization", testAddr("stranger", 1), "t2", addr2, doc, hash, testAddr("stranger", 1).Hex() + " is not an account of an organization"},
		{"hash mismatch", deployerOf(2), "t2", addr2, doc, crypto.Keccak256Hash([]byte("x")), "abi hash does not match the document"},
		{"name of another organization", deployerOf(2), "token", addr2, doc, hash, "name token is registered by organization org1"},
		{"name of the same organization", deployerOf(1), "token", addr2, doc, hash, "name token is registered already by organization org1: a new version is an upgradeContract proposal"},
		{"address under another name", deployerOf(2), "t2", addr, doc, hash, "address " + addr.Hex() + " is registered as token"},
		{"no code", deployerOf(2), "t2", testAddr("empty", 1), doc, hash, "address " + testAddr("empty", 1).Hex() + " holds no code"},
		{"system contract", deployerOf(2), "t2", RegistryAddress, doc, hash, RegistryAddress.Hex() + " is a system contract"},
		{"bad name", deployerOf(2), "a/b", addr2, doc, hash, `contract name "a/b": only letters, digits, '_', '.' and '-'`},
		{"empty name", deployerOf(2), "", addr2, doc, hash, "contract name of 0 bytes: want 1 to 64"},
		{"long name", deployerOf(2), strings.Repeat("a", 65), addr2, doc, hash, "contract name of 65 bytes: want 1 to 64"},
		{"too large ABI", deployerOf(2), "t2", addr2, big, crypto.Keccak256Hash(big), "ABI document of 24577 bytes, at most 24576: larger documents are not kept on chain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, logs := f.root(), len(f.st.Logs())
			ret, err := f.evm(6).register(c.from, c.cn, c.addr, c.doc, c.hash)
			wantCallRevert(t, ret, err, c.want)
			if f.root() != root || len(f.st.Logs()) != logs {
				t.Fatal("a refused registration changed the state")
			}
		})
	}
	if n := Read(f.st).ContractCount(); n != 1 {
		t.Fatalf("%d names registered, want 1", n)
	}
	// The largest document is kept.
	max := abiDoc(MaxContractABI)
	if ret, err := f.evm(7).register(deployerOf(2), "t2", addr2, max, crypto.Keccak256Hash(max)); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("registerContract of %d bytes: %v %q", len(max), err, reason)
	}
	if d, _ := Read(f.st).ContractABI("t2", 1); !bytes.Equal(d, max) {
		t.Fatalf("ABI of %d bytes read back as %d", len(max), len(d))
	}
}

// TestRegisterContractThroughContract: a contract calling registerContract
// is refused as for the other system writes, whatever the roles of the
// account that sent the transaction; the views answer through a contract.
func TestRegisterContractThroughContract(t *testing.T) {
	f := newFixture(t)
	fwd := testAddr("forwarder", 2)
	f.st.SetCode(fwd, contractsForwarder, tracing.CodeChangeUnspecified)
	addr := f.deployed(1)
	doc := abiDoc(0)
	input := pack(t, &ContractRegistry, "registerContract", "token", addr, doc, [32]byte(crypto.Keccak256Hash(doc)))
	root := f.root()
	e := f.evm(5)
	ret, err := e.send(deployerOf(1), fwd, input, 0)
	wantCallRevert(t, ret, err, "registerContract: call the system contract directly from an account, not through a contract")
	if f.root() != root {
		t.Fatal("a refused registration changed the state")
	}
	if ret, err := e.register(deployerOf(1), "token", addr, doc, crypto.Keccak256Hash(doc)); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("direct registerContract: %v %q", err, reason)
	}
	ret, err = e.send(writerOf(2), fwd, pack(t, &ContractRegistry, "contractCount"), 0)
	if err != nil {
		t.Fatalf("view through a contract: %v", err)
	}
	if out, err := ContractRegistry.Unpack("contractCount", ret); err != nil || out[0].(uint64) != 1 {
		t.Fatalf("contractCount through a contract = %v %v", out, err)
	}
}

// TestUpgradeAndDeprecateContract: a proposal of class contracts adds
// version 2 at a new address; another deprecates version 1; the name
// stays its organization's. Bad proposals are refused when made.
func TestUpgradeAndDeprecateContract(t *testing.T) {
	f := newFixture(t)
	if ActUpgradeContract.Class() != ClassContracts || ActDeprecateContract.Class() != ClassContracts {
		t.Fatal("the contract registry's actions are not of class contracts")
	}
	addr, addr2 := f.deployed(1), f.deployed(2)
	doc, doc2 := abiDoc(0), abiDoc(100)
	if ret, err := f.evm(2).register(deployerOf(2), "token", addr, doc, crypto.Keccak256Hash(doc)); err != nil {
		reason, _ := abi.UnpackRevert(ret)
		t.Fatalf("registerContract: %v %q", err, reason)
	}
	_, at, fx := f.enact(3, ActUpgradeContract, "token", addr2, doc2, [32]byte(crypto.Keccak256Hash(doc2)))
	v1 := ContractRecord{Name: "token", Version: 1, Address: addr, CodeHash: f.st.GetCodeHash(addr), ABIHash: crypto.Keccak256Hash(doc), Org: "org2", Height: 2}
	v2 := ContractRecord{Name: "token", Version: 2, Address: addr2, CodeHash: f.st.GetCodeHash(addr2), ABIHash: crypto.Keccak256Hash(doc2), Org: "org2", Height: at}
	f.wantContract(at+1, v2, doc2, true)
	f.wantContract(at+1, v1, doc, false)
	if len(fx.ContractChanges) != 1 || fx.ContractChanges[0] != v2 {
		t.Fatalf("effects of the upgrade: %+v", fx.ContractChanges)
	}

	_, at, fx = f.enact(at+1, ActDeprecateContract, "token", uint64(1))
	v1.Deprecated = true
	if len(fx.ContractChanges) != 1 || fx.ContractChanges[0] != v1 {
		t.Fatalf("effects of the deprecation: %+v", fx.ContractChanges)
	}
	f.wantContract(at+1, v1, doc, false)
	f.wantContract(at+1, v2, doc2, true)
	if got := Read(f.st).Contracts(); len(got) != 2 || got[0] != v1 || got[1] != v2 {
		t.Fatalf("Contracts() = %+v", got)
	}

	h := at + 1
	propose := func(a Action, vals ...any) error {
		_, err := f.at(h).Propose(adminOf(1), a, f.args(a, vals...), "")
		return err
	}
	other := f.deployed(3)
	wantRevert(t, propose(ActDeprecateContract, "token", uint64(1)), "version 1 of contract token is deprecated already")
	wantRevert(t, propose(ActDeprecateContract, "token", uint64(3)), "contract token has no version 3")
	wantRevert(t, propose(ActUpgradeContract, "nothing", other, doc, [32]byte(crypto.Keccak256Hash(doc))), "no contract is registered as nothing")
	wantRevert(t, propose(ActUpgradeContract, "token", other, doc, [32]byte{}), "abi hash does not match the document")
	wantRevert(t, propose(ActUpgradeContract, "token", testAddr("empty", 2), doc, [32]byte(crypto.Keccak256Hash(doc))), "address "+testAddr("empty", 2).Hex()+" holds no code")
}

// TestRegisterContractGas: a registration pays the write's base, its input
// and 200 a byte of the name and document it stores.
func TestRegisterContractGas(t *testing.T) {
	f := newFixture(t)
	e := f.evm(2)
	small, large := abiDoc(0), abiDoc(4096)
	if _, err := e.register(deployerOf(1), "a", f.deployed(1), small, crypto.Keccak256Hash(small)); err != nil {
		t.Fatal(err)
	}
	g1 := e.used
	if _, err := e.register(deployerOf(1), "b", f.deployed(2), large, crypto.Keccak256Hash(large)); err != nil {
		t.Fatal(err)
	}
	g2 := e.used
	words := func(n int) uint64 { return uint64((n + 31) / 32) }
	in1 := len(pack(t, &ContractRegistry, "registerContract", "a", common.Address{}, small, [32]byte{}))
	in2 := len(pack(t, &ContractRegistry, "registerContract", "b", common.Address{}, large, [32]byte{}))
	want := gasStoredByte*uint64(len(large)-len(small)) + gasWord*(words(in2)-words(in1))
	if g2-g1 != want {
		t.Fatalf("gas %d then %d: difference %d, want %d", g1, g2, g2-g1, want)
	}
	if g1 < gasWrite+gasStoredByte*uint64(len(small)+1) {
		t.Fatalf("gas %d is less than the write's base and stored bytes", g1)
	}
}
