package auth

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/system"
)

// CertVerifier verifies a certificate chain presented by a client against
// the organizations' CA roots, their status and the revoked certificates,
// as the registry knows them. *identity.TrustStore implements it (the node
// passes the trust store its p2p transport uses, which it keeps in line
// with the registry). Verify is called concurrently.
type CertVerifier interface {
	Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, roles ...identity.Role) (identity.Identity, error)
}

// CertConfig configures a CertAuthenticator.
type CertConfig struct {
	// Trust verifies chains (required).
	Trust CertVerifier
	// Revoked, when set, is asked too whether a certificate is revoked
	// (the registry's RevokeCertificate fingerprints at the head), so that
	// a revocation holds from the block that makes it, whenever Trust
	// learns of it.
	Revoked func(identity.Fingerprint) bool
	// Roles maps a certificate to the API roles of its holder: the first
	// of "org/CN", "org/*" and "*" that is listed gives them; none listed:
	// read. The roles of a certificate are the node's to grant: they are
	// not written in it.
	Roles map[string]system.Role
}

// CertAuthenticator finds the caller of a request in the TLS client
// certificate it presented: a client certificate (identity.RoleClient)
// issued by an organization's CA, not revoked, of an active organization.
// It is safe for concurrent use.
type CertAuthenticator struct {
	trust   CertVerifier
	revoked func(identity.Fingerprint) bool
	roles   map[string]system.Role
}

// NewCertAuthenticator checks cfg and returns its authenticator.
func NewCertAuthenticator(cfg CertConfig) (*CertAuthenticator, error) {
	if cfg.Trust == nil {
		return nil, errors.New("client certificates: no trust store (CertConfig.Trust)")
	}
	roles := make(map[string]system.Role, len(cfg.Roles))
	for k, r := range cfg.Roles {
		if k != "*" {
			org, sub, ok := strings.Cut(k, "/")
			if !ok || org == "" || sub == "" {
				return nil, fmt.Errorf("client certificates: roles key %q: want org/CN, org/* or *", k)
			}
		}
		roles[k] = r
	}
	return &CertAuthenticator{trust: cfg.Trust, revoked: cfg.Revoked, roles: roles}, nil
}

// Authenticate implements Authenticator: the identity of the TLS client
// certificate of r, the anonymous identity (no roles) when there is none,
// or an *Error: 401 for a certificate that is not valid here (unknown CA,
// expired, revoked, not a client certificate), 403 for one of an
// organization that is not an active member.
func (a *CertAuthenticator) Authenticate(r *http.Request) (*Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return &Identity{Kind: KindAnonymous}, nil
	}
	return a.Identify(r.TLS.PeerCertificates)
}

// Identify verifies a chain as presented (leaf first) and returns its
// holder's identity, or an *Error as Authenticate does.
func (a *CertAuthenticator) Identify(chain []*x509.Certificate) (*Identity, error) {
	id, err := a.trust.Verify(chain, x509.ExtKeyUsageClientAuth, identity.RoleClient)
	if err != nil {
		if errors.Is(err, identity.ErrOrgInactive) {
			return nil, &Error{Status: http.StatusForbidden, Code: "invalid_client",
				Msg: fmt.Sprintf("client certificate: %s", inactiveOrg(orgOf(chain[0])))}
		}
		return nil, &Error{Status: http.StatusUnauthorized, Code: "invalid_client", Msg: "client certificate: " + err.Error()}
	}
	if a.revoked != nil && a.revoked(id.Fingerprint) {
		return nil, &Error{Status: http.StatusUnauthorized, Code: "invalid_client",
			Msg: fmt.Sprintf("client certificate: %v: %q of %s (fingerprint %s)", identity.ErrRevoked, id.Name, id.Org, id.Fingerprint)}
	}
	return &Identity{
		Kind:    KindCertificate,
		Subject: id.Name,
		Org:     id.Org,
		Roles:   a.rolesOf(id.Org, id.Name),
		Issuer:  issuerOf(chain),
	}, nil
}

// rolesOf applies the Roles map.
func (a *CertAuthenticator) rolesOf(org, cn string) system.Role {
	for _, k := range []string{org + "/" + cn, org + "/*", "*"} {
		if r, ok := a.roles[k]; ok {
			return r
		}
	}
	return system.RoleRead
}

// issuerOf names the CA that signed the leaf: the SHA-256 fingerprint of
// the issuing certificate when the client presented it, or else
// "keyid:" and the leaf's authority key id (the CA's subject key id);
// "" when neither is known.
func issuerOf(chain []*x509.Certificate) string {
	leaf := chain[0]
	for _, c := range chain[1:] {
		if c != nil && leaf.CheckSignatureFrom(c) == nil {
			return identity.FingerprintOf(c).String()
		}
	}
	if len(leaf.AuthorityKeyId) > 0 {
		return "keyid:" + hex.EncodeToString(leaf.AuthorityKeyId)
	}
	return ""
}

func orgOf(c *x509.Certificate) string {
	if c == nil || len(c.Subject.Organization) == 0 {
		return "(none)"
	}
	return c.Subject.Organization[0]
}

// inactiveOrg is the message of a credential of an organization that is
// not an active member.
func inactiveOrg(org string) string {
	return fmt.Sprintf("organization %s is not an active member", org)
}
