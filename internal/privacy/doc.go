// Package privacy is the cryptography of Charter's private transactions:
// the privacy keys of organizations and the envelope a private payload
// travels in, sealed once and readable by each recipient organization's
// nodes alone. It holds no state, reads no clock and imports nothing of
// the chain: the registry (internal/system) keeps the public keys, the
// nodes keep the private ones (internal/identity's key files), and the
// layers above decide who the recipients are.
//
// # Keys
//
// A privacy key pair is a hybrid of X25519 (crypto/ecdh) and ML-KEM-768
// (crypto/mlkem, FIPS 203), so that a payload recorded today stays secret
// if either problem falls: elliptic curves to a quantum computer, or the
// young lattice scheme to a classical attack.
//
//	PublicKey   1216 bytes: X25519 key (32) | ML-KEM-768 encapsulation key (1184)
//	PrivateKey    96 bytes: X25519 scalar (32) | ML-KEM-768 seed d|z (64)
//	Identity      the X25519 key alone, as 44 characters of standard base64:
//	              an organization's name in the Besu-style API (privateFrom,
//	              privateFor), which web3js-quorum sends unchanged
//	KeyID          8 bytes: SHA-256("charter/privacy/v1 key id" | X25519 key)[:8]
//
// ParsePublicKey refuses a key of another length, an ML-KEM key whose
// coefficients are not reduced (FIPS 203's modulus check) and an X25519
// key of small order (every shared secret with it is zero). These checks
// are deterministic, so consensus code may run them.
//
// # Envelope
//
// Seal encrypts a payload once, under a random 32-byte content key, and
// wraps that key for each recipient with the hybrid KEM. Version 1, all
// integers big-endian:
//
//	version      1 byte   = 1
//	count        1 byte   recipients, 1..MaxRecipients (64)
//	entries      count × 1176 bytes, in ascending KeyID order, each:
//	  keyID          8    the recipient's KeyID
//	  ephemeral     32    a fresh X25519 public key (the X25519 ciphertext)
//	  kemCiphertext 1088  ML-KEM-768 ciphertext to the recipient's key
//	  wrappedKey    48    AES-256-GCM of the content key (32) and its tag (16)
//	commitment   32 bytes HKDF-SHA256(ck, info "charter/privacy/v1 commit")
//	length        4 bytes of the ciphertext that follows, 16..MaxPayloadBytes+16
//	ciphertext   AES-256-GCM of the payload under
//	             HKDF-SHA256(ck, info "charter/privacy/v1 payload"), nonce zero,
//	             additional data: version | commitment | length (not the
//	             entries, so that a recipient can add one: AddRecipient)
//
// Version 2 (SchemeX25519, chosen per network in the genesis:
// "privacyEnvelope": "x25519") is the same without the ML-KEM half: each
// entry is keyID (8) | ephemeral (32) | wrappedKey (48), 88 bytes, and
//
//	kek = HKDF-SHA256(secret = ssX25519, salt = none,
//	                  info = "charter/privacy/v2 x25519 kem" | ephemeral
//	                         | recipient X25519 key)
//
// Versions 3 and 4 (SchemeHybridSession, what charter init writes, and
// SchemeX25519Session) are versions 1 and 2 with a 16-byte salt in each
// entry before its wrapped key, the key-encryption key derived from the
// salt and a session secret, so that a Sealer reuses one ephemeral key and
// encapsulation per recipient for many envelopes and a PrivateKey
// remembers the secrets of the sessions it opened (session.go).
//
// The version byte is in every entry's and the payload's additional data
// and in the content hash, so an envelope relabelled to the other version
// opens for nobody and commits to another hash. A consortium chooses it
// when its payloads need not stay secret against a future quantum
// computer; it halves the cost of sealing, cuts that of opening by about
// 60 % and an entry from 1,176 to 88 bytes. Hybrid is what a genesis without
// the field means; charter init writes hybrid-session (versions 3 and 4, above).
//
// The key-encryption key of an entry combines both shared secrets:
//
//	kek = HKDF-SHA256(secret = ssMLKEM | ssX25519, salt = none,
//	                  info = "charter/privacy/v1 hybrid kem" | kemCiphertext
//	                         | ephemeral | recipient X25519 key | recipient ML-KEM key)
//	wrappedKey = AES-256-GCM(kek, nonce zero, ck, additional data: version | keyID)
//
// This combiner is in the style of X-Wing (draft-connolly-cfrg-xwing-kem):
// both shared secrets, the X25519 ciphertext and the recipient's X25519
// key go into one KDF. Where X-Wing leaves the ML-KEM ciphertext and key
// out (ML-KEM binds them itself), this one binds them too, as the generic
// combiners of the IETF hybrid drafts (draft-ietf-lamps-pq-composite-kem)
// do, and it uses HKDF-SHA256 rather than SHA3-256: a few microseconds
// more for an argument that needs no property of ML-KEM beyond IND-CCA.
// Each key is used once (a fresh ephemeral key and encapsulation per
// entry, a fresh content key per envelope), so the zero nonces are safe.
//
// What holds: only a holder of a recipient's private key reads the
// payload; a change to any byte of the envelope's content (version,
// count, commitment, length, ciphertext) makes Open fail for every
// recipient, a change to an entry for that entry's recipient; every
// recipient who opens an envelope reads the same payload (the commitment
// fixes the content key, so a sender cannot wrap different keys to
// different recipients around one ciphertext). What does not: the
// envelope says how many recipients it has, their KeyIDs and the
// payload's size; it does not authenticate the sender (any recipient can
// seal another envelope to the same recipients: the signed transaction
// inside says who sent it); and a sender may write an entry that does not
// open, so that one recipient cannot read what others can.
//
// Decoding is bounded: ParseEnvelope checks every length against the
// input before it allocates, and refuses, with errors that wrap the
// sentinels below, a version it does not know, a count of 0 or above
// MaxRecipients, entries out of order or repeated, a length other than
// what is left, and trailing bytes. What decodes re-encodes to the same
// bytes.
package privacy
