package chain

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/privacy"
)

// Organization is one member of the consortium as the genesis lists it:
// its name and the root certificates its nodes' and clients' certificates
// chain to. The node builds its peer trust store from these roots.
type Organization struct {
	// Name is how certificates (subject O), the trust store and the
	// registry name the organization.
	Name string `json:"name"`
	// Roots are PEM encoded root CA certificates. Several organizations
	// may list the same root (a consortium sharing one CA).
	Roots []string `json:"roots"`
	// Tier is what the organization may do: read, write or validate
	// (the default): its accounts' roles and its validators are bounded by it.
	Tier string `json:"tier,omitempty"`
	// Weight is its voting weight in governance (default 1).
	Weight uint64 `json:"weight,omitempty"`
	// Roles is kept for genesis files written before the registry; the
	// registry's accounts carry roles now.
	Roles []string `json:"roles,omitempty"`
	// PrivacyKey and PrivacyKEM are the organization's privacy public key
	// (internal/privacy), both or neither: PrivacyKey its X25519 key, 44
	// characters of standard base64, the identity that privateFrom and
	// privateFor name it by; PrivacyKEM its ML-KEM-768 key, standard
	// base64 of 1184 bytes. Left out, the organization has no key and
	// takes no part in private transactions until governance sets one.
	PrivacyKey string `json:"privacyKey,omitempty"`
	PrivacyKEM string `json:"privacyKem,omitempty"`
}

// PrivacyPublicKey is the organization's privacy public key; nil when it
// has none.
func (o *Organization) PrivacyPublicKey() (*privacy.PublicKey, error) {
	if o.PrivacyKey == "" && o.PrivacyKEM == "" {
		return nil, nil
	}
	return privacy.ParsePublicKeyParts(o.PrivacyKey, o.PrivacyKEM)
}

// Tiers an organization may have; empty means TierValidate.
const (
	TierRead     = "read"
	TierWrite    = "write"
	TierValidate = "validate"
)

// maxOrgNameLen is the X.509 bound of an organization name (RFC 5280).
const maxOrgNameLen = 64

// validateOrgs checks the organizations section; errors name the field.
func validateOrgs(orgs []Organization, solo bool) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, args...))
	}
	seen := make(map[string]int, len(orgs))
	keys := make(map[privacy.Identity]string)
	for i, o := range orgs {
		field := fmt.Sprintf("organizations[%d]", i)
		switch {
		case strings.TrimSpace(o.Name) == "":
			return bad(field+".name", "empty")
		case len(o.Name) > maxOrgNameLen:
			return bad(field+".name", "%q is longer than %d bytes", o.Name, maxOrgNameLen)
		case strings.ContainsFunc(o.Name, unicode.IsControl):
			return bad(field+".name", "%q contains control characters", o.Name)
		}
		if j, dup := seen[o.Name]; dup {
			return bad(field+".name", "%q already names organizations[%d]", o.Name, j)
		}
		seen[o.Name] = i
		if len(o.Roots) == 0 && !solo {
			return bad(field+".roots", "at least one root certificate is required")
		}
		for j, r := range o.Roots {
			if err := checkRootPEM(r); err != nil {
				return bad(fmt.Sprintf("%s.roots[%d]", field, j), "%v", err)
			}
		}
		switch o.Tier {
		case "", TierRead, TierWrite, TierValidate:
		default:
			return bad(field+".tier", "%q is not one of %s, %s, %s", o.Tier, TierRead, TierWrite, TierValidate)
		}
		for j, r := range o.Roles {
			if strings.TrimSpace(r) == "" {
				return bad(fmt.Sprintf("%s.roles[%d]", field, j), "empty")
			}
		}
		if err := checkOrgPrivacyKey(o, field, keys); err != nil {
			return err
		}
	}
	return nil
}

// checkOrgPrivacyKey checks an organization's privacy key fields: both
// or neither, well formed, and not another organization's (keys holds the
// identities seen, with the field that has each).
func checkOrgPrivacyKey(o Organization, field string, keys map[privacy.Identity]string) error {
	bad := func(f, format string, args ...any) error {
		return fmt.Errorf("%w: %s.%s: %s", ErrInvalidSpec, field, f, fmt.Sprintf(format, args...))
	}
	switch {
	case o.PrivacyKey == "" && o.PrivacyKEM == "":
		return nil
	case o.PrivacyKEM == "":
		return bad("privacyKem", "required with privacyKey (the ML-KEM-768 part of the key, base64)")
	case o.PrivacyKey == "":
		return bad("privacyKey", "required with privacyKem (the X25519 part of the key, base64)")
	}
	if _, err := privacy.ParseIdentity(o.PrivacyKey); err != nil {
		return bad("privacyKey", "%v", err)
	}
	pub, err := o.PrivacyPublicKey()
	if err != nil {
		return bad("privacyKem", "%v", err)
	}
	if other, dup := keys[pub.Identity()]; dup {
		return bad("privacyKey", "the key of %s already; each organization needs its own", other)
	}
	keys[pub.Identity()] = field
	return nil
}

// checkRootPEM accepts PEM text holding one or more CA certificates.
func checkRootPEM(text string) error {
	_, err := identity.ParseRootsPEM(text)
	return err
}

// Org returns the organization named name, or nil.
func (s *Spec) Org(name string) *Organization {
	for i := range s.Organizations {
		if s.Organizations[i].Name == name {
			return &s.Organizations[i]
		}
	}
	return nil
}
