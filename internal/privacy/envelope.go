package privacy

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/crypto"
)

// Scheme is how an envelope wraps its content key to each recipient; its
// value is the envelope's version byte. A network chooses one in its
// genesis (chain.Spec.PrivacyEnvelope); a genesis without it means hybrid,
// and charter init writes hybrid-session.
type Scheme byte

// The schemes.
const (
	// SchemeHybrid wraps with X25519 and ML-KEM-768 together (version 1):
	// the payload stays secret if either falls.
	SchemeHybrid Scheme = 1
	// SchemeX25519 wraps with X25519 alone (version 2): an entry is 88
	// bytes instead of 1,176 and costs no ML-KEM encapsulation or
	// decapsulation, but a payload recorded today is open to whoever can
	// later solve X25519's discrete logarithm (a quantum computer).
	SchemeX25519 Scheme = 2
	// SchemeHybridSession is SchemeHybrid with a salt in each entry
	// (version 3): the key that wraps an entry's content key is derived
	// from the salt and a secret shared with the recipient, so that a
	// Sealer may reuse one X25519 key and ML-KEM encapsulation per
	// recipient for many envelopes (a session) and a recipient's key
	// remembers what it derived. An entry is 1,192 bytes; sealing and
	// opening within a session cost no public-key operation.
	SchemeHybridSession Scheme = 3
	// SchemeX25519Session is SchemeX25519 with the salt and the
	// sessions of SchemeHybridSession (version 4): an entry is 104 bytes.
	SchemeX25519Session Scheme = 4
)

// kem reports whether the scheme's entries carry an ML-KEM-768 ciphertext.
func (s Scheme) kem() bool { return s == SchemeHybrid || s == SchemeHybridSession }

// session reports whether the scheme's entries carry a salt, their
// key-encryption key derived from it and a session secret.
func (s Scheme) session() bool { return s == SchemeHybridSession || s == SchemeX25519Session }

// Schemes lists every scheme, by version.
var Schemes = []Scheme{SchemeHybrid, SchemeX25519, SchemeHybridSession, SchemeX25519Session}

// String is the scheme's name in the genesis ("hybrid", "x25519",
// "hybrid-session", "x25519-session").
func (s Scheme) String() string {
	switch s {
	case SchemeHybrid:
		return "hybrid"
	case SchemeX25519:
		return "x25519"
	case SchemeHybridSession:
		return "hybrid-session"
	case SchemeX25519Session:
		return "x25519-session"
	}
	return fmt.Sprintf("scheme(%d)", byte(s))
}

// ParseScheme reads a scheme's name; "" is hybrid, what a genesis that
// names none has always meant.
func ParseScheme(name string) (Scheme, error) {
	if name == "" {
		return SchemeHybrid, nil
	}
	for _, s := range Schemes {
		if s.String() == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("privacy envelope scheme %q: want hybrid-session, hybrid, x25519-session or x25519", name)
}

// entrySize is the size of one recipient's entry in an envelope of
// scheme s (0 for an unknown scheme).
func (s Scheme) entrySize() int {
	switch s {
	case SchemeHybrid:
		return EntrySize
	case SchemeX25519:
		return EntrySizeX25519
	case SchemeHybridSession:
		return EntrySize + SaltSize
	case SchemeX25519Session:
		return EntrySizeX25519 + SaltSize
	}
	return 0
}

// Bounds and layout of an envelope (see the package documentation).
const (
	// EnvelopeVersion is the version Seal writes: SchemeHybrid's.
	// ParseEnvelope reads it and SchemeX25519's.
	EnvelopeVersion = byte(SchemeHybrid)
	// MaxRecipients bounds the recipients of one envelope.
	MaxRecipients = 64
	// MaxPayloadBytes bounds the payload of one envelope: 1 MiB.
	MaxPayloadBytes = 1 << 20
	// EntrySize is the size of one recipient's entry (hybrid scheme).
	EntrySize = KeyIDSize + X25519KeySize + mlkem.CiphertextSize768 + wrappedKeySize
	// EntrySizeX25519 is the size of one recipient's entry of the X25519
	// scheme: no ML-KEM ciphertext.
	EntrySizeX25519 = KeyIDSize + X25519KeySize + wrappedKeySize
	// SaltSize is the size of the salt in an entry of the session schemes.
	SaltSize = 16
	// MaxEnvelopeBytes is the size of the largest envelope: MaxRecipients
	// entries around a payload of MaxPayloadBytes.
	MaxEnvelopeBytes = headerSize + MaxRecipients*(EntrySize+SaltSize) + commitmentSize + lengthSize + MaxPayloadBytes + tagSize

	headerSize     = 2 // version, count
	commitmentSize = 32
	lengthSize     = 4
	tagSize        = 16
	contentKeySize = 32
	wrappedKeySize = contentKeySize + tagSize
)

// Errors of envelopes. ParseEnvelope's errors wrap ErrEnvelope, and
// ErrEnvelopeVersion, ErrNoRecipients, ErrTooManyRecipients or
// ErrPayloadTooLarge where one of those is the reason.
var (
	// ErrEnvelope: bytes that are not a well-formed envelope.
	ErrEnvelope = errors.New("malformed privacy envelope")
	// ErrEnvelopeVersion: an envelope of a version this build does not read.
	ErrEnvelopeVersion = errors.New("unknown privacy envelope version")
	// ErrNoRecipients: an envelope for nobody.
	ErrNoRecipients = errors.New("no recipients")
	// ErrTooManyRecipients: more than MaxRecipients recipients.
	ErrTooManyRecipients = fmt.Errorf("more than %d recipients", MaxRecipients)
	// ErrDuplicateRecipient: Seal was given one key twice (or two keys of
	// one KeyID).
	ErrDuplicateRecipient = errors.New("recipient listed twice")
	// ErrPayloadTooLarge: a payload above MaxPayloadBytes.
	ErrPayloadTooLarge = fmt.Errorf("payload larger than %d bytes", MaxPayloadBytes)
	// ErrNotRecipient: the envelope has no entry for the key.
	ErrNotRecipient = errors.New("not a recipient of the envelope")
	// ErrOpen: the envelope names the key but does not open with it: a
	// byte of it was changed, or its entry was not sealed to this key.
	ErrOpen = errors.New("privacy envelope does not open")
)

// Entry is one recipient's part of an envelope.
type Entry struct {
	KeyID         KeyID
	Ephemeral     [X25519KeySize]byte
	KEMCiphertext [mlkem.CiphertextSize768]byte // zero, and not encoded, in the X25519 schemes
	Salt          [SaltSize]byte                // zero, and not encoded, but in the session schemes
	WrappedKey    [wrappedKeySize]byte
}

// Envelope is a decoded envelope. Marshal writes it back.
type Envelope struct {
	Version    byte
	Entries    []Entry // ascending KeyID
	Commitment [commitmentSize]byte
	Ciphertext []byte // the payload's AES-256-GCM ciphertext and tag
}

// SealedSize is the size of the envelope Seal makes for n recipients and
// a payload of payloadLen bytes.
func SealedSize(n, payloadLen int) int { return SchemeHybrid.SealedSize(n, payloadLen) }

// SealedSize is the size of the envelope SealWith(s) makes for n
// recipients and a payload of payloadLen bytes.
func (s Scheme) SealedSize(n, payloadLen int) int {
	return headerSize + n*s.entrySize() + commitmentSize + lengthSize + payloadLen + tagSize
}

// Scheme is the scheme the envelope was sealed with.
func (e *Envelope) Scheme() Scheme { return Scheme(e.Version) }

// Recipients lists the KeyIDs the envelope is sealed to, ascending.
func (e *Envelope) Recipients() []KeyID {
	out := make([]KeyID, len(e.Entries))
	for i := range e.Entries {
		out[i] = e.Entries[i].KeyID
	}
	return out
}

// PayloadSize is the size of the sealed payload.
func (e *Envelope) PayloadSize() int { return max(len(e.Ciphertext)-tagSize, 0) }

// Marshal encodes the envelope.
func (e *Envelope) Marshal() []byte {
	out := make([]byte, 0, e.Scheme().SealedSize(len(e.Entries), e.PayloadSize()))
	out = append(out, e.Version, byte(len(e.Entries)))
	for i := range e.Entries {
		out = appendEntry(out, e.Scheme(), &e.Entries[i])
	}
	out = append(out, e.Commitment[:]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(e.Ciphertext)))
	return append(out, e.Ciphertext...)
}

func appendEntry(out []byte, s Scheme, en *Entry) []byte {
	out = append(out, en.KeyID[:]...)
	out = append(out, en.Ephemeral[:]...)
	if s.kem() {
		out = append(out, en.KEMCiphertext[:]...)
	}
	if s.session() {
		out = append(out, en.Salt[:]...)
	}
	return append(out, en.WrappedKey[:]...)
}

// ParseEnvelope decodes an envelope, checking every length against b
// before it allocates: a known version (a Scheme), 1 to MaxRecipients entries in
// strictly ascending KeyID order, a ciphertext of at most
// MaxPayloadBytes plus its tag that ends b. Errors wrap ErrEnvelope.
func ParseEnvelope(b []byte) (*Envelope, error) {
	l, err := parseLayout(b)
	if err != nil {
		return nil, err
	}
	e := &Envelope{Version: b[0], Entries: make([]Entry, l.n)}
	p := b[headerSize:]
	for i := range e.Entries {
		en := &e.Entries[i]
		p = p[copy(en.KeyID[:], p):]
		p = p[copy(en.Ephemeral[:], p):]
		if l.scheme.kem() {
			p = p[copy(en.KEMCiphertext[:], p):]
		}
		if l.scheme.session() {
			p = p[copy(en.Salt[:], p):]
		}
		p = p[copy(en.WrappedKey[:], p):]
	}
	p = p[copy(e.Commitment[:], p):]
	e.Ciphertext = bytes.Clone(p[lengthSize:])
	return e, nil
}

// layout is where the parts of a well-formed envelope lie: its scheme,
// its number of entries and where its content (commitment, length and
// ciphertext) begins.
type layout struct {
	scheme  Scheme
	n       int
	content int
}

// parseLayout checks envelope b as ParseEnvelope does, without copying
// any of it.
func parseLayout(b []byte) (layout, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrEnvelope}, args...)...)
	}
	switch {
	case len(b) > MaxEnvelopeBytes:
		return layout{}, bad("%d bytes, at most %d", len(b), MaxEnvelopeBytes)
	case len(b) < headerSize:
		return layout{}, bad("truncated: %d bytes", len(b))
	case Scheme(b[0]).entrySize() == 0:
		return layout{}, bad("%w %d (this build reads 1 to %d)", ErrEnvelopeVersion, b[0], len(Schemes))
	}
	scheme := Scheme(b[0])
	n := int(b[1])
	switch {
	case n == 0:
		return layout{}, bad("%w", ErrNoRecipients)
	case n > MaxRecipients:
		return layout{}, bad("%d recipients: %w", n, ErrTooManyRecipients)
	}
	fixed := scheme.SealedSize(n, 0) - tagSize
	if len(b) < fixed {
		return layout{}, bad("truncated: %d bytes, %d recipients need %d before the payload", len(b), n, fixed)
	}
	ctLen := int(binary.BigEndian.Uint32(b[fixed-lengthSize : fixed]))
	switch {
	case ctLen < tagSize:
		return layout{}, bad("ciphertext of %d bytes, shorter than its tag", ctLen)
	case ctLen > MaxPayloadBytes+tagSize:
		return layout{}, bad("ciphertext of %d bytes: %w", ctLen, ErrPayloadTooLarge)
	case len(b)-fixed != ctLen:
		return layout{}, bad("ciphertext length %d but %d bytes follow", ctLen, len(b)-fixed)
	}
	l := layout{scheme: scheme, n: n, content: fixed - lengthSize - commitmentSize}
	for i := 1; i < n; i++ {
		if bytes.Compare(l.keyID(b, i-1), l.keyID(b, i)) >= 0 {
			return layout{}, bad("entry %d: key ids out of order or repeated", i)
		}
	}
	return l, nil
}

// keyID is the KeyID of entry i of envelope b, in place.
func (l layout) keyID(b []byte, i int) []byte {
	off := headerSize + i*l.scheme.entrySize()
	return b[off : off+len(KeyID{})]
}

// SealedTo reports whether well-formed envelope b has an entry for id;
// errors are ParseEnvelope's. It copies nothing.
func SealedTo(b []byte, id KeyID) (bool, error) {
	l, err := parseLayout(b)
	if err != nil {
		return false, err
	}
	for i := range l.n {
		if bytes.Equal(l.keyID(b, i), id[:]) {
			return true, nil
		}
	}
	return false, nil
}

// Seal encrypts payload to recipients (the sender's own key among them,
// normally, so that its nodes read what they sent): once under a random
// content key, which is wrapped to each recipient with the hybrid KEM.
// It refuses no recipients, more than MaxRecipients, a key given twice
// and a payload above MaxPayloadBytes.
func Seal(recipients []*PublicKey, payload []byte) ([]byte, error) {
	return SealWith(SchemeHybrid, recipients, payload)
}

// SealWith is Seal with the content key wrapped by scheme s. In the
// session schemes every entry is a session of its own (a Sealer reuses
// them).
func SealWith(s Scheme, recipients []*PublicKey, payload []byte) ([]byte, error) {
	return seal(s, recipients, payload, func(pk *PublicKey, ck []byte) (*Entry, error) { return wrap(s, pk, ck) })
}

func seal(s Scheme, recipients []*PublicKey, payload []byte, wrapTo func(*PublicKey, []byte) (*Entry, error)) ([]byte, error) {
	switch {
	case s.entrySize() == 0:
		return nil, fmt.Errorf("%w: %s", ErrEnvelopeVersion, s)
	case len(recipients) == 0:
		return nil, ErrNoRecipients
	case len(recipients) > MaxRecipients:
		return nil, fmt.Errorf("%d recipients: %w", len(recipients), ErrTooManyRecipients)
	case len(payload) > MaxPayloadBytes:
		return nil, fmt.Errorf("%d bytes: %w", len(payload), ErrPayloadTooLarge)
	}
	type rcpt struct {
		id  KeyID
		key *PublicKey
	}
	rs := make([]rcpt, len(recipients))
	for i, k := range recipients {
		if k == nil || len(k.raw) != PublicKeySize {
			return nil, fmt.Errorf("recipient %d: %w: nil or not from ParsePublicKey", i, ErrPublicKey)
		}
		rs[i] = rcpt{k.KeyID(), k}
	}
	// Ascending KeyID order: one envelope has one encoding, and the order
	// does not tell who listed whom first.
	slices.SortFunc(rs, func(a, b rcpt) int { return bytes.Compare(a.id[:], b.id[:]) })
	for i := 1; i < len(rs); i++ {
		if rs[i].id == rs[i-1].id {
			return nil, fmt.Errorf("%w: key %s (key id %s)", ErrDuplicateRecipient, rs[i].key.Identity(), rs[i].id)
		}
	}
	ck := make([]byte, contentKeySize)
	defer clear(ck)
	if _, err := rand.Read(ck); err != nil {
		return nil, err
	}
	out := make([]byte, 0, s.SealedSize(len(rs), len(payload)))
	out = append(out, byte(s), byte(len(rs)))
	for _, r := range rs {
		en, err := wrapTo(r.key, ck)
		if err != nil {
			return nil, err
		}
		out = appendEntry(out, s, en)
	}
	commit, payloadKey := contentKeys(ck)
	defer clear(payloadKey)
	out = append(out, commit[:]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(payload)+tagSize))
	aead := mustGCM(payloadKey)
	return aead.Seal(out, zeroNonce, payload, contentAD(s, out[len(out)-commitmentSize-lengthSize:])), nil
}

// contentAD is the additional data of the payload's encryption: the
// version, the commitment and the length. The recipients' entries are not
// part of it, so that a recipient can give the payload to another key
// (AddRecipient) without changing what the envelope commits to
// (ContentHash).
func contentAD(s Scheme, commitAndLength []byte) []byte {
	return append([]byte{byte(s)}, commitAndLength...)
}

// ContentHash is keccak256 of the envelope's content: version,
// commitment, length and ciphertext, without the recipients' entries. It
// is what a marker transaction commits to, and it stays the same when a
// recipient is added.
func ContentHash(envelope []byte) ([32]byte, error) {
	l, err := parseLayout(envelope)
	if err != nil {
		return [32]byte{}, err
	}
	return crypto.Keccak256Hash(envelope[:1], envelope[l.content:]), nil
}

// AddRecipient gives the envelope's payload to one more key: key, a
// recipient, unwraps the content key and wraps it to to. The content and
// ContentHash stay the same; an envelope that names to already is
// returned as it is. Errors: those of Open, and ErrTooManyRecipients.
func AddRecipient(key *PrivateKey, envelope []byte, to *PublicKey) ([]byte, error) {
	if to == nil || len(to.raw) != PublicKeySize {
		return nil, fmt.Errorf("%w: nil or not from ParsePublicKey", ErrPublicKey)
	}
	ck, e, err := contentKey(key, envelope)
	if err != nil {
		return nil, err
	}
	defer clear(ck)
	id := to.KeyID()
	i, found := slices.BinarySearchFunc(e.Entries, id, func(en Entry, id KeyID) int { return bytes.Compare(en.KeyID[:], id[:]) })
	if found {
		return bytes.Clone(envelope), nil
	}
	if len(e.Entries) >= MaxRecipients {
		return nil, fmt.Errorf("%d recipients already: %w", len(e.Entries), ErrTooManyRecipients)
	}
	en, err := wrap(e.Scheme(), to, ck)
	if err != nil {
		return nil, err
	}
	e.Entries = slices.Insert(e.Entries, i, *en)
	return e.Marshal(), nil
}

// Open finds key's entry in envelope, unwraps the content key and
// returns the payload. Errors: those of ParseEnvelope, ErrNotRecipient
// when no entry names key, ErrOpen when the entry or the envelope fails
// authentication.
func Open(key *PrivateKey, envelope []byte) ([]byte, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: nil", ErrPrivateKey)
	}
	ck, e, err := contentKey(key, envelope)
	if err != nil {
		return nil, err
	}
	defer clear(ck)
	_, payloadKey := contentKeys(ck)
	defer clear(payloadKey)
	ad := contentAD(e.Scheme(), envelope[len(envelope)-len(e.Ciphertext)-commitmentSize-lengthSize:len(envelope)-len(e.Ciphertext)])
	plain, err := mustGCM(payloadKey).Open(nil, zeroNonce, e.Ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("%w: the payload fails authentication", ErrOpen)
	}
	return plain, nil
}

// contentKey parses envelope, finds key's entry and unwraps the content
// key, checked against the envelope's commitment.
func contentKey(key *PrivateKey, envelope []byte) ([]byte, *Envelope, error) {
	e, err := ParseEnvelope(envelope)
	if err != nil {
		return nil, nil, err
	}
	id := key.pub.KeyID()
	i, found := slices.BinarySearchFunc(e.Entries, id, func(en Entry, id KeyID) int { return bytes.Compare(en.KeyID[:], id[:]) })
	if !found {
		return nil, nil, fmt.Errorf("%w: no entry for key %s (key id %s)", ErrNotRecipient, key.pub.Identity(), id)
	}
	ck, ok := unwrap(e.Scheme(), key, &e.Entries[i])
	if !ok {
		return nil, nil, fmt.Errorf("%w: the entry for key id %s fails authentication", ErrOpen, id)
	}
	commit, payloadKey := contentKeys(ck)
	clear(payloadKey)
	if commit != e.Commitment {
		clear(ck)
		return nil, nil, fmt.Errorf("%w: the content key does not match the envelope's commitment", ErrOpen)
	}
	return ck, e, nil
}

var zeroNonce = make([]byte, 12)

// wrap makes the entry of scheme s that gives ck to the holder of pk; in
// a session scheme, with a session of its own.
func wrap(s Scheme, pk *PublicKey, ck []byte) (*Entry, error) {
	if s.session() {
		ss, err := newSession(s, pk)
		if err != nil {
			return nil, err
		}
		defer clear(ss.secret[:])
		return ss.wrap(s, pk, ck)
	}
	en := &Entry{KeyID: pk.KeyID()}
	ephemeral, ssX, err := ephemeralAgree(pk)
	if err != nil {
		return nil, err
	}
	defer clear(ssX)
	en.Ephemeral = ephemeral
	var kek []byte
	if s == SchemeHybrid {
		ssM, ct := pk.kem.Encapsulate()
		defer clear(ssM)
		copy(en.KEMCiphertext[:], ct)
		kek = combine(ssM, ssX, en, pk)
	} else {
		kek = combineX25519(ssX, en, pk)
	}
	defer clear(kek)
	mustGCM(kek).Seal(en.WrappedKey[:0], zeroNonce, ck, wrapAD(s, en.KeyID))
	return en, nil
}

// unwrap recovers the content key from key's entry of scheme s; false
// when the entry does not authenticate.
func unwrap(s Scheme, key *PrivateKey, en *Entry) ([]byte, bool) {
	if s.session() {
		return key.sessions.unwrap(s, key, en)
	}
	ssX, ok := agree(key, en)
	if !ok {
		return nil, false
	}
	defer clear(ssX)
	var kek []byte
	if s == SchemeHybrid {
		ssM, err := key.kem.Decapsulate(en.KEMCiphertext[:])
		if err != nil {
			return nil, false
		}
		defer clear(ssM)
		kek = combine(ssM, ssX, en, key.pub)
	} else {
		kek = combineX25519(ssX, en, key.pub)
	}
	defer clear(kek)
	ck, err := mustGCM(kek).Open(nil, zeroNonce, en.WrappedKey[:], wrapAD(s, en.KeyID))
	return ck, err == nil
}

// ephemeralAgree makes a fresh X25519 key and its shared secret with pk's
// X25519 key: the sender's half of an entry's X25519 agreement.
func ephemeralAgree(pk *PublicKey) (ephemeral [X25519KeySize]byte, ssX []byte, err error) {
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return ephemeral, nil, err
	}
	if ssX, err = eph.ECDH(pk.x); err != nil {
		return ephemeral, nil, fmt.Errorf("%w: %v", ErrPublicKey, err)
	}
	copy(ephemeral[:], eph.PublicKey().Bytes())
	return ephemeral, ssX, nil
}

// agree is the X25519 shared secret of key and the entry's ephemeral
// key; false for an ephemeral key of small order.
func agree(key *PrivateKey, en *Entry) ([]byte, bool) {
	eph, err := ecdh.X25519().NewPublicKey(en.Ephemeral[:])
	if err != nil {
		return nil, false
	}
	ssX, err := key.x.ECDH(eph)
	if err != nil {
		return nil, false // small-order ephemeral key
	}
	return ssX, true
}

const (
	labelKEM     = "charter/privacy/v1 hybrid kem"
	labelX25519  = "charter/privacy/v2 x25519 kem"
	labelCommit  = "charter/privacy/v1 commit"
	labelPayload = "charter/privacy/v1 payload"
)

// combine is the hybrid KEM combiner: HKDF-SHA256 of both shared
// secrets, its info binding both ciphertexts and the recipient's key.
func combine(ssM, ssX []byte, en *Entry, pk *PublicKey) []byte {
	secret := make([]byte, 0, len(ssM)+len(ssX))
	secret = append(append(secret, ssM...), ssX...)
	defer clear(secret)
	info := make([]byte, 0, len(labelKEM)+len(en.KEMCiphertext)+len(en.Ephemeral)+len(pk.raw))
	info = append(info, labelKEM...)
	info = append(info, en.KEMCiphertext[:]...)
	info = append(info, en.Ephemeral[:]...)
	info = append(info, pk.raw...)
	return mustHKDF(secret, string(info))
}

// combineX25519 is the X25519 scheme's key derivation: HKDF-SHA256 of
// the shared secret, its info binding the ephemeral key and the
// recipient's X25519 key (as X25519 HPKE and the hybrid combiner do), and
// a label of its own, so that no entry of one scheme is an entry of the
// other.
func combineX25519(ssX []byte, en *Entry, pk *PublicKey) []byte {
	info := make([]byte, 0, len(labelX25519)+len(en.Ephemeral)+X25519KeySize)
	info = append(info, labelX25519...)
	info = append(info, en.Ephemeral[:]...)
	info = append(info, pk.raw[:X25519KeySize]...)
	return mustHKDF(ssX, string(info))
}

// contentKeys derives the envelope's commitment and payload key from
// the content key.
func contentKeys(ck []byte) (commit [commitmentSize]byte, payloadKey []byte) {
	copy(commit[:], mustHKDF(ck, labelCommit))
	return commit, mustHKDF(ck, labelPayload)
}

func wrapAD(s Scheme, id KeyID) []byte { return append([]byte{byte(s)}, id[:]...) }

func mustHKDF(secret []byte, info string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		// Only a key length above 255 hash sizes fails.
		panic(fmt.Sprintf("privacy: hkdf: %v", err))
	}
	return k
}

func mustGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("privacy: aes: %v", err)) // only a key of another size fails
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("privacy: gcm: %v", err))
	}
	return aead
}
