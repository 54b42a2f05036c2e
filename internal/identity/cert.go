package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
	"unicode"
)

// Role is what the holder of a certificate is, written in the first
// organizational unit (OU) of the subject, as Hyperledger Fabric's node OUs
// do. The transport admits only RoleNode; the API gateway admits admins and
// clients.
type Role string

// The roles a CA issues certificates for.
const (
	RoleNode   Role = "node"
	RoleAdmin  Role = "admin"
	RoleClient Role = "client"
)

// Validity defaults.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	// Backdate is how far before "now" NotBefore is set when the caller
	// leaves it zero, so that a peer whose clock is a little behind accepts
	// a freshly issued certificate.
	Backdate = 5 * time.Minute
	// maxNameLen is the X.509 upper bound of an organization name
	// (ub-organization-name, RFC 5280) and of a common name.
	maxNameLen = 64
)

// ErrInvalidRequest is wrapped by every error about a malformed CA or
// certificate request (bad name, validity, key).
var ErrInvalidRequest = errors.New("invalid certificate request")

// CA is an organization's certificate authority: a self-signed root
// certificate and its ECDSA P-256 key. A CA holds no mutable state: Issue
// may be called from several goroutines.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// CAOptions tunes NewRootCA. The zero value gives a ten-year root named
// "<org> Root CA" valid from Backdate ago.
type CAOptions struct {
	// CommonName of the root; default "<org> Root CA".
	CommonName string
	// NotBefore; zero means now minus Backdate.
	NotBefore time.Time
	// Validity is NotAfter - NotBefore; zero means DefaultCAValidity.
	Validity time.Duration
}

// NewRootCA creates an organization's self-signed root CA with a new P-256
// key. The organization name goes into the subject's O; it is how the
// genesis, the registry and the trust store name the organization.
func NewRootCA(org string, opts CAOptions) (*CA, error) {
	if err := checkName("organization", org); err != nil {
		return nil, err
	}
	cn := opts.CommonName
	if cn == "" {
		cn = org + " Root CA"
		if len(cn) > maxNameLen {
			cn = cn[:maxNameLen]
		}
	}
	if err := checkName("common name", cn); err != nil {
		return nil, err
	}
	notBefore, notAfter, err := validity(opts.NotBefore, opts.Validity, DefaultCAValidity)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{org}, CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The root signs leaves directly; an intermediate would need a
		// new root anyway.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Org is the organization this CA belongs to (the root's subject O).
func (ca *CA) Org() string {
	if len(ca.Cert.Subject.Organization) == 0 {
		return ""
	}
	return ca.Cert.Subject.Organization[0]
}

// CertRequest describes a certificate to issue.
type CertRequest struct {
	// Role is node, admin or client. Node certificates serve both TLS
	// client and server authentication (nodes dial each other); admin and
	// client certificates serve client authentication only.
	Role Role
	// Name of the node or user, written in the subject's CN.
	Name string
	// DNSNames and IPAddresses are the subject alternative names.
	DNSNames    []string
	IPAddresses []net.IP
	// NotBefore; zero means now minus Backdate.
	NotBefore time.Time
	// Validity is NotAfter - NotBefore; zero means DefaultCertValidity.
	// The certificate may not outlive its CA.
	Validity time.Duration
	// PublicKey to certify (P-256). Nil: Issue generates a key pair and
	// returns the private key.
	PublicKey *ecdsa.PublicKey
}

// Issue signs a certificate for req. It returns the new private key when
// req.PublicKey is nil, and nil otherwise.
func (ca *CA) Issue(req CertRequest) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	var extUsage []x509.ExtKeyUsage
	switch req.Role {
	case RoleNode:
		extUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case RoleAdmin, RoleClient:
		extUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return nil, nil, fmt.Errorf("%w: role %q is not one of node, admin, client", ErrInvalidRequest, req.Role)
	}
	if err := checkName("name", req.Name); err != nil {
		return nil, nil, err
	}
	for _, d := range req.DNSNames {
		if d == "" || strings.ContainsFunc(d, func(r rune) bool { return r > unicode.MaxASCII || unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return nil, nil, fmt.Errorf("%w: DNS name %q", ErrInvalidRequest, d)
		}
	}
	notBefore, notAfter, err := validity(req.NotBefore, req.Validity, DefaultCertValidity)
	if err != nil {
		return nil, nil, err
	}
	if notAfter.After(ca.Cert.NotAfter) {
		return nil, nil, fmt.Errorf("%w: certificate would expire %s, after its CA (%s)",
			ErrInvalidRequest, notAfter.UTC().Format(time.RFC3339), ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	pub := req.PublicKey
	var key *ecdsa.PrivateKey
	if pub == nil {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("generate key: %w", err)
		}
		pub = &key.PublicKey
	} else if pub.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: public key must be ECDSA P-256", ErrInvalidRequest)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization:       []string{ca.Org()},
			OrganizationalUnit: []string{string(req.Role)},
			CommonName:         req.Name,
		},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           extUsage,
		BasicConstraintsValid: true,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, key, nil
}

// IssueNode issues a node certificate. Each host is an IP address or a
// DNS name and becomes a subject alternative name. Validity zero means
// DefaultCertValidity.
func (ca *CA) IssueNode(name string, hosts []string, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	dns, ips := SplitHosts(hosts)
	return ca.Issue(CertRequest{Role: RoleNode, Name: name, DNSNames: dns, IPAddresses: ips, Validity: validity})
}

// IssueAdmin issues an organization administrator's client certificate.
func (ca *CA) IssueAdmin(name string, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	return ca.Issue(CertRequest{Role: RoleAdmin, Name: name, Validity: validity})
}

// IssueClient issues an API client certificate.
func (ca *CA) IssueClient(name string, validity time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	return ca.Issue(CertRequest{Role: RoleClient, Name: name, Validity: validity})
}

// SplitHosts sorts host strings into IP addresses and DNS names.
func SplitHosts(hosts []string) (dns []string, ips []net.IP) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

// RoleOf reads the role a certificate was issued for; "" when the first
// OU is not a role this package issues.
func RoleOf(cert *x509.Certificate) Role {
	if len(cert.Subject.OrganizationalUnit) == 0 {
		return ""
	}
	switch r := Role(cert.Subject.OrganizationalUnit[0]); r {
	case RoleNode, RoleAdmin, RoleClient:
		return r
	}
	return ""
}

func checkName(what, s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalidRequest, what)
	case len(s) > maxNameLen:
		return fmt.Errorf("%w: %s %q is longer than %d bytes", ErrInvalidRequest, what, s, maxNameLen)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%w: %s %q contains control characters", ErrInvalidRequest, what, s)
	}
	return nil
}

func validity(notBefore time.Time, d, def time.Duration) (time.Time, time.Time, error) {
	if d < 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("%w: negative validity %s", ErrInvalidRequest, d)
	}
	if d == 0 {
		d = def
	}
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-Backdate)
	}
	// X.509 times have second precision; truncating keeps the parsed
	// certificate equal to what was asked.
	notBefore = notBefore.UTC().Truncate(time.Second)
	return notBefore, notBefore.Add(d), nil
}

// newSerial returns a random positive 127-bit serial number, as RFC 5280
// recommends (unpredictable, at most 20 octets).
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 127)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
