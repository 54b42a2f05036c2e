package privacy

import (
	"crypto/mlkem"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"
)

// Detaching the ML-KEM ciphertexts of envelopes, for storage.
//
// In the hybrid-session scheme every entry of one session carries the
// same ML-KEM ciphertext (1,088 bytes, most of an entry): a node keeping
// thousands of a session's envelopes would keep it thousands of times.
// Detach takes each entry's ciphertext out of an envelope and puts its
// keccak256 in its place; the caller keeps each distinct ciphertext once,
// by that hash, and Attach puts them back. The detached form is a storage
// encoding only: envelopes travel, are hashed and are opened whole.

// DetachedKEM is an ML-KEM ciphertext Detach took out of an envelope,
// with the hash that names it in the detached form.
type DetachedKEM struct {
	Hash       [32]byte
	Ciphertext []byte
}

// detachedEntrySize is the size of an entry of scheme s in the detached
// form: the ciphertext's hash in its place.
func (s Scheme) detachedEntrySize() int {
	return s.entrySize() - mlkem.CiphertextSize768 + len(DetachedKEM{}.Hash)
}

// offset of an entry's ML-KEM ciphertext in the entry.
const kemOffset = KeyIDSize + X25519KeySize

// Detach returns envelope in the detached form, its scheme's, and the
// ML-KEM ciphertexts of its entries in entry order (slices of envelope:
// the caller copies what it keeps beyond envelope's lifetime). An
// envelope of a scheme without ML-KEM ciphertexts is returned as it is,
// with none. Errors are ParseEnvelope's.
func Detach(envelope []byte) (detached []byte, kems []DetachedKEM, err error) {
	return DetachHashed(envelope, nil)
}

// DetachHashed is Detach with the ciphertexts' keccak256 answered by hash
// (nil: computed): a caller that remembers the few ciphertexts of the
// sessions in use answers them without hashing a kilobyte again. hash
// must answer keccak256 of its argument.
func DetachHashed(envelope []byte, hash func(ct []byte) [32]byte) (detached []byte, kems []DetachedKEM, err error) {
	if hash == nil {
		hash = func(ct []byte) [32]byte { return crypto.Keccak256Hash(ct) }
	}
	l, err := parseLayout(envelope)
	if err != nil {
		return nil, nil, err
	}
	if !l.scheme.kem() {
		return envelope, nil, nil
	}
	es := l.scheme.entrySize()
	out := make([]byte, 0, headerSize+l.n*l.scheme.detachedEntrySize()+len(envelope)-l.content)
	out = append(out, envelope[:headerSize]...)
	kems = make([]DetachedKEM, l.n)
	for i := range l.n {
		entry := envelope[headerSize+i*es : headerSize+(i+1)*es]
		ct := entry[kemOffset : kemOffset+mlkem.CiphertextSize768]
		kems[i] = DetachedKEM{Hash: hash(ct), Ciphertext: ct}
		out = append(out, entry[:kemOffset]...)
		out = append(out, kems[i].Hash[:]...)
		out = append(out, entry[kemOffset+mlkem.CiphertextSize768:]...)
	}
	return append(out, envelope[l.content:]...), kems, nil
}

// Attach is Detach's inverse: kem answers the ciphertext kept under a
// hash. The envelope it makes is checked as ParseEnvelope checks one, and
// each ciphertext against its hash.
func Attach(detached []byte, kem func(hash [32]byte) ([]byte, error)) ([]byte, error) {
	if len(detached) < headerSize {
		return nil, fmt.Errorf("%w: detached form truncated: %d bytes", ErrEnvelope, len(detached))
	}
	s, n := Scheme(detached[0]), int(detached[1])
	if !s.kem() || n == 0 || n > MaxRecipients {
		return nil, fmt.Errorf("%w: detached form of scheme %d with %d entries", ErrEnvelope, detached[0], n)
	}
	des := s.detachedEntrySize()
	if len(detached) < headerSize+n*des {
		return nil, fmt.Errorf("%w: detached form truncated: %d bytes, %d entries", ErrEnvelope, len(detached), n)
	}
	content := detached[headerSize+n*des:]
	out := make([]byte, 0, headerSize+n*s.entrySize()+len(content))
	out = append(out, detached[:headerSize]...)
	for i := range n {
		entry := detached[headerSize+i*des : headerSize+(i+1)*des]
		var h [32]byte
		copy(h[:], entry[kemOffset:])
		ct, err := kem(h)
		if err != nil {
			return nil, fmt.Errorf("ML-KEM ciphertext %x of entry %d: %w", h, i, err)
		}
		if len(ct) != mlkem.CiphertextSize768 || crypto.Keccak256Hash(ct) != h {
			return nil, fmt.Errorf("%w: the ML-KEM ciphertext kept as %x of entry %d is not the one hashed", ErrEnvelope, h, i)
		}
		out = append(out, entry[:kemOffset]...)
		out = append(out, ct...)
		out = append(out, entry[kemOffset+len(h):]...)
	}
	out = append(out, content...)
	if _, err := parseLayout(out); err != nil {
		return nil, err
	}
	return out, nil
}
