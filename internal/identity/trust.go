package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"
)

// Verification errors. Verify wraps exactly one of them, with the
// certificate's subject and the detail, so a log line says why.
var (
	ErrNoCertificate      = errors.New("no certificate presented")
	ErrUnknownCA          = errors.New("unknown CA")
	ErrExpired            = errors.New("certificate expired")
	ErrNotYetValid        = errors.New("certificate not yet valid")
	ErrRevoked            = errors.New("certificate revoked")
	ErrWrongKeyUsage      = errors.New("wrong key usage")
	ErrWrongRole          = errors.New("wrong certificate role")
	ErrOrgMismatch        = errors.New("certificate organization does not match its CA")
	ErrOrgInactive        = errors.New("organization inactive")
	ErrInvalidCertificate = errors.New("invalid certificate")
	// ErrUnknownOrg is returned by TrustStore updates naming an
	// organization the store does not know.
	ErrUnknownOrg = errors.New("unknown organization")
)

// Fingerprint is the SHA-256 of a certificate's DER encoding.
type Fingerprint [32]byte

// FingerprintOf returns the certificate's fingerprint.
func FingerprintOf(cert *x509.Certificate) Fingerprint {
	return sha256.Sum256(cert.Raw)
}

// String is the lowercase hex form, without separators.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// ParseFingerprint reads 64 hex characters, optionally with a 0x prefix
// or colon separators (the form openssl prints).
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	s = strings.ReplaceAll(strings.TrimPrefix(strings.TrimSpace(s), "0x"), ":", "")
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(f) {
		return f, fmt.Errorf("fingerprint %q is not 32 bytes of hex", s)
	}
	copy(f[:], b)
	return f, nil
}

// OrgRoots is one organization of the genesis with its root certificates.
// Several organizations may list the same root (a consortium sharing one
// CA); a certificate from a shared root then belongs to the organization
// named in its subject O.
type OrgRoots struct {
	Name  string
	Roots []*x509.Certificate
}

// ErrRootsShape is wrapped by ParseRootsPEM when the text holds no PEM
// certificate, or something after them.
var ErrRootsShape = errors.New("want PEM CA certificates and nothing else")

// ParseRootsPEM reads an organization's root certificates: PEM text of
// one or more CA certificates and nothing else. The genesis and
// governance (adding an organization, rotating its CA) check roots with it.
func ParseRootsPEM(text string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(text)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != PEMCertificate {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %v", len(certs), err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("certificate %q is not a CA", c.Subject.CommonName)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no PEM certificate", ErrRootsShape)
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, fmt.Errorf("%w: trailing data after the PEM certificates", ErrRootsShape)
	}
	return certs, nil
}

// OrgRootsFromPEM builds an OrgRoots from PEM text, the form the genesis
// stores root certificates in.
func OrgRootsFromPEM(name string, pemRoots ...string) (OrgRoots, error) {
	o := OrgRoots{Name: name}
	for _, p := range pemRoots {
		certs, err := ParseCertsPEM([]byte(p))
		if err != nil {
			return o, fmt.Errorf("organization %s: %w", name, err)
		}
		o.Roots = append(o.Roots, certs...)
	}
	return o, nil
}

// Identity is who a verified certificate chain belongs to.
type Identity struct {
	Org         string
	Name        string // subject CN
	Role        Role   // "" when the certificate carries no role OU
	Serial      *big.Int
	Fingerprint Fingerprint
	NotAfter    time.Time
}

// TrustOption configures a TrustStore.
type TrustOption func(*TrustStore)

// WithClock sets the clock certificates are checked against (default
// time.Now). For tests.
func WithClock(now func() time.Time) TrustOption {
	return func(t *TrustStore) { t.now = now }
}

type orgSerial struct {
	org    string
	serial string // big.Int text, base 16
}

// TrustStore decides whether a certificate chain belongs to a member of
// the consortium: it chains to an organization's root, is within its
// validity, has the right usage and role, is not revoked, and its
// organization is active. It is built from the genesis' organization roots
// and updated at runtime (by governance) with new organizations,
// revocations and organization status.
//
// All methods are goroutine-safe. Updates take effect for every Verify
// that starts after they return; holders of long-lived connections learn
// of updates through Watch or by verifying again periodically.
type TrustStore struct {
	now func() time.Time

	mu struct {
		sync.RWMutex
		orgs     map[string][]*x509.Certificate // org -> roots
		rootOrgs map[Fingerprint][]string       // root -> orgs it serves
		pool     *x509.CertPool                 // every root; replaced, never mutated
		inactive map[string]bool
		revoked  map[Fingerprint]bool
		serials  map[orgSerial]bool
		changed  chan struct{} // closed and replaced on every update
	}
}

// NewTrustStore builds a store from the organizations of the genesis.
// Every root must be a CA certificate; organization names must be unique.
func NewTrustStore(orgs []OrgRoots, opts ...TrustOption) (*TrustStore, error) {
	t := &TrustStore{now: time.Now}
	for _, o := range opts {
		o(t)
	}
	t.mu.orgs = map[string][]*x509.Certificate{}
	t.mu.rootOrgs = map[Fingerprint][]string{}
	t.mu.inactive = map[string]bool{}
	t.mu.revoked = map[Fingerprint]bool{}
	t.mu.serials = map[orgSerial]bool{}
	t.mu.changed = make(chan struct{})
	for _, o := range orgs {
		if err := t.addOrgLocked(o); err != nil {
			return nil, err
		}
	}
	t.rebuildPoolLocked()
	return t, nil
}

// AddOrg admits a new organization (a passed governance proposal).
func (t *TrustStore) AddOrg(o OrgRoots) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.addOrgLocked(o); err != nil {
		return err
	}
	t.rebuildPoolLocked()
	t.notifyLocked()
	return nil
}

func (t *TrustStore) addOrgLocked(o OrgRoots) error {
	if err := checkName("organization", o.Name); err != nil {
		return err
	}
	if _, dup := t.mu.orgs[o.Name]; dup {
		return fmt.Errorf("organization %s listed twice", o.Name)
	}
	if len(o.Roots) == 0 {
		return fmt.Errorf("organization %s has no root certificate", o.Name)
	}
	for _, r := range o.Roots {
		if r == nil || !r.BasicConstraintsValid || !r.IsCA {
			return fmt.Errorf("organization %s: root %q is not a CA certificate", o.Name, subjectOf(r))
		}
	}
	t.mu.orgs[o.Name] = slices.Clone(o.Roots)
	for _, r := range o.Roots {
		fp := FingerprintOf(r)
		if !slices.Contains(t.mu.rootOrgs[fp], o.Name) {
			t.mu.rootOrgs[fp] = append(t.mu.rootOrgs[fp], o.Name)
		}
	}
	return nil
}

func (t *TrustStore) rebuildPoolLocked() {
	pool := x509.NewCertPool()
	for _, roots := range t.mu.orgs {
		for _, r := range roots {
			pool.AddCert(r)
		}
	}
	t.mu.pool = pool
}

func (t *TrustStore) notifyLocked() {
	close(t.mu.changed)
	t.mu.changed = make(chan struct{})
}

// Watch returns a channel closed at the next update of the store. Call it
// again after it fires to keep watching.
func (t *TrustStore) Watch() <-chan struct{} {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.mu.changed
}

// SetOrgActive marks an organization active or inactive (suspended or
// exited). Certificates of an inactive organization fail Verify with
// ErrOrgInactive.
func (t *TrustStore) SetOrgActive(org string, active bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mu.orgs[org]; !ok {
		return fmt.Errorf("%w: %s", ErrUnknownOrg, org)
	}
	if t.mu.inactive[org] == !active {
		return nil
	}
	if active {
		delete(t.mu.inactive, org)
	} else {
		t.mu.inactive[org] = true
	}
	t.notifyLocked()
	return nil
}

// RevokeFingerprint revokes one certificate: a leaf, or an organization's
// root (then every certificate it issued). Revocation is permanent.
func (t *TrustStore) RevokeFingerprint(fp Fingerprint) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.revoked[fp] {
		return
	}
	t.mu.revoked[fp] = true
	t.notifyLocked()
}

// RevokeSerial revokes the certificate with this serial number issued to
// an organization. Serial numbers are unique per CA, so the organization
// scopes them.
func (t *TrustStore) RevokeSerial(org string, serial *big.Int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.mu.orgs[org]; !ok {
		return fmt.Errorf("%w: %s", ErrUnknownOrg, org)
	}
	k := orgSerial{org, serial.Text(16)}
	if t.mu.serials[k] {
		return nil
	}
	t.mu.serials[k] = true
	t.notifyLocked()
	return nil
}

// Orgs lists the organizations the store knows, sorted, active or not.
func (t *TrustStore) Orgs() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	names := make([]string, 0, len(t.mu.orgs))
	for n := range t.mu.orgs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Verify checks a certificate chain as presented by a peer (leaf first,
// then any intermediates) for the given extended key usage
// (x509.ExtKeyUsageAny accepts any) and, when roles are given, that the
// leaf has one of them. It returns the holder's identity, or an error
// wrapping exactly one of: ErrNoCertificate, ErrNotYetValid, ErrExpired,
// ErrWrongKeyUsage, ErrUnknownCA, ErrOrgMismatch, ErrInvalidCertificate,
// ErrOrgInactive, ErrRevoked, ErrWrongRole.
func (t *TrustStore) Verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, roles ...Role) (Identity, error) {
	if len(chain) == 0 || chain[0] == nil {
		return Identity{}, ErrNoCertificate
	}
	leaf := chain[0]
	now := t.now()
	if err := checkTime(leaf, now); err != nil {
		return Identity{}, err
	}
	if leaf.IsCA {
		return Identity{}, fmt.Errorf("%w: %s is a CA certificate, not an end-entity one", ErrWrongKeyUsage, subjectOf(leaf))
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return Identity{}, fmt.Errorf("%w: %s lacks the digitalSignature key usage", ErrWrongKeyUsage, subjectOf(leaf))
	}

	t.mu.RLock()
	pool := t.mu.pool
	t.mu.RUnlock()

	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		if c != nil {
			inter.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return Identity{}, explain(leaf, now, usage, err)
	}

	t.mu.RLock()
	defer t.mu.RUnlock()
	org, path, err := t.orgOfLocked(leaf, chains)
	if err != nil {
		return Identity{}, err
	}
	if t.mu.inactive[org] {
		return Identity{}, fmt.Errorf("%w: %s belongs to organization %s, which is not active", ErrOrgInactive, subjectOf(leaf), org)
	}
	for _, c := range path {
		if fp := FingerprintOf(c); t.mu.revoked[fp] {
			return Identity{}, fmt.Errorf("%w: %s (fingerprint %s)", ErrRevoked, subjectOf(c), fp)
		}
	}
	if t.mu.serials[orgSerial{org, leaf.SerialNumber.Text(16)}] {
		return Identity{}, fmt.Errorf("%w: %s (organization %s, serial %x)", ErrRevoked, subjectOf(leaf), org, leaf.SerialNumber)
	}
	role := RoleOf(leaf)
	if len(roles) > 0 && !slices.Contains(roles, role) {
		return Identity{}, fmt.Errorf("%w: %s has role %q, want %v", ErrWrongRole, subjectOf(leaf), role, roles)
	}
	return Identity{
		Org: org, Name: leaf.Subject.CommonName, Role: role,
		Serial: leaf.SerialNumber, Fingerprint: FingerprintOf(leaf), NotAfter: leaf.NotAfter,
	}, nil
}

// orgOfLocked picks the organization of a verified leaf: the one whose
// root ends a chain and, when the leaf names an organization in O (always
// for certificates this package issues), the one named.
func (t *TrustStore) orgOfLocked(leaf *x509.Certificate, chains [][]*x509.Certificate) (string, []*x509.Certificate, error) {
	var named string
	if len(leaf.Subject.Organization) > 0 {
		named = leaf.Subject.Organization[0]
	}
	var served []string
	for _, c := range chains {
		orgs := t.mu.rootOrgs[FingerprintOf(c[len(c)-1])]
		switch {
		case named != "" && slices.Contains(orgs, named):
			return named, c, nil
		case named == "" && len(orgs) == 1:
			return orgs[0], c, nil
		}
		served = append(served, orgs...)
	}
	return "", nil, fmt.Errorf("%w: %s names organization %q but its CA serves %v", ErrOrgMismatch, subjectOf(leaf), named, served)
}

// explain turns an x509 verification error into one of the sentinels.
func explain(leaf *x509.Certificate, now time.Time, usage x509.ExtKeyUsage, err error) error {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return fmt.Errorf("%w: %s issued by %q does not chain to any organization root", ErrUnknownCA, subjectOf(leaf), leaf.Issuer.String())
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		switch ci.Reason {
		case x509.Expired:
			if ci.Cert != nil {
				if terr := checkTime(ci.Cert, now); terr != nil {
					return terr
				}
			}
			return fmt.Errorf("%w: %v", ErrExpired, err)
		case x509.IncompatibleUsage:
			return fmt.Errorf("%w: %s is not valid for %s", ErrWrongKeyUsage, subjectOf(leaf), usageName(usage))
		}
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalidCertificate, subjectOf(leaf), err)
}

func usageName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "TLS server authentication"
	case x509.ExtKeyUsageClientAuth:
		return "TLS client authentication"
	}
	return fmt.Sprintf("extended key usage %d", u)
}

func checkTime(c *x509.Certificate, now time.Time) error {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Errorf("%w: %s is valid from %s (now %s)", ErrNotYetValid, subjectOf(c),
			c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fmt.Errorf("%w: %s expired at %s (now %s)", ErrExpired, subjectOf(c),
			c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return nil
}

// subjectOf names a certificate in errors: "CN (O)".
func subjectOf(c *x509.Certificate) string {
	if c == nil {
		return "<nil>"
	}
	s := fmt.Sprintf("%q", c.Subject.CommonName)
	if len(c.Subject.Organization) > 0 {
		s += " (" + c.Subject.Organization[0] + ")"
	}
	return s
}
