package privtx

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// The vector of web3js-quorum 22.4.0 src/test-utils/txs.json: a contract
// creation for privateFor, with v for chain 2018, and the key (a
// well-known Besu development key, of no value) that the client's test
// signs it with again before it checks the sender. The stored signature
// is not that key's: the client itself recovers vectorStoredSender from
// it, and signing again gives v, r and s of vectorResigned*. The hashes
// and these values were cross-checked by running the client's
// PrivateTransaction (ethereumjs-util 6.2.1, rlp 2.2.7) on the vector.
const (
	vectorRLP         = "0xf9026b808203e8832dc6c08080b901cb608060405234801561001057600080fd5b5060008054600160a060020a03191633179055610199806100326000396000f3fe6080604052600436106100565763ffffffff7c01000000000000000000000000000000000000000000000000000000006000350416633fa4f245811461005b5780636057361d1461008257806367e404ce146100ae575b600080fd5b34801561006757600080fd5b506100706100ec565b60408051918252519081900360200190f35b34801561008e57600080fd5b506100ac600480360360208110156100a557600080fd5b50356100f2565b005b3480156100ba57600080fd5b506100c3610151565b6040805173ffffffffffffffffffffffffffffffffffffffff9092168252519081900360200190f35b60025490565b604080513381526020810183905281517fc9db20adedc6cf2b5d25252b101ab03e124902a73fcb12b753f3d1aaa2d8f9f5929181900390910190a16002556001805473ffffffffffffffffffffffffffffffffffffffff191633179055565b60015473ffffffffffffffffffffffffffffffffffffffff169056fea165627a7a72305820c7f729cb24e05c221f5aa913700793994656f233fe2ce3b9fd9a505ea17e8d8a0029820fe8a0ecf50d295e2d574c0d6ca1025caaeafabd21e1ec479609dddf00a45151625792a049e96d46b82f0019aa2b28a50856b2117941db2367e449c4eb531b4933e479f0a0035695b4cc4b0941e60551d7a19cf30603db5bfc23e5ac43a56f57f25f75486ae1a02a8d9b56a0fe9cd94d60be4413bcb721d3a7be27ed8e28b3a6346df874ee141b8a72657374726963746564"
	vectorData        = "0x608060405234801561001057600080fd5b5060008054600160a060020a03191633179055610199806100326000396000f3fe6080604052600436106100565763ffffffff7c01000000000000000000000000000000000000000000000000000000006000350416633fa4f245811461005b5780636057361d1461008257806367e404ce146100ae575b600080fd5b34801561006757600080fd5b506100706100ec565b60408051918252519081900360200190f35b34801561008e57600080fd5b506100ac600480360360208110156100a557600080fd5b50356100f2565b005b3480156100ba57600080fd5b506100c3610151565b6040805173ffffffffffffffffffffffffffffffffffffffff9092168252519081900360200190f35b60025490565b604080513381526020810183905281517fc9db20adedc6cf2b5d25252b101ab03e124902a73fcb12b753f3d1aaa2d8f9f5929181900390910190a16002556001805473ffffffffffffffffffffffffffffffffffffffff191633179055565b60015473ffffffffffffffffffffffffffffffffffffffff169056fea165627a7a72305820c7f729cb24e05c221f5aa913700793994656f233fe2ce3b9fd9a505ea17e8d8a0029"
	vectorKey         = "8f2a55949038a9610f50fb23b5883af3b4ecb3c3bb792cbcefbd1542c692be63"
	vectorSender      = "0xfe3b557e8fb62b89f4916b721be55ceb828dbd73"
	vectorPrivateFrom = "A1aVtMxLCUHmBVHXoZzzBgPbW/wj5axDpW9X8l91SGo="
	vectorPrivateFor  = "Ko2bVqD+nNlNYL5EE7y3IdOnviftjiizpjRt+HTuFBs="
	vectorR           = "0xecf50d295e2d574c0d6ca1025caaeafabd21e1ec479609dddf00a45151625792"
	vectorS           = "0x49e96d46b82f0019aa2b28a50856b2117941db2367e449c4eb531b4933e479f0"
	// vectorHash is the client's hash() of the vector: keccak256 of its bytes.
	vectorHash = "0x89639aa9601e972d1ff226553362b7335c60378d3486b23d221ad1517c49ccfa"
	// vectorStoredSender is what the client's getSenderAddress answers
	// for the stored signature.
	vectorStoredSender = "0xbefab0874f356821ce5dadaaec3b7bfd7572d176"
	// The client's signature of the vector's fields with vectorKey for
	// chain 2018, and its hash() of the signed transaction.
	vectorResignedV    = 0x0fe7
	vectorResignedR    = "0x903e615a0cd2d08e1e4bb419d8ac32b9ac155d3e1fa6ba1a599615e40038ebdb"
	vectorResignedS    = "0x59ed31431d16fb9206cfaf40ed6e9164c94a2fa1a727bc93ba0fb206cefeb51f"
	vectorResignedHash = "0xfdc6b53f0fb6d12fd1a57bb00380ed260a8c4f4a9dc29c1749c4e1a70de529bb"
)

var vectorChainID = big.NewInt(2018)

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorTx(t testing.TB) (*Tx, []byte) {
	t.Helper()
	raw := hexutil.MustDecode(vectorRLP)
	tx, err := Decode(raw)
	if err != nil {
		t.Fatalf("Decode(vector): %v", err)
	}
	return tx, raw
}

func TestDecodeVector(t *testing.T) {
	tx, raw := vectorTx(t)
	if tx.Nonce != 0 || tx.GasPrice.Cmp(big.NewInt(0x03e8)) != 0 || tx.Gas != 0x2dc6c0 || tx.To != nil || tx.Value.Sign() != 0 {
		t.Errorf("execution fields: nonce %d gasPrice %v gas %d to %v value %v", tx.Nonce, tx.GasPrice, tx.Gas, tx.To, tx.Value)
	}
	if !bytes.Equal(tx.Data, hexutil.MustDecode(vectorData)) {
		t.Error("data differs from the vector's")
	}
	if tx.V.Cmp(big.NewInt(0x0fe8)) != 0 || tx.R.Cmp(hexutil.MustDecodeBig(vectorR)) != 0 || tx.S.Cmp(hexutil.MustDecodeBig(vectorS)) != 0 {
		t.Errorf("signature: v %#x r %#x s %#x", tx.V, tx.R, tx.S)
	}
	if !bytes.Equal(tx.PrivateFrom, b64(t, vectorPrivateFrom)) {
		t.Errorf("privateFrom %s", base64.StdEncoding.EncodeToString(tx.PrivateFrom))
	}
	if len(tx.PrivateFor) != 1 || !bytes.Equal(tx.PrivateFor[0], b64(t, vectorPrivateFor)) || tx.PrivacyGroupID != nil {
		t.Errorf("recipients: privateFor %x, privacyGroupId %x", tx.PrivateFor, tx.PrivacyGroupID)
	}
	if tx.Restriction != Restricted {
		t.Errorf("restriction %q", tx.Restriction)
	}

	enc, err := tx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, raw) {
		t.Fatalf("Encode(Decode(vector)) differs:\n got %x\nwant %x", enc, raw)
	}
	if got := tx.ChainID(); got == nil || got.Cmp(vectorChainID) != 0 {
		t.Errorf("ChainID() = %v, want 2018", got)
	}
	from, err := tx.Sender(vectorChainID)
	if err != nil {
		t.Fatal(err)
	}
	if from != common.HexToAddress(vectorStoredSender) {
		t.Errorf("Sender = %s, want %s (the client's answer)", from, vectorStoredSender)
	}
	if got := tx.Hash(); got != crypto.Keccak256Hash(raw) || got != common.HexToHash(vectorHash) {
		t.Errorf("Hash = %s, want keccak256 of the encoding %s (pinned %s)", got, crypto.Keccak256Hash(raw), vectorHash)
	}
	want := LegacyGroupID(b64(t, vectorPrivateFrom), [][]byte{b64(t, vectorPrivateFor)})
	if tx.GroupID() != want {
		t.Errorf("GroupID = %s, want the legacy id %s", tx.GroupID(), want)
	}
}

// TestSignReproducesVector signs the vector's fields again with its key,
// as the client's test does: the signature is deterministic (RFC 6979),
// so v, r, s, the bytes and the hash must be the client's, which checks
// the signing hash byte for byte.
func TestSignReproducesVector(t *testing.T) {
	tx, _ := vectorTx(t)
	tx.V, tx.R, tx.S = nil, nil, nil
	if _, err := tx.Encode(); err == nil || !errors.Is(err, ErrMalformed) {
		t.Fatalf("Encode of an unsigned transaction: %v, want ErrMalformed", err)
	}
	if err := SignTx(tx, vectorChainID, mustKey(t, vectorKey)); err != nil {
		t.Fatal(err)
	}
	want := replace(t, 6, enc(t, uint64(vectorResignedV)))
	items, err := rlp.SplitListValues(want)
	if err != nil {
		t.Fatal(err)
	}
	items[7] = enc(t, hexutil.MustDecodeBig(vectorResignedR))
	items[8] = enc(t, hexutil.MustDecodeBig(vectorResignedS))
	want = list(t, items...)
	got, err := tx.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("signed again, the encoding differs from the client's:\n got %x\nwant %x", got, want)
	}
	if tx.Hash() != common.HexToHash(vectorResignedHash) {
		t.Errorf("Hash = %s, want the client's %s", tx.Hash(), vectorResignedHash)
	}
	from, err := tx.Sender(vectorChainID)
	if err != nil {
		t.Fatal(err)
	}
	if from != common.HexToAddress(vectorSender) {
		t.Errorf("Sender = %s, want %s", from, vectorSender)
	}
}

func mustKey(t testing.TB, hexKey string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.HexToECDSA(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newTx is a transaction as web3js-quorum builds one: gas price 0, gas
// 3000000, value 0, restricted.
func newTx(to *common.Address, data []byte) *Tx {
	return &Tx{
		Nonce:       7,
		GasPrice:    new(big.Int),
		Gas:         3000000,
		To:          to,
		Value:       new(big.Int),
		Data:        data,
		PrivateFrom: bytes.Repeat([]byte{0xa1}, KeySize),
		Restriction: Restricted,
	}
}

func TestSignRoundTrip(t *testing.T) {
	key := mustKey(t, vectorKey)
	to := common.HexToAddress("0x00000000000000000000000000000000deadbeef")
	group := bytes.Repeat([]byte{0x5c}, KeySize)
	recipients := [][]byte{bytes.Repeat([]byte{0x01}, KeySize), bytes.Repeat([]byte{0xf0}, KeySize)}

	for _, c := range []struct {
		name  string
		tx    *Tx
		group common.Hash
	}{
		{"privateFor", func() *Tx { tx := newTx(&to, []byte{1, 2, 3}); tx.PrivateFor = recipients; return tx }(),
			LegacyGroupID(bytes.Repeat([]byte{0xa1}, KeySize), recipients)},
		{"privacyGroupId", func() *Tx { tx := newTx(nil, nil); tx.PrivacyGroupID = group; return tx }(),
			common.BytesToHash(group)},
	} {
		t.Run(c.name, func(t *testing.T) {
			chainID := big.NewInt(1337)
			if err := SignTx(c.tx, chainID, key); err != nil {
				t.Fatal(err)
			}
			raw, err := c.tx.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !sameTx(got, c.tx) {
				t.Fatalf("Decode(Encode(tx)) = %+v, want %+v", got, c.tx)
			}
			from, err := got.Sender(chainID)
			if err != nil {
				t.Fatal(err)
			}
			if want := crypto.PubkeyToAddress(key.PublicKey); from != want {
				t.Errorf("Sender = %s, want %s", from, want)
			}
			if got.ChainID().Cmp(chainID) != 0 {
				t.Errorf("ChainID = %v", got.ChainID())
			}
			if got.GroupID() != c.group {
				t.Errorf("GroupID = %s, want %s", got.GroupID(), c.group)
			}
			if got.Hash() != crypto.Keccak256Hash(raw) {
				t.Error("Hash is not keccak256 of the encoding")
			}
		})
	}
}

// sameTx compares every field of two transactions.
func sameTx(a, b *Tx) bool {
	eqBig := func(x, y *big.Int) bool { return orZero(x).Cmp(orZero(y)) == 0 }
	eqTo := (a.To == nil) == (b.To == nil) && (a.To == nil || *a.To == *b.To)
	eqFor := (a.PrivateFor == nil) == (b.PrivateFor == nil) && len(a.PrivateFor) == len(b.PrivateFor)
	for i := range a.PrivateFor {
		eqFor = eqFor && bytes.Equal(a.PrivateFor[i], b.PrivateFor[i])
	}
	return a.Nonce == b.Nonce && eqBig(a.GasPrice, b.GasPrice) && a.Gas == b.Gas && eqTo &&
		eqBig(a.Value, b.Value) && bytes.Equal(a.Data, b.Data) &&
		eqBig(a.V, b.V) && eqBig(a.R, b.R) && eqBig(a.S, b.S) &&
		bytes.Equal(a.PrivateFrom, b.PrivateFrom) && eqFor &&
		(a.PrivacyGroupID == nil) == (b.PrivacyGroupID == nil) && bytes.Equal(a.PrivacyGroupID, b.PrivacyGroupID) &&
		a.Restriction == b.Restriction
}

// vectorItems is the vector's list as its twelve encoded items.
func vectorItems(t testing.TB) [][]byte {
	t.Helper()
	items, err := rlp.SplitListValues(hexutil.MustDecode(vectorRLP))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != Items {
		t.Fatalf("vector has %d items", len(items))
	}
	return items
}

// list encodes already encoded items as one RLP list.
func list(t testing.TB, items ...[]byte) []byte {
	t.Helper()
	raw := make([]rlp.RawValue, len(items))
	for i, it := range items {
		raw[i] = it
	}
	b, err := rlp.EncodeToBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func enc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := rlp.EncodeToBytes(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replace is the vector with item i replaced by item.
func replace(t testing.TB, i int, item []byte) []byte {
	items := vectorItems(t)
	items[i] = item
	return list(t, items...)
}

func TestDecodeRefusals(t *testing.T) {
	items := vectorItems(t)
	raw := hexutil.MustDecode(vectorRLP)
	key31 := bytes.Repeat([]byte{7}, KeySize-1)
	key32 := bytes.Repeat([]byte{7}, KeySize)
	keys := func(n int) [][]byte {
		ks := make([][]byte, n)
		for i := range ks {
			ks[i] = key32
		}
		return ks
	}
	for _, c := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"13 items", list(t, append(append([][]byte{}, items...), enc(t, []byte{}))...), "13 items, want 12"},
		{"11 items", list(t, items[:11]...), "11 items, want 12"},
		{"privateFor and privacyGroupId both", list(t, append(append(append([][]byte{}, items[:11]...), enc(t, key32)), items[11])...), "13 items, want 12"},
		{"31-byte privateFrom", replace(t, 9, enc(t, key31)), "privateFrom: 31 bytes, want 32"},
		{"31-byte privateFor key", replace(t, 10, enc(t, [][]byte{key32, key31})), "privateFor[1]: 31 bytes, want 32"},
		{"31-byte privacyGroupId", replace(t, 10, enc(t, key31)), "privacyGroupId: 31 bytes, want 32"},
		{"empty privacyGroupId", replace(t, 10, enc(t, []byte{})), "privacyGroupId: 0 bytes, want 32"},
		{"empty privateFor", replace(t, 10, enc(t, [][]byte{})), "privateFor: empty list"},
		{"65 privateFor keys", replace(t, 10, enc(t, keys(MaxPrivateFor+1))), "privateFor: 65 keys, at most 64"},
		{"privateFor key as a list", replace(t, 10, enc(t, [][][]byte{{key32}})), "privateFor[0]: rlp: expected String or Byte"},
		{"nonce 0 as a zero byte", replace(t, 0, []byte{0x00}), "nonce: integer with leading zero bytes"},
		{"nonce in a one-byte string", replace(t, 0, []byte{0x81, 0x05}), "nonce: rlp: non-canonical size information"},
		{"nonce of 9 bytes", replace(t, 0, enc(t, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})), "nonce: 9 bytes, an integer of at most 8 bytes"},
		{"gasPrice with a leading zero", replace(t, 1, []byte{0x83, 0x00, 0x03, 0xe8}), "gasPrice: integer with leading zero bytes"},
		{"gasLimit with a leading zero", replace(t, 2, []byte{0x84, 0x00, 0x2d, 0xc6, 0xc0}), "gasLimit: integer with leading zero bytes"},
		{"value of 33 bytes", replace(t, 4, enc(t, bytes.Repeat([]byte{1}, 33))), "value: 33 bytes, an integer of at most 32 bytes"},
		{"v with a leading zero", replace(t, 6, []byte{0x83, 0x00, 0x0f, 0xe8}), "v: integer with leading zero bytes"},
		{"s of 33 bytes", replace(t, 8, enc(t, append([]byte{1}, hexutil.MustDecode(vectorS)...))), "s: 33 bytes, an integer of at most 32 bytes"},
		{"privateFor key in a long-form string", replace(t, 10, append([]byte{0xe2, 0xb8, 0x20}, bytes.Repeat([]byte{7}, 32)...)), "privateFor[0]: rlp: non-canonical size information"},
		{"to of 19 bytes", replace(t, 3, enc(t, bytes.Repeat([]byte{1}, 19))), "to: 19 bytes, want 20"},
		{"data as a list", replace(t, 5, enc(t, [][]byte{{1}})), "data: rlp: expected String or Byte"},
		{"v of 30", replace(t, 6, enc(t, uint64(30))), "v: 30, want 27 or 28"},
		{"restriction other", replace(t, 11, enc(t, "public")), `restriction: "public"`},
		{"trailing bytes", append(bytes.Clone(raw), 0x80), "1 trailing bytes after the RLP list"},
		{"not a list", enc(t, []byte("restricted")), "not an RLP list"},
		{"empty input", nil, "not an RLP list"},
		{"list longer than the input", raw[:len(raw)-1], "not an RLP list"},
		{"long-form size for a short list", append([]byte{0xf8, 0x03}, 0x80, 0x80, 0x80), "not an RLP list: rlp: non-canonical size information"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tx, err := Decode(c.raw)
			if err == nil {
				t.Fatalf("Decode accepted %x as %+v", c.raw, tx)
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Decode: %v\nwant ErrMalformed with %q", err, c.want)
			}
		})
	}
}

func TestDecodeRefusesTooLargeBeforeReading(t *testing.T) {
	tx := newTx(nil, make([]byte, MaxTxBytes))
	tx.PrivacyGroupID = bytes.Repeat([]byte{1}, KeySize)
	tx.V, tx.R, tx.S = big.NewInt(27), big.NewInt(1), big.NewInt(1)
	if _, err := tx.Encode(); !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("Encode of %d data bytes: %v, want ErrTooLarge", MaxTxBytes, err)
	}
	// A valid list prefix followed by garbage: only the size check can
	// refuse it before the RLP is read.
	raw := append([]byte{0xfa, 0x02, 0x00, 0x01}, make([]byte, MaxTxBytes)...)
	if _, err := Decode(raw); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode of %d bytes: %v, want ErrTooLarge", len(raw), err)
	}
	if err := SignTx(tx, big.NewInt(1), mustKey(t, vectorKey)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SignTx of an oversized transaction: %v, want ErrTooLarge", err)
	}
}

func TestEncodeRefusals(t *testing.T) {
	signed := func(mut func(*Tx)) *Tx {
		tx := newTx(nil, nil)
		tx.PrivateFor = [][]byte{bytes.Repeat([]byte{2}, KeySize)}
		tx.V, tx.R, tx.S = big.NewInt(2*1337+35), big.NewInt(1), big.NewInt(1)
		mut(tx)
		return tx
	}
	for _, c := range []struct {
		name string
		tx   *Tx
		want string
	}{
		{"privateFor and privacyGroupId both", signed(func(tx *Tx) { tx.PrivacyGroupID = bytes.Repeat([]byte{3}, KeySize) }), "both set"},
		{"neither", signed(func(tx *Tx) { tx.PrivateFor = nil }), "neither set"},
		{"31-byte privateFrom", signed(func(tx *Tx) { tx.PrivateFrom = tx.PrivateFrom[1:] }), "privateFrom: 31 bytes"},
		{"negative value", signed(func(tx *Tx) { tx.Value = big.NewInt(-1) }), "value: negative"},
		{"gasPrice of 257 bits", signed(func(tx *Tx) { tx.GasPrice = new(big.Int).Lsh(big.NewInt(1), 256) }), "gasPrice: 257 bits"},
		{"v of 36", signed(func(tx *Tx) { tx.V = big.NewInt(36) }), "v: 36"},
		{"restriction empty", signed(func(tx *Tx) { tx.Restriction = "" }), `restriction: ""`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.tx.Encode()
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Encode: %v\nwant ErrMalformed with %q", err, c.want)
			}
			if c.tx.Hash() != (common.Hash{}) {
				t.Error("Hash of a transaction Encode refuses is not zero")
			}
		})
	}
}

func TestSenderRefusals(t *testing.T) {
	n := crypto.S256().Params().N
	for _, c := range []struct {
		name    string
		mut     func(*Tx)
		chainID *big.Int
		is      error
		want    string
	}{
		{"another chain", func(*Tx) {}, big.NewInt(2019), ErrChainID, "signed for chain 2018, this chain is 2019"},
		{"no chain id given", func(*Tx) {}, nil, ErrChainID, "want a positive chain id"},
		{"v without chain id", func(tx *Tx) { tx.V = big.NewInt(28) }, vectorChainID, ErrChainID, "carries no chain id"},
		{"high s", func(tx *Tx) {
			// The same signature with s mirrored: valid for ecrecover with
			// the other recovery id, refused by EIP-2.
			tx.S = new(big.Int).Sub(n, tx.S)
			tx.V = new(big.Int).Sub(tx.V, big.NewInt(1)) // recovery id 1 -> 0
		}, vectorChainID, ErrSignature, "s: above secp256k1n/2"},
		{"zero r", func(tx *Tx) { tx.R = new(big.Int) }, vectorChainID, ErrSignature, "r, s: zero or not below the curve order"},
		{"r at the curve order", func(tx *Tx) { tx.R = new(big.Int).Set(n) }, vectorChainID, ErrSignature, "r, s: zero or not below the curve order"},
		{"malformed", func(tx *Tx) { tx.PrivateFrom = nil }, vectorChainID, ErrMalformed, "privateFrom: 0 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tx, _ := vectorTx(t)
			c.mut(tx)
			from, err := tx.Sender(c.chainID)
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Sender = %s, %v\nwant %v with %q", from, err, c.is, c.want)
			}
		})
	}

	// A changed field recovers another sender, never the signer.
	tx, _ := vectorTx(t)
	tx.PrivateFor[0][0] ^= 1
	if from, err := tx.Sender(vectorChainID); err == nil && from == common.HexToAddress(vectorSender) {
		t.Fatal("a changed privateFor key still recovers the signer")
	}
}

func TestSignTxRefusals(t *testing.T) {
	key := mustKey(t, vectorKey)
	tx := newTx(nil, nil) // no recipients
	if err := SignTx(tx, big.NewInt(1), key); !errors.Is(err, ErrMalformed) || tx.V != nil {
		t.Fatalf("SignTx without recipients: %v (v %v), want ErrMalformed and no signature", err, tx.V)
	}
	tx.PrivacyGroupID = bytes.Repeat([]byte{1}, KeySize)
	for _, id := range []*big.Int{nil, new(big.Int), big.NewInt(-1)} {
		if err := SignTx(tx, id, key); !errors.Is(err, ErrChainID) {
			t.Fatalf("SignTx for chain %v: %v, want ErrChainID", id, err)
		}
	}
}

func TestSigningHashForms(t *testing.T) {
	tx, _ := vectorTx(t)
	// With a chain id: v replaced, r and s empty; without: the three left out.
	items := vectorItems(t)
	with := append(append(append([][]byte{}, items[:6]...), enc(t, uint64(2018)), enc(t, []byte{}), enc(t, []byte{})), items[9:]...)
	if got, want := tx.SigningHash(vectorChainID), crypto.Keccak256Hash(list(t, with...)); got != want {
		t.Errorf("SigningHash(2018) = %s, want %s", got, want)
	}
	without := append(append([][]byte{}, items[:6]...), items[9:]...)
	if got, want := tx.SigningHash(nil), crypto.Keccak256Hash(list(t, without...)); got != want {
		t.Errorf("SigningHash(nil) = %s, want %s", got, want)
	}
}

func TestChainID(t *testing.T) {
	for _, c := range []struct {
		v    *big.Int
		want *big.Int
	}{
		{nil, nil}, {big.NewInt(27), nil}, {big.NewInt(28), nil}, {big.NewInt(36), nil},
		{big.NewInt(37), big.NewInt(1)}, {big.NewInt(38), big.NewInt(1)},
		{big.NewInt(4071), big.NewInt(2018)}, {big.NewInt(4072), big.NewInt(2018)},
	} {
		got := (&Tx{V: c.v}).ChainID()
		if (got == nil) != (c.want == nil) || got != nil && got.Cmp(c.want) != 0 {
			t.Errorf("v %v: ChainID() = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestLegacy(t *testing.T) {
	to := common.HexToAddress("0x1234")
	tx := newTx(&to, []byte{9, 8})
	tx.GasPrice = big.NewInt(5)
	tx.Value = big.NewInt(6)
	lt := tx.Legacy()
	if lt.Nonce != 7 || lt.Gas != 3000000 || lt.GasPrice.Cmp(big.NewInt(5)) != 0 || lt.Value.Cmp(big.NewInt(6)) != 0 ||
		lt.To == nil || *lt.To != to || !bytes.Equal(lt.Data, []byte{9, 8}) || lt.V != nil || lt.R != nil || lt.S != nil {
		t.Fatalf("Legacy() = %+v", lt)
	}
	// It shares nothing with the transaction.
	lt.Data[0], lt.To[0] = 0, 0xff
	lt.Value.SetInt64(0)
	if tx.Data[0] != 9 || tx.To[0] != 0 || tx.Value.Int64() != 6 {
		t.Fatal("Legacy() shares memory with the transaction")
	}
}
