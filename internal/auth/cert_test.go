package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/charter-ledger/charter/internal/identity"
	"github.com/charter-ledger/charter/internal/system"
)

type certFixture struct {
	org1, org2, stranger *identity.CA
	trust                *identity.TrustStore
}

func newCertFixture(t *testing.T) *certFixture {
	t.Helper()
	f := &certFixture{}
	var err error
	for _, p := range []struct {
		ca  **identity.CA
		org string
	}{{&f.org1, "org1"}, {&f.org2, "org2"}, {&f.stranger, "org1"}} {
		if *p.ca, err = identity.NewRootCA(p.org, identity.CAOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f.trust, err = identity.NewTrustStore([]identity.OrgRoots{
		{Name: "org1", Roots: []*x509.Certificate{f.org1.Cert}},
		{Name: "org2", Roots: []*x509.Certificate{f.org2.Cert}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func issue(t *testing.T, ca *identity.CA, role identity.Role, name string) *x509.Certificate {
	t.Helper()
	c, _, err := ca.Issue(identity.CertRequest{Role: role, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCertAuthenticator(t *testing.T) {
	f := newCertFixture(t)
	revokedByRegistry := issue(t, f.org1, identity.RoleClient, "gone")
	a, err := NewCertAuthenticator(CertConfig{
		Trust:   f.trust,
		Revoked: func(fp identity.Fingerprint) bool { return fp == identity.FingerprintOf(revokedByRegistry) },
		Roles: map[string]system.Role{
			"org1/writer": system.RoleRead | system.RoleWrite,
			"org2/*":      system.RoleAuditor,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	revokedByTrust := issue(t, f.org1, identity.RoleClient, "old")
	f.trust.RevokeFingerprint(identity.FingerprintOf(revokedByTrust))

	for _, tc := range []struct {
		name   string
		chain  []*x509.Certificate
		who    string
		roles  system.Role
		status int
		msg    string
	}{
		{name: "good, default roles", chain: []*x509.Certificate{issue(t, f.org1, identity.RoleClient, "app")}, who: "org1/app", roles: system.RoleRead},
		{name: "good, mapped by name", chain: []*x509.Certificate{issue(t, f.org1, identity.RoleClient, "writer")}, who: "org1/writer", roles: system.RoleRead | system.RoleWrite},
		{name: "good, mapped by organization", chain: []*x509.Certificate{issue(t, f.org2, identity.RoleClient, "x"), f.org2.Cert}, who: "org2/x", roles: system.RoleAuditor},
		{name: "node certificate", chain: []*x509.Certificate{issue(t, f.org1, identity.RoleNode, "node1")}, status: 401, msg: "wrong certificate role"},
		{name: "admin certificate", chain: []*x509.Certificate{issue(t, f.org1, identity.RoleAdmin, "boss")}, status: 401, msg: "wrong certificate role"},
		{name: "unknown CA", chain: []*x509.Certificate{issue(t, f.stranger, identity.RoleClient, "app")}, status: 401, msg: "unknown CA"},
		{name: "revoked in the trust store", chain: []*x509.Certificate{revokedByTrust}, status: 401, msg: "certificate revoked"},
		{name: "revoked in the registry", chain: []*x509.Certificate{revokedByRegistry}, status: 401, msg: "certificate revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.TLS = &tls.ConnectionState{PeerCertificates: tc.chain}
			id, err := a.Authenticate(r)
			if tc.status != 0 {
				var ae *Error
				if !errors.As(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Msg, tc.msg) || ae.Code != "invalid_client" {
					t.Fatalf("got %v, %v; want a %d *Error with %q", id, err, tc.status, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Kind != KindCertificate || id.Name() != tc.who || id.Roles != tc.roles {
				t.Fatalf("identity %+v, want %s with %s", id, tc.who, tc.roles)
			}
		})
	}

	// The issuer: the CA's fingerprint when the chain holds it, its key id
	// otherwise.
	leaf := issue(t, f.org2, identity.RoleClient, "y")
	id, err := a.Identify([]*x509.Certificate{leaf, f.org2.Cert})
	if err != nil || id.Issuer != identity.FingerprintOf(f.org2.Cert).String() {
		t.Fatalf("issuer %q, %v; want the CA's fingerprint", id.Issuer, err)
	}
	id, err = a.Identify([]*x509.Certificate{leaf})
	if err != nil || !strings.HasPrefix(id.Issuer, "keyid:") {
		t.Fatalf("issuer %q, %v; want keyid:...", id.Issuer, err)
	}

	// No certificate: anonymous.
	r := httptest.NewRequest("GET", "/", nil)
	if id, err := a.Authenticate(r); err != nil || id.Kind != KindAnonymous || id.Roles != 0 {
		t.Fatalf("no certificate: %+v, %v", id, err)
	}

	// An organization that is suspended: 403.
	if err := f.trust.SetOrgActive("org2", false); err != nil {
		t.Fatal(err)
	}
	_, err = a.Identify([]*x509.Certificate{leaf})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Msg != "client certificate: organization org2 is not an active member" {
		t.Fatalf("suspended organization: %v", err)
	}
}

func TestCertAuthenticatorExpired(t *testing.T) {
	f := newCertFixture(t)
	old, _, err := f.org1.Issue(identity.CertRequest{Role: identity.RoleClient, Name: "app",
		NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewCertAuthenticator(CertConfig{Trust: f.trust})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Identify([]*x509.Certificate{old}); err == nil || !strings.Contains(err.Error(), "certificate expired") {
		t.Fatalf("expired certificate: %v", err)
	}
}

func TestCertConfigErrors(t *testing.T) {
	if _, err := NewCertAuthenticator(CertConfig{}); err == nil || !strings.Contains(err.Error(), "CertConfig.Trust") {
		t.Fatalf("no trust: %v", err)
	}
	f := newCertFixture(t)
	for _, k := range []string{"org1", "/app", "org1/", ""} {
		if _, err := NewCertAuthenticator(CertConfig{Trust: f.trust, Roles: map[string]system.Role{k: system.RoleRead}}); err == nil ||
			!strings.Contains(err.Error(), "want org/CN, org/* or *") {
			t.Errorf("roles key %q: %v", k, err)
		}
	}
}

// A certificate through the middleware: its identity reaches the handler;
// a bad one gets 401 without a token challenge's error code.
func TestMiddlewareClientCertificate(t *testing.T) {
	f := newCertFixture(t)
	a, err := NewCertAuthenticator(CertConfig{Trust: f.trust, Roles: map[string]system.Role{"*": system.RoleRead | system.RoleWrite}})
	if err != nil {
		t.Fatal(err)
	}
	hs := newHarness(t, func(c *MiddlewareConfig) { c.Certs = a; c.Required = true })
	do := func(cert *x509.Certificate, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/", rpcBody())
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		hs.h.ServeHTTP(w, r)
		return w
	}
	if w := do(issue(t, f.org1, identity.RoleClient, "app"), ""); w.Code != 200 {
		t.Fatalf("good certificate: %d %s", w.Code, w.Body)
	}
	if id, _ := hs.seen.identity(); id.Kind != KindCertificate || id.Name() != "org1/app" || id.Roles != system.RoleRead|system.RoleWrite {
		t.Fatalf("handler saw %+v", id)
	}
	w := do(issue(t, f.stranger, identity.RoleClient, "app"), "")
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != `Bearer realm="charter"` || !strings.Contains(w.Body.String(), "unknown CA") {
		t.Fatalf("unknown CA: %d %q %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
	}
	// A token wins over a certificate.
	if w := do(issue(t, f.stranger, identity.RoleClient, "app"), "tok-org2"); w.Code != 200 {
		t.Fatalf("token with a bad certificate: %d", w.Code)
	}
	if id, _ := hs.seen.identity(); id.Name() != "org2/svc" {
		t.Fatalf("handler saw %+v, want the token's caller", id)
	}
	// OrgActive applies to certificates too.
	w = do(issue(t, f.org2, identity.RoleClient, "x"), "")
	if w.Code != 200 {
		t.Fatalf("org2: %d", w.Code)
	}
	hs2 := newHarness(t, func(c *MiddlewareConfig) {
		c.Certs = a
		c.OrgActive = func(org string) bool { return org != "org2" }
	})
	r := httptest.NewRequest("POST", "/", rpcBody())
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{issue(t, f.org2, identity.RoleClient, "x")}}
	w = httptest.NewRecorder()
	hs2.h.ServeHTTP(w, r)
	if w.Code != 403 || !strings.Contains(w.Body.String(), "organization org2 is not an active member") {
		t.Fatalf("inactive organization: %d %s", w.Code, w.Body)
	}
	lines := hs2.lines(t)
	if len(lines) != 1 || lines[0]["who"] != "org2/x" || lines[0]["kind"] != "certificate" || lines[0]["result"] != "denied" {
		t.Fatalf("access log %v", lines)
	}
}
