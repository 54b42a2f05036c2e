package system

import (
	"encoding/base64"
	"fmt"

	"github.com/charter-ledger/charter/internal/privacy"
)

// Organizations' privacy keys: each organization may publish one privacy
// public key (internal/privacy: X25519 and ML-KEM-768), to which private
// payloads for it are sealed. An organization without one cannot take
// part in private transactions. The key is set in the genesis, by
// AddOrganization, and rotated by SetPrivacyKey; it is kept beside the
// organization's record (so that reading an organization does not read
// 1216 bytes), and a lookup from its X25519 part, the organization's
// privacy identity (privateFrom, privateFor), leads back to the
// organization: one record per key in force, keyed by the identity's
// hash (the store's slots), written when a key is set and removed when it
// is replaced, so that a lookup reads one record whatever the number of
// organizations. An identity names one organization at a time.

// PrivacyKey is an organization's privacy public key as the registry
// keeps it and the actions carry it: privacy.PublicKeySize bytes (the
// X25519 key, then the ML-KEM-768 key), or none. Its text form is
// standard base64 of those bytes; UnmarshalText also reads a public key
// file (privacy.PEMPublicKey).
type PrivacyKey []byte

// Identity is the key's X25519 part; zero for no key.
func (k PrivacyKey) Identity() privacy.Identity {
	var id privacy.Identity
	if len(k) == privacy.PublicKeySize {
		copy(id[:], k)
	}
	return id
}

// KEM is the key's ML-KEM-768 part; nil for no key.
func (k PrivacyKey) KEM() []byte {
	if len(k) != privacy.PublicKeySize {
		return nil
	}
	return k[privacy.X25519KeySize:]
}

// MarshalText writes the key as standard base64 ("" for none).
func (k PrivacyKey) MarshalText() ([]byte, error) {
	return []byte(base64.StdEncoding.EncodeToString(k)), nil
}

// UnmarshalText reads a public key file's content (a PEM block) or
// standard base64 of the key's bytes; empty text is no key.
func (k *PrivacyKey) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*k = nil
		return nil
	}
	pub, err := privacy.ParsePublicKeyText(b)
	if err != nil {
		return err
	}
	*k = pub.Bytes()
	return nil
}

// checkPrivacyKey accepts a well-formed privacy public key (see
// privacy.ParsePublicKey: deterministic).
func checkPrivacyKey(k PrivacyKey) error {
	if _, err := privacy.ParsePublicKey(k); err != nil {
		return reverts("privacy key: %v", err)
	}
	return nil
}

func privacyKeyKey(org string) string { return "privkey/" + org }

func privacyIDKey(id privacy.Identity) string { return "privid/" + string(id[:]) }

// PrivacyKey returns org's privacy public key; nil when it has none.
func (s *State) PrivacyKey(org string) PrivacyKey {
	k := s.reg.get(privacyKeyKey(org))
	if k == nil {
		return nil
	}
	if len(k) != privacy.PublicKeySize {
		panic(fmt.Sprintf("system: privacy key of %s has %d bytes", org, len(k)))
	}
	return k
}

// PrivacyKeyOrg returns the organization whose privacy identity (the
// X25519 part of its key) is id, and whether there is one: the way from a
// privateFor entry to an organization. An exited organization keeps its
// key (its status says it is gone); a key replaced by SetPrivacyKey maps
// to nothing.
func (s *State) PrivacyKeyOrg(id privacy.Identity) (string, bool) {
	v := s.reg.get(privacyIDKey(id))
	return string(v), v != nil
}

// checkPrivacyKeyFree refuses a key whose identity an organization has
// registered already.
func (s *State) checkPrivacyKeyFree(org string, k PrivacyKey) error {
	switch owner, ok := s.PrivacyKeyOrg(k.Identity()); {
	case ok && owner == org:
		return reverts("organization %s has privacy key %s already", org, k.Identity())
	case ok:
		return reverts("privacy key %s is organization %s's; generate a new one", k.Identity(), owner)
	}
	return nil
}

// setPrivacyKey makes k org's privacy key: its identity maps to org, the
// identity of the key it replaces to nothing.
func (s *State) setPrivacyKey(org string, k PrivacyKey) {
	if old := s.PrivacyKey(org); old != nil {
		s.reg.del(privacyIDKey(old.Identity()))
	}
	s.reg.put(privacyKeyKey(org), k)
	s.reg.put(privacyIDKey(k.Identity()), []byte(org))
}

// SetPrivacyKey rotates an organization's privacy key.
type SetPrivacyKey struct {
	Org string     `abi:"org" max:"64" meta:"NAME" help:"organization whose privacy key changes"`
	Key PrivacyKey `abi:"key" max:"1216" flag:"privacy-key,file" meta:"FILE.pub" help:"file of the organization's new privacy public key (privacy.pub, from 'charter ca privacy-key')"`
}

func (SetPrivacyKey) Action() Action { return ActSetPrivacyKey }

func (a SetPrivacyKey) Validate() error {
	if err := checkBounds(a); err != nil {
		return err
	}
	if err := checkOrgName(a.Org); err != nil {
		return err
	}
	return checkPrivacyKey(a.Key)
}

func (a SetPrivacyKey) check(s *State) error {
	if o, ok := s.Org(a.Org); !ok || o.Status == StatusExited {
		return reverts("organization %s is not a member", a.Org)
	}
	return s.checkPrivacyKeyFree(a.Org, a.Key)
}

func (a SetPrivacyKey) apply(s *State) { s.setPrivacyKey(a.Org, a.Key) }
