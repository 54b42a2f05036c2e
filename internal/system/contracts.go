package system

import (
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// The contract registry, at 0x…0402: names of deployed contracts, each
// with its versions (an address, the hash of the code found there when
// the version was recorded, the keccak256 of its ABI document), the
// organization that registered the name, and the ABI documents
// themselves, kept in the storage of the registry's account in chunks of
// 32 bytes (store). An account with the deploy role registers a new name
// for its organization (registerContract); a new version of a name, and
// deprecating a version, are governance actions of the class contracts
// (UpgradeContract, DeprecateContract).
//
// Charter does not record who created a contract, and the creator cannot
// be derived later from the address alone, so a registration cannot prove
// that the sender's organization deployed the contract. The rules are
// instead: the address holds code and is no system contract; a name
// belongs to the organization that registered it first; and an address is
// registered under one name at most, so an organization cannot take over
// a contract another has registered.
//
// Every lookup reads a bounded number of records: the names are listed by
// index (contractAt), never as one list.

// MaxContractABI is the largest ABI document the registry keeps, in
// bytes. A larger one is refused; keeping larger documents off the state
// is later work.
const MaxContractABI = 24 * 1024

// MaxContractName is the longest contract name, in bytes.
const MaxContractName = 64

// ContractRecord is one version of a registered contract.
type ContractRecord struct {
	Name       string
	Version    uint64 // 1 for the registration, +1 per upgrade
	Address    common.Address
	CodeHash   common.Hash // of the code at Address when the version was recorded
	ABIHash    common.Hash // keccak256 of the ABI document
	Org        string      // the organization that registered the name
	Deprecated bool
	Height     uint64 // block the version was recorded in
}

// contractHead is a name's record.
type contractHead struct {
	Org      string
	Versions uint64
}

// contractVersion is one version's record.
type contractVersion struct {
	Address    common.Address
	CodeHash   common.Hash
	ABIHash    common.Hash
	Deprecated bool
	Height     uint64
}

// contractAddr is what the address index keeps.
type contractAddr struct {
	Name    string
	Version uint64
}

func contractKey(name string) string { return "contract/" + name }
func contractVersionKey(name string, v uint64) string {
	return fmt.Sprintf("contract/%s/%d", name, v)
}
func contractABIKey(name string, v uint64) string { return fmt.Sprintf("abi/%s/%d", name, v) }
func contractNameKey(i uint64) string             { return fmt.Sprintf("name/%d", i) }
func contractAddrKey(a common.Address) string     { return "addr/" + string(a[:]) }

const contractCountKey = "count"

// codeReader is the part of the world state the registry reads the code
// of an address from; go-ethereum's StateDB satisfies it.
type codeReader interface {
	GetCodeHash(common.Address) common.Hash
	GetCodeSize(common.Address) int
}

// checkContractName accepts 1 to 64 bytes of [a-zA-Z0-9_.-].
func checkContractName(name string) error {
	if len(name) == 0 || len(name) > MaxContractName {
		return reverts("contract name of %d bytes: want 1 to %d", len(name), MaxContractName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return reverts("contract name %q: only letters, digits, '_', '.' and '-'", name)
		}
	}
	return nil
}

// checkContractABI checks the document's size and hash.
func checkContractABI(doc []byte, hash common.Hash) error {
	if len(doc) > MaxContractABI {
		return reverts("ABI document of %d bytes, at most %d: larger documents are not kept on chain", len(doc), MaxContractABI)
	}
	if crypto.Keccak256Hash(doc) != hash {
		return reverts("abi hash does not match the document")
	}
	return nil
}

// checkContractCode refuses an address that holds no code, or a system
// contract; it returns the hash of the code.
func (s *State) checkContractCode(addr common.Address) (common.Hash, error) {
	if IsSystem(addr) {
		return common.Hash{}, reverts("%s is a system contract", addr.Hex())
	}
	if s.code == nil {
		return common.Hash{}, reverts("the code of %s cannot be read here", addr.Hex())
	}
	if s.code.GetCodeSize(addr) == 0 {
		return common.Hash{}, reverts("address %s holds no code", addr.Hex())
	}
	return s.code.GetCodeHash(addr), nil
}

// checkContractAddrFree refuses an address registered under another name.
func (s *State) checkContractAddrFree(name string, addr common.Address) error {
	if a, ok := getRLP[contractAddr](s.con, contractAddrKey(addr)); ok && a.Name != name {
		return reverts("address %s is registered as %s", addr.Hex(), a.Name)
	}
	return nil
}

// ContractCount is the number of registered names.
func (s *State) ContractCount() uint64 { return s.con.getUint(contractCountKey) }

// ContractNameAt is the i-th registered name (0-based, in registration
// order).
func (s *State) ContractNameAt(i uint64) (string, bool) {
	v := s.con.get(contractNameKey(i))
	return string(v), v != nil
}

// ContractVersion returns version v of name.
func (s *State) ContractVersion(name string, v uint64) (ContractRecord, bool) {
	h, ok := getRLP[contractHead](s.con, contractKey(name))
	if !ok || v == 0 || v > h.Versions {
		return ContractRecord{}, false
	}
	r, ok := getRLP[contractVersion](s.con, contractVersionKey(name, v))
	if !ok {
		panic(fmt.Sprintf("system: contract %s has no version %d of %d", name, v, h.Versions))
	}
	return ContractRecord{Name: name, Version: v, Address: r.Address, CodeHash: r.CodeHash, ABIHash: r.ABIHash,
		Org: h.Org, Deprecated: r.Deprecated, Height: r.Height}, true
}

// ContractByName returns the newest version of name.
func (s *State) ContractByName(name string) (ContractRecord, bool) {
	h, ok := getRLP[contractHead](s.con, contractKey(name))
	if !ok {
		return ContractRecord{}, false
	}
	return s.ContractVersion(name, h.Versions)
}

// ContractByAddress returns the newest version registered at addr.
func (s *State) ContractByAddress(addr common.Address) (ContractRecord, bool) {
	a, ok := getRLP[contractAddr](s.con, contractAddrKey(addr))
	if !ok {
		return ContractRecord{}, false
	}
	return s.ContractVersion(a.Name, a.Version)
}

// ContractABI returns the ABI document of version v of name.
func (s *State) ContractABI(name string, v uint64) ([]byte, bool) {
	if _, ok := s.ContractVersion(name, v); !ok {
		return nil, false
	}
	return s.con.get(contractABIKey(name, v)), true
}

// Contracts lists every version of every name, by registration order of
// the names, then by version. For node-side use: its work grows with the
// registry.
func (s *State) Contracts() []ContractRecord {
	var out []ContractRecord
	n := s.ContractCount()
	for i := uint64(0); i < n; i++ {
		name, ok := s.ContractNameAt(i)
		if !ok {
			panic(fmt.Sprintf("system: contract name %d of %d missing", i, n))
		}
		for v := uint64(1); ; v++ {
			r, ok := s.ContractVersion(name, v)
			if !ok {
				break
			}
			out = append(out, r)
		}
	}
	return out
}

// accountMaker gives the registry's account its code, so that the EVM
// does not delete it as empty; go-ethereum's StateDB satisfies it.
type accountMaker interface {
	GetCodeSize(common.Address) int
	SetCode(addr common.Address, code []byte, reason tracing.CodeChangeReason) []byte
	SetNonce(addr common.Address, nonce uint64, reason tracing.NonceChangeReason)
}

// addContractVersion records the next version of name (the first makes
// the name org's). The registry's account is made at the first
// registration, not in the genesis, so that the genesis state of chains
// made before the registry does not change.
func (s *State) addContractVersion(name, org string, addr common.Address, codeHash, abiHash common.Hash, doc []byte) uint64 {
	if m, ok := s.con.w.(accountMaker); ok && m.GetCodeSize(ContractsAddress) == 0 {
		m.SetCode(ContractsAddress, systemCode, tracing.CodeChangeUnspecified)
		m.SetNonce(ContractsAddress, 1, tracing.NonceChangeUnspecified)
	} else if !ok {
		panic("system: the contract registry's state cannot make its account")
	}
	h, ok := getRLP[contractHead](s.con, contractKey(name))
	if !ok {
		n := s.ContractCount()
		s.con.put(contractNameKey(n), []byte(name))
		s.con.putUint(contractCountKey, n+1)
		h = contractHead{Org: org}
	}
	h.Versions++
	putRLP(s.con, contractKey(name), h)
	putRLP(s.con, contractVersionKey(name, h.Versions), contractVersion{Address: addr, CodeHash: codeHash, ABIHash: abiHash, Height: s.height})
	s.con.put(contractABIKey(name, h.Versions), doc)
	putRLP(s.con, contractAddrKey(addr), contractAddr{Name: name, Version: h.Versions})
	return h.Versions
}

// RegisterContract registers a new name for the organization of from,
// which must hold the deploy role: version 1 at addr, whose ABI document
// doc hashes to abiHash. It returns the organization.
func (s *State) RegisterContract(from common.Address, name string, addr common.Address, doc []byte, abiHash common.Hash) (string, error) {
	a := s.rawAccount(from)
	if a.Org == "" {
		return "", reverts("%s is not an account of an organization", from.Hex())
	}
	o, ok := s.Org(a.Org)
	if !ok || o.Status != StatusActive {
		return "", reverts("organization %s of %s is %s", a.Org, from.Hex(), o.Status)
	}
	if a.Frozen {
		return "", reverts("%s is frozen", from.Hex())
	}
	if s.EffectiveRoles(a)&RoleDeploy == 0 {
		return "", reverts("%s lacks role deploy of organization %s", from.Hex(), o.Name)
	}
	if err := checkContractName(name); err != nil {
		return "", err
	}
	if err := checkContractABI(doc, abiHash); err != nil {
		return "", err
	}
	if h, ok := getRLP[contractHead](s.con, contractKey(name)); ok {
		if h.Org != o.Name {
			return "", reverts("name %s is registered by organization %s", name, h.Org)
		}
		return "", reverts("name %s is registered already by organization %s: a new version is an upgradeContract proposal", name, h.Org)
	}
	if err := s.checkContractAddrFree(name, addr); err != nil {
		return "", err
	}
	codeHash, err := s.checkContractCode(addr)
	if err != nil {
		return "", err
	}
	s.addContractVersion(name, o.Name, addr, codeHash, abiHash, doc)
	return o.Name, nil
}

// ABIDocument is a contract's ABI document as an action carries it: the
// bytes of the file (a compiler's JSON array). Its text form is the
// document itself.
type ABIDocument []byte

// MarshalText writes the document as it is.
func (d ABIDocument) MarshalText() ([]byte, error) { return []byte(d), nil }

// UnmarshalText reads the document as it is.
func (d *ABIDocument) UnmarshalText(b []byte) error {
	*d = append(ABIDocument{}, b...)
	return nil
}

// UpgradeContract records a new version of a registered name.
type UpgradeContract struct {
	Name    string         `abi:"name" max:"64" meta:"NAME" help:"registered contract name"`
	Address common.Address `abi:"addr" flag:"address" meta:"ADDRESS" help:"address of the new version's code"`
	ABI     ABIDocument    `abi:"abiDoc" max:"24576" flag:"abi,file" meta:"FILE" help:"file of the new version's ABI document (JSON)"`
	ABIHash common.Hash    `abi:"abiHash" flag:"abi-hash" meta:"HASH" help:"keccak256 of the ABI document"`
}

func (UpgradeContract) Action() Action { return ActUpgradeContract }

func (a UpgradeContract) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	if err := checkContractName(a.Name); err != nil {
		return err
	}
	return checkContractABI(a.ABI, a.ABIHash)
}

func (a UpgradeContract) check(s *State) error {
	if _, ok := s.ContractByName(a.Name); !ok {
		return reverts("no contract is registered as %s", a.Name)
	}
	if err := s.checkContractAddrFree(a.Name, a.Address); err != nil {
		return err
	}
	_, err := s.checkContractCode(a.Address)
	return err
}

func (a UpgradeContract) apply(s *State) {
	codeHash, _ := s.checkContractCode(a.Address)
	h, _ := getRLP[contractHead](s.con, contractKey(a.Name))
	s.addContractVersion(a.Name, h.Org, a.Address, codeHash, a.ABIHash, a.ABI)
}

// DeprecateContract marks one version of a name deprecated.
type DeprecateContract struct {
	Name    string `abi:"name" max:"64" meta:"NAME" help:"registered contract name"`
	Version uint64 `abi:"version" meta:"N" help:"version to deprecate"`
}

func (DeprecateContract) Action() Action { return ActDeprecateContract }

func (a DeprecateContract) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	return checkContractName(a.Name)
}

func (a DeprecateContract) check(s *State) error {
	r, ok := s.ContractVersion(a.Name, a.Version)
	switch {
	case !ok:
		return reverts("contract %s has no version %d", a.Name, a.Version)
	case r.Deprecated:
		return reverts("version %d of contract %s is deprecated already", a.Version, a.Name)
	}
	return nil
}

func (a DeprecateContract) apply(s *State) {
	r, _ := getRLP[contractVersion](s.con, contractVersionKey(a.Name, a.Version))
	r.Deprecated = true
	putRLP(s.con, contractVersionKey(a.Name, a.Version), r)
}

func contractsView(st *State, name string, args in) ([]any, error) {
	var a struct {
		Name    string
		Version uint64
		Index   uint64
	}
	if name != "contractCount" {
		if err := args.into(&a); err != nil {
			return nil, err
		}
	}
	row := func(r ContractRecord) []any {
		return []any{r.Version, r.Address, [32]byte(r.CodeHash), [32]byte(r.ABIHash), r.Org, r.Deprecated}
	}
	switch name {
	case "contractByName":
		r, _ := st.ContractByName(a.Name)
		return row(r), nil
	case "contractVersion":
		r, _ := st.ContractVersion(a.Name, a.Version)
		return row(r), nil
	case "contractAbi":
		doc, _ := st.ContractABI(a.Name, a.Version)
		return []any{nonNilBytes(doc)}, nil
	case "contractCount":
		return []any{st.ContractCount()}, nil
	case "contractAt":
		n, ok := st.ContractNameAt(a.Index)
		if !ok {
			return []any{"", uint64(0)}, nil
		}
		r, _ := st.ContractByName(n)
		return []any{n, r.Version}, nil
	}
	return nil, fmt.Errorf("%s is not implemented", name)
}

func contractsWrite(st *State, from common.Address, name string, args in) ([]any, []*types.Log, error) {
	if name != "registerContract" {
		return nil, nil, fmt.Errorf("%s is not implemented", name)
	}
	var a struct {
		Name    string
		Addr    common.Address
		AbiDoc  []byte
		AbiHash [32]byte
	}
	if err := args.into(&a); err != nil {
		return nil, nil, err
	}
	org, err := st.RegisterContract(from, a.Name, a.Addr, a.AbiDoc, a.AbiHash)
	if err != nil {
		return nil, nil, err
	}
	r, _ := st.ContractByName(a.Name)
	l, err := event(&ContractRegistry, "ContractRegistered", []common.Hash{crypto.Keccak256Hash([]byte(a.Name)), common.BytesToHash(a.Addr[:]), common.BytesToHash(from[:])},
		a.Name, org, [32]byte(r.CodeHash), a.AbiHash)
	return []any{r.Version}, []*types.Log{l}, err
}
