package privtx

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// Restriction values. Besu runs only restricted private transactions;
// the format carries both.
const (
	Restricted   = "restricted"
	Unrestricted = "unrestricted"
)

// Bounds of a private transaction (see the package documentation).
const (
	// MaxTxBytes bounds the encoding of one private transaction: 128 KiB,
	// the limit of a public one. Decode refuses larger input before it
	// reads a byte of it, Encode and SignTx refuse to make one.
	MaxTxBytes = 128 << 10
	// MaxPrivateFor bounds the recipients listed in privateFor.
	MaxPrivateFor = 64
	// KeySize is the size of privateFrom, of each privateFor key and of a
	// privacy group id.
	KeySize = 32
	// Items is the number of items of the RLP list.
	Items = 12

	maxIntBytes = 32 // gasPrice, value, v, r and s are at most 256 bits
)

// Errors of private transactions. Decode's and Encode's errors wrap
// ErrMalformed, and ErrTooLarge when the size is the reason; Sender's wrap
// ErrChainID or ErrSignature.
var (
	// ErrMalformed: bytes or fields that are not a private transaction.
	ErrMalformed = errors.New("malformed private transaction")
	// ErrTooLarge: an encoding above MaxTxBytes.
	ErrTooLarge = fmt.Errorf("private transaction larger than %d bytes", MaxTxBytes)
	// ErrChainID: a signature for another chain, or without a chain id.
	ErrChainID = errors.New("private transaction chain id")
	// ErrSignature: a signature that names no sender: s above
	// secp256k1n/2, r or s out of range, or no key recovers from it.
	ErrSignature = errors.New("invalid private transaction signature")
)

// Tx is a private transaction in Besu's format. Decode makes one from
// bytes, Encode writes it back; a Tx from Decode has non-nil GasPrice,
// Value, V, R and S, and exactly one of PrivateFor and PrivacyGroupID.
// Its byte slices are its own (Decode copies them out of the input).
type Tx struct {
	Nonce    uint64
	GasPrice *big.Int
	Gas      uint64
	To       *common.Address // nil: contract creation
	Value    *big.Int
	Data     []byte // nil when empty
	V, R, S  *big.Int

	PrivateFrom    []byte   // KeySize bytes
	PrivateFor     [][]byte // each KeySize bytes; nil when PrivacyGroupID is set
	PrivacyGroupID []byte   // KeySize bytes, or nil when PrivateFor is set
	Restriction    string   // Restricted or Unrestricted
}

// malformed makes an error that wraps ErrMalformed.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// Decode reads one private transaction from raw, strictly: raw is one
// canonical RLP list of exactly Items items and nothing after it, every
// integer without leading zero bytes, every length as the package
// documentation gives it. Each error names the field at fault. What
// Decode accepts, Encode writes back to the same bytes.
func Decode(raw []byte) (*Tx, error) {
	if len(raw) > MaxTxBytes {
		return nil, fmt.Errorf("%w: %d bytes: %w", ErrMalformed, len(raw), ErrTooLarge)
	}
	content, rest, err := rlp.SplitList(raw)
	if err != nil {
		return nil, malformed("not an RLP list: %v", err)
	}
	if len(rest) != 0 {
		return nil, malformed("%d trailing bytes after the RLP list", len(rest))
	}
	n, err := countItems(content, itemName)
	if err != nil {
		return nil, err
	}
	if n != Items {
		return nil, malformed("%d items, want %d (nonce, gasPrice, gasLimit, to, value, data, v, r, s, privateFrom, privateFor or privacyGroupId, restriction)", n, Items)
	}

	t := new(Tx)
	b := content
	if t.Nonce, b, err = splitUint(b, "nonce"); err != nil {
		return nil, err
	}
	if t.GasPrice, b, err = splitBig(b, "gasPrice"); err != nil {
		return nil, err
	}
	if t.Gas, b, err = splitUint(b, "gasLimit"); err != nil {
		return nil, err
	}
	var to []byte
	if to, b, err = splitBytes(b, "to"); err != nil {
		return nil, err
	}
	switch len(to) {
	case 0:
	case common.AddressLength:
		a := common.BytesToAddress(to)
		t.To = &a
	default:
		return nil, malformed("to: %d bytes, want %d, or none for a contract creation", len(to), common.AddressLength)
	}
	if t.Value, b, err = splitBig(b, "value"); err != nil {
		return nil, err
	}
	var data []byte
	if data, b, err = splitBytes(b, "data"); err != nil {
		return nil, err
	}
	if len(data) > 0 {
		t.Data = bytes.Clone(data)
	}
	if t.V, b, err = splitBig(b, "v"); err != nil {
		return nil, err
	}
	if t.R, b, err = splitBig(b, "r"); err != nil {
		return nil, err
	}
	if t.S, b, err = splitBig(b, "s"); err != nil {
		return nil, err
	}
	var from []byte
	if from, b, err = splitBytes(b, "privateFrom"); err != nil {
		return nil, err
	}
	t.PrivateFrom = bytes.Clone(from)

	kind, recipients, b, err := rlp.Split(b)
	if err != nil {
		return nil, malformed("privateFor or privacyGroupId: %v", err)
	}
	if kind == rlp.List {
		if t.PrivateFor, err = splitKeys(recipients); err != nil {
			return nil, err
		}
	} else {
		t.PrivacyGroupID = bytes.Clone(recipients)
	}

	var restriction []byte
	if restriction, _, err = splitBytes(b, "restriction"); err != nil {
		return nil, err
	}
	t.Restriction = string(restriction)

	if err := t.validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// splitKeys reads the content of the privateFor list.
func splitKeys(b []byte) ([][]byte, error) {
	n, err := countItems(b, func(i int) string { return fmt.Sprintf("privateFor[%d]", i) })
	if err != nil {
		return nil, err
	}
	if n > MaxPrivateFor {
		return nil, malformed("privateFor: %d keys, at most %d", n, MaxPrivateFor)
	}
	keys := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		var k []byte
		if k, b, err = splitBytes(b, fmt.Sprintf("privateFor[%d]", i)); err != nil {
			return nil, err
		}
		keys = append(keys, bytes.Clone(k))
	}
	return keys, nil
}

// itemNames name the items of the list, in order.
var itemNames = [Items]string{"nonce", "gasPrice", "gasLimit", "to", "value", "data", "v", "r", "s", "privateFrom", "privateFor or privacyGroupId", "restriction"}

func itemName(i int) string {
	if i < Items {
		return itemNames[i]
	}
	return fmt.Sprintf("item %d", i)
}

// countItems counts the items of a list's content, naming the first item
// that is not canonical RLP.
func countItems(content []byte, name func(int) string) (int, error) {
	n := 0
	for b := content; len(b) > 0; n++ {
		_, _, rest, err := rlp.Split(b)
		if err != nil {
			return 0, malformed("%s: %v", name(n), err)
		}
		b = rest
	}
	return n, nil
}

// splitBytes reads one RLP string, refusing a list.
func splitBytes(b []byte, field string) (content, rest []byte, err error) {
	content, rest, err = rlp.SplitString(b)
	if err != nil {
		return nil, nil, malformed("%s: %v", field, err)
	}
	return content, rest, nil
}

// splitUint reads a canonical unsigned integer of at most 64 bits.
func splitUint(b []byte, field string) (uint64, []byte, error) {
	content, rest, err := splitBytes(b, field)
	if err != nil {
		return 0, nil, err
	}
	if len(content) > 8 {
		return 0, nil, malformed("%s: %d bytes, an integer of at most 8 bytes", field, len(content))
	}
	if len(content) > 0 && content[0] == 0 {
		return 0, nil, malformed("%s: integer with leading zero bytes", field)
	}
	return new(big.Int).SetBytes(content).Uint64(), rest, nil
}

// splitBig reads a canonical unsigned integer of at most 256 bits.
func splitBig(b []byte, field string) (*big.Int, []byte, error) {
	content, rest, err := splitBytes(b, field)
	if err != nil {
		return nil, nil, err
	}
	if len(content) > maxIntBytes {
		return nil, nil, malformed("%s: %d bytes, an integer of at most %d bytes", field, len(content), maxIntBytes)
	}
	if len(content) > 0 && content[0] == 0 {
		return nil, nil, malformed("%s: integer with leading zero bytes", field)
	}
	return new(big.Int).SetBytes(content), rest, nil
}

// Encode writes t in Besu's format. It refuses, with the errors of
// Decode, a transaction that Decode would refuse: an unsigned one, both or
// neither of PrivateFor and PrivacyGroupID, a key of another length, an
// encoding above MaxTxBytes. Nil GasPrice and Value are zero.
func (t *Tx) Encode() ([]byte, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	raw := t.encode(nil)
	if len(raw) > MaxTxBytes {
		return nil, fmt.Errorf("%w: %d bytes: %w", ErrMalformed, len(raw), ErrTooLarge)
	}
	return raw, nil
}

// encode writes the twelve items of t, or those of its signing hash when
// chainID is not nil. The fields must be valid.
func (t *Tx) encode(chainID *big.Int) []byte {
	w := rlp.NewEncoderBuffer(nil)
	l := w.List()
	w.WriteUint64(t.Nonce)
	w.WriteBigInt(orZero(t.GasPrice))
	w.WriteUint64(t.Gas)
	if t.To != nil {
		w.WriteBytes(t.To[:])
	} else {
		w.WriteBytes(nil)
	}
	w.WriteBigInt(orZero(t.Value))
	w.WriteBytes(t.Data)
	switch {
	case chainID == nil:
		w.WriteBigInt(t.V)
		w.WriteBigInt(t.R)
		w.WriteBigInt(t.S)
	case chainID.Sign() > 0:
		w.WriteBigInt(chainID)
		w.WriteBytes(nil)
		w.WriteBytes(nil)
	default:
		// Besu's hash of a transaction without a chain id leaves out the
		// three items.
	}
	w.WriteBytes(t.PrivateFrom)
	if t.PrivacyGroupID != nil {
		w.WriteBytes(t.PrivacyGroupID)
	} else {
		k := w.List()
		for _, key := range t.PrivateFor {
			w.WriteBytes(key)
		}
		w.ListEnd(k)
	}
	w.WriteString(t.Restriction)
	w.ListEnd(l)
	return w.ToBytes()
}

func orZero(x *big.Int) *big.Int {
	if x == nil {
		return new(big.Int)
	}
	return x
}

// validate checks every field of t as Decode does.
func (t *Tx) validate() error {
	if err := t.validateBody(); err != nil {
		return err
	}
	if t.V == nil || t.R == nil || t.S == nil {
		return malformed("v, r, s: unsigned; sign it with SignTx first")
	}
	for _, f := range []struct {
		name string
		x    *big.Int
	}{{"v", t.V}, {"r", t.R}, {"s", t.S}} {
		if err := checkUint256(f.name, f.x); err != nil {
			return err
		}
	}
	if !t.V.IsUint64() || t.V.Uint64() != 27 && t.V.Uint64() != 28 {
		if t.V.Cmp(big.NewInt(37)) < 0 {
			return malformed("v: %v, want 27 or 28, or recovery id + chain id × 2 + 35 (EIP-155)", t.V)
		}
	}
	return nil
}

// validateBody checks every field of t but the signature.
func (t *Tx) validateBody() error {
	if err := checkUint256("gasPrice", t.GasPrice); err != nil {
		return err
	}
	if err := checkUint256("value", t.Value); err != nil {
		return err
	}
	if len(t.PrivateFrom) != KeySize {
		return malformed("privateFrom: %d bytes, want %d", len(t.PrivateFrom), KeySize)
	}
	switch {
	case t.PrivateFor != nil && t.PrivacyGroupID != nil:
		return malformed("privateFor and privacyGroupId: both set; name the recipients one way")
	case t.PrivacyGroupID != nil:
		if len(t.PrivacyGroupID) != KeySize {
			return malformed("privacyGroupId: %d bytes, want %d", len(t.PrivacyGroupID), KeySize)
		}
	case t.PrivateFor != nil:
		if len(t.PrivateFor) == 0 {
			return malformed("privateFor: empty list; name at least one recipient, or give privacyGroupId")
		}
		if len(t.PrivateFor) > MaxPrivateFor {
			return malformed("privateFor: %d keys, at most %d", len(t.PrivateFor), MaxPrivateFor)
		}
		for i, k := range t.PrivateFor {
			if len(k) != KeySize {
				return malformed("privateFor[%d]: %d bytes, want %d", i, len(k), KeySize)
			}
		}
	default:
		return malformed("privateFor and privacyGroupId: neither set; name the recipients")
	}
	if t.Restriction != Restricted && t.Restriction != Unrestricted {
		return malformed("restriction: %q, want %q or %q", t.Restriction, Restricted, Unrestricted)
	}
	return nil
}

// checkUint256 refuses a negative integer or one above 256 bits; nil is zero.
func checkUint256(field string, x *big.Int) error {
	if x == nil {
		return nil
	}
	if x.Sign() < 0 {
		return malformed("%s: negative", field)
	}
	if x.BitLen() > 8*maxIntBytes {
		return malformed("%s: %d bits, at most %d", field, x.BitLen(), 8*maxIntBytes)
	}
	return nil
}

// Hash is Besu's private transaction hash: keccak256 of the encoding. It
// is the zero hash for a transaction that Encode refuses.
func (t *Tx) Hash() common.Hash {
	raw, err := t.Encode()
	if err != nil {
		return common.Hash{}
	}
	return crypto.Keccak256Hash(raw)
}

// GroupID is the privacy group the transaction is for: PrivacyGroupID,
// or, for a transaction that lists privateFor, the legacy group id of
// PrivateFrom and PrivateFor.
func (t *Tx) GroupID() common.Hash {
	if t.PrivacyGroupID != nil {
		return common.BytesToHash(t.PrivacyGroupID)
	}
	return LegacyGroupID(t.PrivateFrom, t.PrivateFor)
}

// Legacy is what the transaction runs in its group's EVM: nonce, gas
// price, gas, recipient, value and data, with no signature (the sender is
// recovered by Sender). It shares nothing with t.
func (t *Tx) Legacy() *types.LegacyTx {
	lt := &types.LegacyTx{
		Nonce:    t.Nonce,
		GasPrice: new(big.Int).Set(orZero(t.GasPrice)),
		Gas:      t.Gas,
		Value:    new(big.Int).Set(orZero(t.Value)),
		Data:     bytes.Clone(t.Data),
	}
	if t.To != nil {
		to := *t.To
		lt.To = &to
	}
	return lt
}
