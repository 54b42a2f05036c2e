package system

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
)

// Action is what a proposal does when it passes: its number on chain.
type Action uint8

// Actions, by their number on chain. Their arguments are the Go types of
// the same name (AddOrganization, ...) in actions_*.go.
const (
	ActAddOrganization Action = iota + 1
	ActRemoveOrganization
	ActSetOrganization
	ActAddNode
	ActRemoveNode
	ActAddValidator
	ActRemoveValidator
	ActGrantRoles
	ActRevokeRoles
	ActRevokeCertificate
	ActRotateCA
	ActFreeze
	ActUnfreeze
	ActSetParameter
	ActScheduleUpgrade
	ActSetRule
	ActSetDefaultRoles
	ActSetFactory
	ActSetPrivacyKey
	ActPurgeGroup
	ActGrantAuditor
	ActRevokeAuditor
	ActUpgradeContract
	ActDeprecateContract
	numActions
)

// Args are the arguments of one action. Each action has one type that
// implements it, a struct of this package named as the action
// (AddOrganization, Freeze, ...). Its exported fields are the action's
// ABI arguments, in order; their tags say
//
//	abi:"NAME"      the ABI argument's name (the ABI type follows from the Go type)
//	max:"N"         for a string or bytes, its bytes; for a list, its elements (required for each)
//	flag:"NAME,..." the CLI's flag (default: the ABI name); options:
//	                file     the flag names a file whose content is the value
//	                optional not given: the zero value (default: required)
//	                current  not given: the value in force now (the CLI looks it up)
//	                invert   a bool that the flag sets to false
//	default:"TEXT"  the CLI's value when the flag is not given
//	meta:"TEXT"     the CLI's placeholder of the value
//	help:"TEXT"     the CLI's description of the flag
//
// The Solidity interface ICharterActions, the CLI's flags and the
// JSON-RPC views of a proposal are all derived from these types.
type Args interface {
	// Action is the action these are the arguments of.
	Action() Action
	// Validate checks the arguments alone: sizes, ranges, shapes, what
	// needs no state. The chain runs it on every proposal and again at
	// execution; a client may run it to fail early with the chain's words.
	Validate() error
	// check checks the action against the state s and changes nothing.
	check(s *State) error
	// apply carries the action out on s; check passed on s just before.
	apply(s *State)
}

// Field describes one argument of an action.
type Field struct {
	Name    string       // ABI name ("rootsPem")
	ABIType string       // ABI type ("string", "address[]")
	Type    reflect.Type // Go type of the struct field
	Max     int          // strings: bytes; lists: elements; 0 for fixed-size values
	Flag    string       // the CLI's flag ("roots")
	File    bool         // the flag names a file holding the value
	Opt     bool         // not given: the zero value
	Current bool         // not given: the value in force now
	Invert  bool         // a bool the flag sets to false
	Default string       // the CLI's value when the flag is not given ("": none)
	Meta    string       // the CLI's placeholder of the value
	Help    string       // the CLI's description
}

// actionType is an action's definition, derived once from its Args type.
type actionType struct {
	name    string
	class   Class
	doc     string       // one sentence: what it does
	typ     reflect.Type // the Args struct
	fields  []Field
	args    abi.Arguments
	maxSize int // bytes of the largest canonical encoding of the arguments
}

var actionTypes = func() [numActions]*actionType {
	var out [numActions]*actionType
	for _, d := range []struct {
		class Class
		zero  Args
		doc   string
	}{
		{ClassMembership, AddOrganization{}, "Admits an organization with its root certificates, admin accounts, nodes and, optionally, its privacy public key."},
		{ClassMembership, RemoveOrganization{}, "An organization exits: its nodes are revoked, its accounts lose their roles, its history stays."},
		{ClassMembership, SetOrganization{}, "Sets an organization's tier, voting weight and status (active or suspended)."},
		{ClassMembership, AddNode{}, "Registers a node of an organization, optionally a validator."},
		{ClassMembership, RemoveNode{}, "Revokes a node and its certificate."},
		{ClassValidators, AddValidator{}, "Makes a registered node a validator (from the next epoch boundary)."},
		{ClassValidators, RemoveValidator{}, "Takes a node out of the validator set (from the next epoch boundary)."},
		{ClassRoles, GrantRoles{}, "Adds roles to an account of an organization (an account of none joins it)."},
		{ClassRoles, RevokeRoles{}, "Takes roles from an account."},
		{ClassCertificates, RevokeCertificate{}, "Revokes a certificate by its SHA-256, and the nodes that present it."},
		{ClassCertificates, RotateCA{}, "Replaces an organization's root certificates."},
		{ClassFreeze, Freeze{}, "Freezes an account or contract: it may not send, nor receive transfers."},
		{ClassFreeze, Unfreeze{}, "Lifts a freeze."},
		{ClassParameters, SetParameter{}, "Sets a chain parameter within its range."},
		{ClassUpgrade, ScheduleUpgrade{}, "Schedules a protocol upgrade by name at a height."},
		{ClassPolicy, SetRule{}, "Sets the voting rule of one class of proposals."},
		{ClassPolicy, SetDefaultRoles{}, "Sets the roles of accounts the registry does not list."},
		{ClassContracts, SetFactory{}, "Marks a contract a factory, which may create contracts in transactions of senders without deploy; factory false unmarks it."},
		{ClassCertificates, SetPrivacyKey{}, "Rotates an organization's privacy public key, to which private payloads for it are sealed."},
		{ClassPrivacy, PurgeGroup{}, "Purges a privacy group at once, as a legal order: every node deletes its payloads; its record stays."},
		{ClassPrivacy, GrantAuditor{}, "Grants an auditor organization read access to a privacy group's payloads from a height on, without the members' approvals."},
		{ClassPrivacy, RevokeAuditor{}, "Takes an auditor organization's access to a privacy group's payloads away."},
		{ClassContracts, UpgradeContract{}, "Records a new version of a registered contract name: its address (which must hold code) and ABI document (at most 24576 bytes)."},
		{ClassContracts, DeprecateContract{}, "Marks one version of a registered contract name deprecated."},
	} {
		a := d.zero.Action()
		if a == 0 || a >= numActions || out[a] != nil {
			panic(fmt.Sprintf("system: action %d of %T defined twice or out of range", a, d.zero))
		}
		out[a] = mustDefine(d.class, d.zero)
		out[a].doc = d.doc
	}
	for a := Action(1); a < numActions; a++ {
		if out[a] == nil {
			panic(fmt.Sprintf("system: action %d has no arguments type", a))
		}
	}
	return out
}()

var (
	addressType = reflect.TypeFor[common.Address]()
	hashType    = reflect.TypeFor[common.Hash]()
	bigType     = reflect.TypeFor[*big.Int]()
)

// abiTypeOf maps a field's Go type to its ABI type.
func abiTypeOf(t reflect.Type) (string, bool) {
	switch t {
	case addressType:
		return "address", true
	case hashType:
		return "bytes32", true
	case bigType:
		return "uint256", true
	}
	switch t.Kind() {
	case reflect.Array:
		if t.Len() == 32 && t.Elem().Kind() == reflect.Uint8 {
			return "bytes32", true // GroupID
		}
	case reflect.String:
		return "string", true
	case reflect.Bool:
		return "bool", true
	case reflect.Uint8:
		return "uint8", true
	case reflect.Uint32:
		return "uint32", true
	case reflect.Uint64:
		return "uint64", true
	case reflect.Slice:
		if t.Elem() == reflect.TypeFor[uint8]() {
			return "bytes", true
		}
		if e, ok := abiTypeOf(t.Elem()); ok && !strings.HasSuffix(e, "[]") && e != "string" {
			return e + "[]", true
		}
	}
	return "", false
}

// mustDefine derives an action's definition from its Args type; a type
// that breaks the rules of Args is a programmer error.
func mustDefine(class Class, zero Args) *actionType {
	typ := reflect.TypeOf(zero)
	if typ.Kind() != reflect.Struct {
		panic(fmt.Sprintf("system: %T is not a struct", zero))
	}
	t := &actionType{name: typ.Name(), class: class, typ: typ}
	for i := 0; i < typ.NumField(); i++ {
		sf := typ.Field(i)
		name := sf.Tag.Get("abi")
		abiType, ok := abiTypeOf(sf.Type)
		if !sf.IsExported() || name == "" || !ok {
			panic(fmt.Sprintf("system: %s.%s: want an exported field of an ABI type with an abi tag", t.name, sf.Name))
		}
		f := Field{Name: name, ABIType: abiType, Type: sf.Type, Flag: kebab(name),
			Default: sf.Tag.Get("default"), Meta: sf.Tag.Get("meta"), Help: sf.Tag.Get("help")}
		if flag, ok := sf.Tag.Lookup("flag"); ok {
			parts := strings.Split(flag, ",")
			if parts[0] != "" {
				f.Flag = parts[0]
			}
			for _, o := range parts[1:] {
				switch o {
				case "file":
					f.File = true
				case "optional":
					f.Opt = true
				case "current":
					f.Current = true
				case "invert":
					f.Invert = true
				default:
					panic(fmt.Sprintf("system: %s.%s: unknown flag option %q", t.name, sf.Name, o))
				}
			}
		}
		dynamic := abiType == "string" || abiType == "bytes" || strings.HasSuffix(abiType, "[]")
		if m, ok := sf.Tag.Lookup("max"); ok {
			n, err := strconv.Atoi(m)
			if err != nil || n <= 0 || !dynamic {
				panic(fmt.Sprintf("system: %s.%s: max %q on a %s", t.name, sf.Name, m, abiType))
			}
			f.Max = n
		} else if dynamic {
			panic(fmt.Sprintf("system: %s.%s: a %s needs a max tag", t.name, sf.Name, abiType))
		}
		at, err := abi.NewType(abiType, "", nil)
		if err != nil {
			panic(err)
		}
		t.args = append(t.args, abi.Argument{Name: name, Type: at})
		t.fields = append(t.fields, f)
		// Head word, then for a dynamic value its length word and data.
		t.maxSize += 32
		switch {
		case abiType == "string" || abiType == "bytes":
			t.maxSize += 32 + (f.Max+31)/32*32
		case dynamic:
			t.maxSize += 32 + 32*f.Max
		}
	}
	return t
}

// kebab turns a name (AddOrganization, RotateCA, minApprovals) into the
// CLI's form (add-organization, rotate-ca, min-approvals).
func kebab(camel string) string {
	var b strings.Builder
	prev := rune(0)
	for _, r := range camel {
		lower := strings.ToLower(string(r))
		if lower != string(r) {
			if prev != 0 && strings.ToUpper(string(prev)) != string(prev) {
				b.WriteByte('-')
			}
			b.WriteString(lower)
		} else {
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

func (a Action) def() (*actionType, bool) {
	if a == 0 || a >= numActions {
		return nil, false
	}
	return actionTypes[a], true
}

func (a Action) String() string {
	if d, ok := a.def(); ok {
		return d.name
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Doc says in one sentence what the action does.
func (a Action) Doc() string {
	if d, ok := a.def(); ok {
		return d.doc
	}
	return ""
}

// CLIName is the action's name on the command line (add-organization).
func (a Action) CLIName() string { return kebab(a.String()) }

// Class is the class whose rule decides the action.
func (a Action) Class() Class {
	if d, ok := a.def(); ok {
		return d.class
	}
	return NumClasses
}

// Fields describes the action's arguments in ABI order (nil for an
// unknown action). The caller must not change the slice.
func (a Action) Fields() []Field {
	if d, ok := a.def(); ok {
		return d.fields
	}
	return nil
}

// MaxArgBytes is the size of the largest canonical encoding of the
// action's arguments within their bounds.
func (a Action) MaxArgBytes() int {
	if d, ok := a.def(); ok {
		return d.maxSize
	}
	return 0
}

// Actions lists every action, in number order.
func Actions() []Action {
	out := make([]Action, 0, numActions-1)
	for a := Action(1); a < numActions; a++ {
		out = append(out, a)
	}
	return out
}

// ParseAction reads an action by name (AddOrganization or
// add-organization, case-insensitive) or number.
func ParseAction(s string) (Action, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 1 && n < int(numActions) {
			return Action(n), nil
		}
		return 0, fmt.Errorf("unknown action %d (want 1 to %d)", n, numActions-1)
	}
	for a := Action(1); a < numActions; a++ {
		if strings.EqualFold(a.String(), s) || strings.EqualFold(a.CLIName(), s) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown action %q", s)
}

// ActionArgs describes an action's arguments ("name string", ...); nil
// for an unknown action.
func ActionArgs(a Action) []string {
	var out []string
	for _, f := range a.Fields() {
		out = append(out, f.Name+" "+f.ABIType)
	}
	return out
}

// NewArgs returns zero arguments of action a, as a pointer to its struct,
// for a client to fill (SetArg); false for an unknown action.
func NewArgs(a Action) (Args, bool) {
	d, ok := a.def()
	if !ok {
		return nil, false
	}
	args, ok := reflect.New(d.typ).Interface().(Args)
	return args, ok
}

// SetArg sets argument i of args (from NewArgs) to v, a value of the
// field's Go type or of one with the same underlying type.
func SetArg(args Args, i int, v any) error {
	d, ok := args.Action().def()
	rv := reflect.ValueOf(args)
	if !ok || rv.Kind() != reflect.Pointer || i < 0 || i >= len(d.fields) {
		return fmt.Errorf("SetArg(%T, %d): want arguments from NewArgs and a field index", args, i)
	}
	if err := assign(rv.Elem().Field(i), v); err != nil {
		return fmt.Errorf("%s: %v", d.fields[i].Name, err)
	}
	return nil
}

// assign sets dst to src, converting between types of one underlying
// type ([32]byte and common.Hash, uint8 and Tier) and element-wise
// between slices of such.
func assign(dst reflect.Value, src any) error {
	sv := reflect.ValueOf(src)
	if !sv.IsValid() {
		return fmt.Errorf("no value for a %s", dst.Type())
	}
	switch {
	case sv.Type().AssignableTo(dst.Type()):
		dst.Set(sv)
	case dst.Kind() == reflect.Slice && sv.Kind() == reflect.Slice:
		out := reflect.MakeSlice(dst.Type(), sv.Len(), sv.Len())
		for i := 0; i < sv.Len(); i++ {
			if err := assign(out.Index(i), sv.Index(i).Interface()); err != nil {
				return err
			}
		}
		dst.Set(out)
	case sv.Type().ConvertibleTo(dst.Type()) && sv.Kind() == dst.Kind():
		dst.Set(sv.Convert(dst.Type()))
	default:
		return fmt.Errorf("a %s is not a %s", sv.Type(), dst.Type())
	}
	return nil
}

// values lists the arguments' field values in ABI order.
func values(d *actionType, args Args) []any {
	v := reflect.Indirect(reflect.ValueOf(args))
	out := make([]any, len(d.fields))
	for i := range d.fields {
		out[i] = v.Field(i).Interface()
	}
	return out
}

// Encode is the ABI encoding of args: what propose takes as its args.
func Encode(args Args) ([]byte, error) {
	d, ok := args.Action().def()
	if !ok {
		return nil, fmt.Errorf("unknown action %d", args.Action())
	}
	vals := values(d, args)
	for i, v := range vals {
		if b, ok := v.(*big.Int); ok && b == nil {
			return nil, fmt.Errorf("%s: %s: no value", d.name, d.fields[i].Name)
		}
		if d.fields[i].ABIType == "bytes" {
			vals[i] = reflect.ValueOf(v).Bytes() // the ABI packs []byte only, not a type of its own
		}
	}
	out, err := d.args.Pack(vals...)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", d.name, err)
	}
	return out, nil
}

// EncodeArgs ABI-encodes an action's arguments given as values in ABI
// order (string, uint8, uint32, uint64, *big.Int, common.Address,
// [32]byte, slices of those, bool, []byte).
func EncodeArgs(a Action, vals ...any) ([]byte, error) {
	d, ok := a.def()
	if !ok {
		return nil, fmt.Errorf("unknown action %d", a)
	}
	return d.args.Pack(vals...)
}

// DecodeArgs decodes an action's arguments: no larger than the action's
// bounds allow, well formed and in canonical encoding (what decodes
// re-encodes to the input, so that one action has one form). It does not
// validate them (Args.Validate does).
func DecodeArgs(a Action, data []byte) (Args, error) {
	d, ok := a.def()
	if !ok {
		return nil, fmt.Errorf("unknown action %d", a)
	}
	if len(data) > d.maxSize {
		return nil, fmt.Errorf("%s: arguments of %d bytes, at most %d", d.name, len(data), d.maxSize)
	}
	vals, err := d.args.Unpack(data)
	if err != nil {
		return nil, fmt.Errorf("%s: malformed arguments: %v", d.name, err)
	}
	v := reflect.New(d.typ).Elem()
	for i, f := range d.fields {
		if err := assign(v.Field(i), vals[i]); err != nil {
			return nil, fmt.Errorf("%s: %s: %v", d.name, f.Name, err)
		}
	}
	args, ok := v.Interface().(Args)
	if !ok {
		return nil, fmt.Errorf("%s: %s is not an action's arguments", d.name, d.typ)
	}
	if re, err := d.args.Pack(vals...); err != nil || !bytes.Equal(re, data) {
		return nil, fmt.Errorf("%s: arguments not in canonical ABI encoding", d.name)
	}
	return args, nil
}

// ArgsJSON renders args as a JSON object, its keys the ABI names in ABI
// order: addresses and hashes as hex, uint256 as a decimal string, tiers,
// statuses and classes by name, roles as a list of names.
func ArgsJSON(args Args) (json.RawMessage, error) {
	d, ok := args.Action().def()
	if !ok {
		return nil, fmt.Errorf("unknown action %d", args.Action())
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, v := range values(d, args) {
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(d.fields[i].Name)
		b.Write(key)
		b.WriteByte(':')
		if n, ok := v.(*big.Int); ok {
			v = n.String()
		}
		val, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v", d.name, d.fields[i].Name, err)
		}
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// checkBounds checks the strings and lists of args against their max
// tags, naming the argument.
func checkBounds(args Args) error {
	d, ok := args.Action().def()
	if !ok {
		return reverts("unknown action %d", args.Action())
	}
	for i, v := range values(d, args) {
		f := d.fields[i]
		n := reflect.ValueOf(v).Len
		switch {
		case f.Max == 0:
		case (f.ABIType == "string" || f.ABIType == "bytes") && n() > f.Max:
			return reverts("%s: %s of %d bytes, at most %d", d.name, f.Name, n(), f.Max)
		case n() > f.Max:
			return reverts("%s: %s lists %d, at most %d", d.name, f.Name, n(), f.Max)
		}
	}
	return nil
}

// revert is an error that reverts a system contract call with its text
// as the reason.
type revert string

func (r revert) Error() string { return string(r) }

func reverts(format string, args ...any) error { return revert(fmt.Sprintf(format, args...)) }
