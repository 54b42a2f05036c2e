package privacy

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// Sessions (the session schemes, versions 3 and 4).
//
// An entry of a session scheme carries, besides the X25519 key and ML-KEM
// ciphertext of the other schemes, a random salt. Its key-encryption key is
// derived in two steps:
//
//	secret = HKDF-SHA256(ssMLKEM | ssX25519 (or ssX25519 alone), salt = none,
//	                     info = label | kemCiphertext (hybrid) | ephemeral | recipient key)
//	kek    = HKDF-SHA256(secret, salt = the entry's salt,
//	                     info = "charter/privacy/v3 entry" | version | keyID)
//
// secret depends only on the ephemeral key and the encapsulation, so a
// sender may use one of them for many envelopes to one recipient (a
// session: Sealer) and a recipient may remember the secret it derived for
// them (PrivateKey): an envelope sealed and opened within a session costs
// two HKDFs and two AES-GCMs per entry, no X25519 or ML-KEM operation.
// The salts keep each entry's key-encryption key distinct, so the zero
// nonce of the wrapped key stays used once per key.

// Session bounds of a Sealer.
const (
	// SessionMaxUses is how many envelopes a Sealer seals to one recipient
	// key in one session.
	SessionMaxUses = 1 << 16
	// SessionMaxAge is how long a Sealer keeps one session.
	SessionMaxAge = 10 * time.Minute
	// maxSealerSessions bounds a Sealer's sessions (one per recipient key).
	maxSealerSessions = 1024
	// maxOpenSessions bounds the session secrets a PrivateKey remembers.
	maxOpenSessions = 4096
)

const (
	labelSessionHybrid = "charter/privacy/v3 hybrid session"
	labelSessionX25519 = "charter/privacy/v4 x25519 session"
	labelEntry         = "charter/privacy/v3 entry"
)

// session is one ephemeral X25519 key and (hybrid) ML-KEM encapsulation
// to one recipient, with the secret derived from them. It does not
// change once made.
type session struct {
	ephemeral [X25519KeySize]byte
	kemCT     []byte // nil in the X25519 session scheme
	secret    [32]byte
}

// newSession makes a session of scheme s to pk.
func newSession(s Scheme, pk *PublicKey) (*session, error) {
	ephemeral, ssX, err := ephemeralAgree(pk)
	if err != nil {
		return nil, err
	}
	defer clear(ssX)
	ss := &session{ephemeral: ephemeral}
	var ssM []byte
	if s.kem() {
		ssM, ss.kemCT = pk.kem.Encapsulate()
		defer clear(ssM)
	}
	ss.secret = sessionSecret(s, ssM, ssX, ss.ephemeral[:], ss.kemCT, pk)
	return ss, nil
}

// sessionSecret derives a session's secret from the shared secrets (ssM
// nil in the X25519 session scheme), binding the ciphertexts and the
// recipient's key.
func sessionSecret(s Scheme, ssM, ssX, ephemeral, kemCT []byte, pk *PublicKey) [32]byte {
	secret := make([]byte, 0, len(ssM)+len(ssX))
	secret = append(append(secret, ssM...), ssX...)
	defer clear(secret)
	label, key := labelSessionX25519, pk.raw[:X25519KeySize]
	if s.kem() {
		label, key = labelSessionHybrid, pk.raw
	}
	info := make([]byte, 0, len(label)+len(kemCT)+len(ephemeral)+len(key))
	info = append(append(append(append(info, label...), kemCT...), ephemeral...), key...)
	k := mustHKDF(secret, string(info))
	defer clear(k)
	return [32]byte(k)
}

// entryKEK is the key-encryption key of an entry of scheme s in a session
// with secret.
func entryKEK(s Scheme, secret *[32]byte, en *Entry) []byte {
	info := make([]byte, 0, len(labelEntry)+1+KeyIDSize)
	info = append(append(append(info, labelEntry...), byte(s)), en.KeyID[:]...)
	k, err := hkdf.Key(sha256.New, secret[:], en.Salt[:], string(info), 32)
	if err != nil {
		panic(fmt.Sprintf("privacy: hkdf: %v", err)) // only a key length above 255 hash sizes fails
	}
	return k
}

// wrap makes the entry of scheme s that gives ck to pk, the session's
// recipient, with a fresh salt.
func (ss *session) wrap(s Scheme, pk *PublicKey, ck []byte) (*Entry, error) {
	en := &Entry{KeyID: pk.KeyID(), Ephemeral: ss.ephemeral}
	copy(en.KEMCiphertext[:], ss.kemCT)
	if _, err := rand.Read(en.Salt[:]); err != nil {
		return nil, err
	}
	kek := entryKEK(s, &ss.secret, en)
	defer clear(kek)
	mustGCM(kek).Seal(en.WrappedKey[:0], zeroNonce, ck, wrapAD(s, en.KeyID))
	return en, nil
}

// Sealer seals envelopes of one scheme. In the session schemes it keeps
// one session per recipient key for at most SessionMaxUses envelopes and
// SessionMaxAge, so that sealing to a recipient costs one X25519 key, one
// X25519 agreement and one ML-KEM encapsulation per session instead of
// per envelope; in the others it is SealWith. Safe for concurrent use.
//
// A session's secret opens every entry sealed in it, so it is as secret as
// the content keys it wraps: it stays in the Sealer's memory only, for the
// session's life. (A sending node holds its own organization's private
// key, which opens whatever it sealed, and what it sealed recently; a
// session adds nothing to what reading that node's memory gives.)
type Sealer struct {
	scheme  Scheme
	maxUses int
	maxAge  time.Duration
	now     func() time.Time

	mu       sync.Mutex
	sessions map[KeyID]*sealerSession
}

type sealerSession struct {
	key  *PublicKey
	ss   *session
	uses int
	born time.Time
}

// NewSealer makes a Sealer of scheme s.
func NewSealer(s Scheme) *Sealer {
	return &Sealer{scheme: s, maxUses: SessionMaxUses, maxAge: SessionMaxAge, now: time.Now, sessions: make(map[KeyID]*sealerSession)}
}

// Scheme is the scheme the Sealer seals with.
func (z *Sealer) Scheme() Scheme { return z.scheme }

// Seal is SealWith(z.Scheme(), recipients, payload), within the Sealer's
// sessions.
func (z *Sealer) Seal(recipients []*PublicKey, payload []byte) ([]byte, error) {
	if !z.scheme.session() {
		return SealWith(z.scheme, recipients, payload)
	}
	return seal(z.scheme, recipients, payload, func(pk *PublicKey, ck []byte) (*Entry, error) {
		ss, err := z.session(pk)
		if err != nil {
			return nil, err
		}
		return ss.wrap(z.scheme, pk, ck)
	})
}

// session is the session to use for one more envelope to pk: the current
// one, or a new one when it is used up, too old or of another key.
func (z *Sealer) session(pk *PublicKey) (*session, error) {
	id := pk.KeyID()
	now := z.now()
	z.mu.Lock()
	if cur := z.sessions[id]; cur != nil && cur.key.Equal(pk) && cur.uses < z.maxUses && now.Sub(cur.born) < z.maxAge {
		cur.uses++
		z.mu.Unlock()
		return cur.ss, nil
	}
	z.mu.Unlock()
	// Made outside the lock: a public-key operation. Two sealers that
	// race here both seal with a new session; the later one stays.
	ss, err := newSession(z.scheme, pk)
	if err != nil {
		return nil, err
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(z.sessions) >= maxSealerSessions {
		for k, s := range z.sessions {
			if s.uses >= z.maxUses || now.Sub(s.born) >= z.maxAge {
				delete(z.sessions, k)
			}
		}
		for k := range z.sessions {
			if len(z.sessions) < maxSealerSessions {
				break
			}
			delete(z.sessions, k)
		}
	}
	z.sessions[id] = &sealerSession{key: pk, ss: ss, uses: 1, born: now}
	return ss, nil
}

// sessionMemo is what a PrivateKey remembers of the sessions it opened
// entries of: the secret derived for an ephemeral key and encapsulation,
// by their hash. It holds only secrets that opened an entry, at most
// maxOpenSessions (then it starts again empty).
type sessionMemo struct {
	mu sync.Mutex
	m  map[[32]byte][32]byte
}

// memoKey names an entry's session: its scheme, ephemeral key and
// encapsulation.
func memoKey(s Scheme, en *Entry) [32]byte {
	h := sha256.New()
	h.Write([]byte{byte(s)})
	h.Write(en.Ephemeral[:])
	if s.kem() {
		h.Write(en.KEMCiphertext[:])
	}
	return [32]byte(h.Sum(nil))
}

// unwrap recovers the content key from key's entry of session scheme s,
// with the session's secret remembered or derived; false when the entry
// does not authenticate.
func (m *sessionMemo) unwrap(s Scheme, key *PrivateKey, en *Entry) ([]byte, bool) {
	id := memoKey(s, en)
	m.mu.Lock()
	secret, known := m.m[id]
	m.mu.Unlock()
	if !known {
		ssX, ok := agree(key, en)
		if !ok {
			return nil, false
		}
		defer clear(ssX)
		var ssM, kemCT []byte
		if s.kem() {
			var err error
			if ssM, err = key.kem.Decapsulate(en.KEMCiphertext[:]); err != nil {
				return nil, false
			}
			defer clear(ssM)
			kemCT = en.KEMCiphertext[:]
		}
		secret = sessionSecret(s, ssM, ssX, en.Ephemeral[:], kemCT, key.pub)
	}
	kek := entryKEK(s, &secret, en)
	defer clear(kek)
	ck, err := mustGCM(kek).Open(nil, zeroNonce, en.WrappedKey[:], wrapAD(s, en.KeyID))
	if err != nil {
		return nil, false
	}
	if !known {
		m.mu.Lock()
		if m.m == nil || len(m.m) >= maxOpenSessions {
			m.m = make(map[[32]byte][32]byte)
		}
		m.m[id] = secret
		m.mu.Unlock()
	}
	return ck, true
}
