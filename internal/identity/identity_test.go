package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func init() {
	// Tests write many encrypted keys; the production cost is exercised
	// once in TestKeyFileProductionCost.
	scryptN = 1 << 10
}

func mustCA(t *testing.T, org string) *CA {
	t.Helper()
	ca, err := NewRootCA(org, CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestRootCAAndNodeCertificateProfile(t *testing.T) {
	ca := mustCA(t, "Acme Bank")
	if !ca.Cert.IsCA || ca.Org() != "Acme Bank" || ca.Cert.Subject.CommonName != "Acme Bank Root CA" {
		t.Fatalf("root subject %v, CA %v", ca.Cert.Subject, ca.Cert.IsCA)
	}
	if got := ca.Cert.NotAfter.Sub(ca.Cert.NotBefore); got != DefaultCAValidity {
		t.Fatalf("CA validity %s", got)
	}
	cert, key, err := ca.IssueNode("node0", []string{"127.0.0.1", "node0.acme.example"}, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if key == nil || !key.PublicKey.Equal(cert.PublicKey) || key.Curve != elliptic.P256() {
		t.Fatal("issued key does not match certificate")
	}
	if cert.Subject.CommonName != "node0" || cert.Subject.Organization[0] != "Acme Bank" || RoleOf(cert) != RoleNode {
		t.Fatalf("subject %v", cert.Subject)
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) ||
		len(cert.DNSNames) != 1 || cert.DNSNames[0] != "node0.acme.example" {
		t.Fatalf("SANs %v %v", cert.IPAddresses, cert.DNSNames)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got != 48*time.Hour {
		t.Fatalf("validity %s", got)
	}
	if cert.IsCA || cert.KeyUsage != x509.KeyUsageDigitalSignature || len(cert.ExtKeyUsage) != 2 {
		t.Fatalf("usage %v %v", cert.KeyUsage, cert.ExtKeyUsage)
	}
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Fatal(err)
	}

	admin, _, err := ca.IssueAdmin("alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	if RoleOf(admin) != RoleAdmin || len(admin.ExtKeyUsage) != 1 || admin.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("admin %v %v", admin.Subject, admin.ExtKeyUsage)
	}
	if got := admin.NotAfter.Sub(admin.NotBefore); got != DefaultCertValidity {
		t.Fatalf("default validity %s", got)
	}
	client, _, err := ca.IssueClient("app1", 0)
	if err != nil || RoleOf(client) != RoleClient {
		t.Fatalf("client %v %v", client, err)
	}
}

func TestIssueRejectsBadRequests(t *testing.T) {
	ca := mustCA(t, "org")
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	cases := map[string]CertRequest{
		"no role":            {Name: "n"},
		"bad role":           {Role: "root", Name: "n"},
		"empty name":         {Role: RoleNode, Name: " "},
		"long name":          {Role: RoleNode, Name: strings.Repeat("x", 65)},
		"control chars":      {Role: RoleNode, Name: "a\nb"},
		"negative validity":  {Role: RoleNode, Name: "n", Validity: -time.Hour},
		"outlives its CA":    {Role: RoleNode, Name: "n", Validity: 20 * 365 * 24 * time.Hour},
		"bad dns name":       {Role: RoleNode, Name: "n", DNSNames: []string{"a b"}},
		"wrong curve of key": {Role: RoleNode, Name: "n", PublicKey: &p384.PublicKey},
	}
	for name, req := range cases {
		if _, _, err := ca.Issue(req); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err = %v, want ErrInvalidRequest", name, err)
		}
	}
	if _, err := NewRootCA("", CAOptions{}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("empty org: %v", err)
	}
}

func TestIssueForAGivenPublicKey(t *testing.T) {
	ca := mustCA(t, "org")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cert, key, err := ca.Issue(CertRequest{Role: RoleClient, Name: "c", PublicKey: &k.PublicKey})
	if err != nil || key != nil || !k.PublicKey.Equal(cert.PublicKey) {
		t.Fatalf("cert %v key %v err %v", cert, key, err)
	}
}

func TestKeyFilesPlainAndEncrypted(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, "org")
	_, key, err := ca.IssueNode("n", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "correct horse"} {
		path := filepath.Join(dir, "key"+pw+".pem")
		if err := WriteKeyFile(path, key, []byte(pw)); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v err %v", st.Mode(), err)
		}
		got, err := ReadKeyFile(path, []byte(pw))
		if err != nil || !got.Equal(key) {
			t.Fatalf("password %q: read back %v", pw, err)
		}
		if err := WriteKeyFile(path, key, nil); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("overwrite: %v", err)
		}
	}
	enc := filepath.Join(dir, "keycorrect horse.pem")
	data, _ := os.ReadFile(enc)
	if !strings.Contains(string(data), "BEGIN "+PEMEncryptedKey) || strings.Contains(string(data), "BEGIN PRIVATE KEY") {
		t.Fatalf("encrypted file:\n%s", data)
	}
	_, err = ReadKeyFile(enc, []byte("wrong"))
	if !errors.Is(err, ErrWrongPassword) || err.Error() != "wrong password for key file "+enc {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := ReadKeyFile(enc, nil); !errors.Is(err, ErrPasswordRequired) || !strings.Contains(err.Error(), enc) {
		t.Fatalf("no password: %v", err)
	}
	// An edited header (cheaper KDF) must not open: headers are
	// authenticated.
	tampered := strings.Replace(string(data), "Scrypt-R: 8", "Scrypt-R: 1", 1)
	if _, err := DecodeKeyPEM([]byte(tampered), []byte("correct horse")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("tampered header: %v", err)
	}
	// A crafted file cannot demand unbounded scrypt work.
	huge := strings.Replace(string(data), "Scrypt-N: 1024", "Scrypt-N: 1073741824", 1)
	if _, err := DecodeKeyPEM([]byte(huge), []byte("x")); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("huge N: %v", err)
	}
	if _, err := DecodeKeyPEM([]byte("garbage"), nil); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := DecodeKeyPEM(EncodeCertsPEM(ca.Cert), nil); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("certificate as key: %v", err)
	}
}

func TestKeyFileProductionCost(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("scrypt at production cost takes seconds under -race; covered by the plain run")
	}
	old := scryptN
	scryptN = 1 << 15
	defer func() { scryptN = old }()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	data, err := EncodeKeyPEM(key, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "Scrypt-N: 32768") {
		t.Fatalf("headers:\n%s", data)
	}
	got, err := DecodeKeyPEM(data, []byte("pw"))
	if err != nil || !got.Equal(key) {
		t.Fatal(err)
	}
}

func TestCAAndTLSCertificateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, "org")
	crt, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if err := SaveCA(ca, crt, key, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	back, err := LoadCA(crt, key, []byte("pw"))
	if err != nil || !back.Cert.Equal(ca.Cert) || !back.Key.Equal(ca.Key) {
		t.Fatalf("LoadCA: %v", err)
	}
	if st, _ := os.Stat(crt); st.Mode().Perm() != 0o644 {
		t.Fatalf("cert mode %v", st.Mode())
	}
	if _, err := LoadCA(crt, key, []byte("nope")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("LoadCA wrong password: %v", err)
	}

	cert, nkey, _ := back.IssueNode("n1", []string{"127.0.0.1"}, 0)
	ncrt, nkeyPath := filepath.Join(dir, "n1.crt"), filepath.Join(dir, "n1.key")
	if err := WriteCertFile(ncrt, cert); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(nkeyPath, nkey, nil); err != nil {
		t.Fatal(err)
	}
	tc, err := LoadTLSCertificate(ncrt, nkeyPath, nil)
	if err != nil || !tc.Leaf.Equal(cert) {
		t.Fatalf("LoadTLSCertificate: %v", err)
	}
	// A key that does not belong to the certificate.
	other := filepath.Join(dir, "other.key")
	_ = WriteKeyFile(other, ca.Key, nil)
	if _, err := LoadTLSCertificate(ncrt, other, nil); err == nil {
		t.Fatal("mismatched key accepted")
	}
	if _, err := ReadCertFile(nkeyPath); !errors.Is(err, ErrBadCertFile) {
		t.Fatalf("key as cert: %v", err)
	}
	var _ tls.Certificate = tc
}

func TestNodeKeys(t *testing.T) {
	dir := t.TempDir()
	key, err := GenerateNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "secret"} {
		path := filepath.Join(dir, "nodekey"+pw)
		if err := SaveNodeKey(path, key, []byte(pw)); err != nil {
			t.Fatal(err)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v", st.Mode())
		}
		got, err := LoadNodeKey(path, []byte(pw))
		if err != nil || NodeIDOf(got) != NodeIDOf(key) {
			t.Fatalf("password %q: %v", pw, err)
		}
	}
	if _, err := LoadNodeKey(filepath.Join(dir, "nodekeysecret"), []byte("bad")); err == nil ||
		err.Error() != "wrong password for key file "+filepath.Join(dir, "nodekeysecret") {
		t.Fatalf("wrong password: %v", err)
	}
	// go-ethereum's hex nodekey format.
	geth := filepath.Join(dir, "geth")
	_ = os.WriteFile(geth, []byte("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291\n"), 0o600)
	got, err := LoadNodeKey(geth, nil)
	if err != nil || NodeIDOf(got).Hex() != "0x71562b71999873DB5b286dF957af199Ec94617F7" {
		t.Fatalf("geth key: %v %v", got, err)
	}
	// A P-256 TLS key is not a node key, and vice versa.
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := EncodeNodeKeyPEM(p256, nil); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("P-256 as node key: %v", err)
	}
	if _, err := EncodeKeyPEM(key, nil); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("secp256k1 as TLS key: %v", err)
	}
}

// fixedClock is a settable clock for trust store tests.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fixedClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func TestTrustStoreVerify(t *testing.T) {
	orgA, orgB, foreign := mustCA(t, "A"), mustCA(t, "B"), mustCA(t, "Mallory")
	clock := &fixedClock{t: time.Now()}
	ts, err := NewTrustStore([]OrgRoots{{Name: "A", Roots: []*x509.Certificate{orgA.Cert}}, {Name: "B", Roots: []*x509.Certificate{orgB.Cert}}},
		WithClock(clock.now))
	if err != nil {
		t.Fatal(err)
	}
	nodeA, _, _ := orgA.IssueNode("a1", nil, time.Hour)
	nodeB, _, _ := orgB.IssueNode("b1", nil, time.Hour)
	adminA, _, _ := orgA.IssueAdmin("alice", time.Hour)
	evil, _, _ := foreign.IssueNode("m1", nil, time.Hour)
	expired, _, _ := orgA.Issue(CertRequest{Role: RoleNode, Name: "old", NotBefore: time.Now().Add(-3 * time.Hour), Validity: time.Hour})
	future, _, _ := orgA.Issue(CertRequest{Role: RoleNode, Name: "new", NotBefore: time.Now().Add(time.Hour), Validity: time.Hour})

	id, err := ts.Verify([]*x509.Certificate{nodeA}, x509.ExtKeyUsageClientAuth, RoleNode)
	if err != nil || id.Org != "A" || id.Name != "a1" || id.Role != RoleNode || id.Fingerprint != FingerprintOf(nodeA) {
		t.Fatalf("node A: %+v %v", id, err)
	}
	if id, err := ts.Verify([]*x509.Certificate{nodeB}, x509.ExtKeyUsageServerAuth); err != nil || id.Org != "B" {
		t.Fatalf("node B: %+v %v", id, err)
	}

	cases := []struct {
		name  string
		chain []*x509.Certificate
		usage x509.ExtKeyUsage
		roles []Role
		want  error
		says  string
	}{
		{"nothing", nil, x509.ExtKeyUsageAny, nil, ErrNoCertificate, "no certificate"},
		{"foreign CA", []*x509.Certificate{evil}, x509.ExtKeyUsageClientAuth, nil, ErrUnknownCA, `"m1" (Mallory) issued by`},
		{"expired", []*x509.Certificate{expired}, x509.ExtKeyUsageClientAuth, nil, ErrExpired, `"old" (A) expired at`},
		{"not yet valid", []*x509.Certificate{future}, x509.ExtKeyUsageClientAuth, nil, ErrNotYetValid, `"new" (A) is valid from`},
		{"admin as server", []*x509.Certificate{adminA}, x509.ExtKeyUsageServerAuth, nil, ErrWrongKeyUsage, "TLS server authentication"},
		{"admin as node", []*x509.Certificate{adminA}, x509.ExtKeyUsageClientAuth, []Role{RoleNode}, ErrWrongRole, `role "admin"`},
		{"root as leaf", []*x509.Certificate{orgA.Cert}, x509.ExtKeyUsageAny, nil, ErrWrongKeyUsage, "CA certificate"},
	}
	for _, c := range cases {
		_, err := ts.Verify(c.chain, c.usage, c.roles...)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: err = %v, want %v saying %q", c.name, err, c.want, c.says)
		}
	}

	// The clock decides expiry.
	clock.set(time.Now().Add(2 * time.Hour))
	if _, err := ts.Verify([]*x509.Certificate{nodeA}, x509.ExtKeyUsageClientAuth); !errors.Is(err, ErrExpired) {
		t.Fatalf("after expiry: %v", err)
	}
	clock.set(time.Now())

	// Revocation by fingerprint, by serial, and of a whole root.
	watch := ts.Watch()
	ts.RevokeFingerprint(FingerprintOf(nodeA))
	select {
	case <-watch:
	default:
		t.Fatal("Watch did not fire on revocation")
	}
	if _, err := ts.Verify([]*x509.Certificate{nodeA}, x509.ExtKeyUsageClientAuth); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked: %v", err)
	}
	if err := ts.RevokeSerial("B", nodeB.SerialNumber); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Verify([]*x509.Certificate{nodeB}, x509.ExtKeyUsageClientAuth); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked serial: %v", err)
	}
	if err := ts.RevokeSerial("Z", nodeB.SerialNumber); !errors.Is(err, ErrUnknownOrg) {
		t.Fatalf("unknown org: %v", err)
	}
	ts.RevokeFingerprint(FingerprintOf(orgA.Cert))
	if _, err := ts.Verify([]*x509.Certificate{adminA}, x509.ExtKeyUsageClientAuth); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked root: %v", err)
	}

	// Organization status.
	nodeB2, _, _ := orgB.IssueNode("b2", nil, time.Hour)
	if err := ts.SetOrgActive("B", false); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Verify([]*x509.Certificate{nodeB2}, x509.ExtKeyUsageClientAuth); !errors.Is(err, ErrOrgInactive) {
		t.Fatalf("inactive org: %v", err)
	}
	_ = ts.SetOrgActive("B", true)
	if _, err := ts.Verify([]*x509.Certificate{nodeB2}, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("reactivated org: %v", err)
	}

	// A new organization admitted at runtime.
	if _, err := ts.Verify([]*x509.Certificate{evil}, x509.ExtKeyUsageClientAuth); !errors.Is(err, ErrUnknownCA) {
		t.Fatal(err)
	}
	if err := ts.AddOrg(OrgRoots{Name: "Mallory", Roots: []*x509.Certificate{foreign.Cert}}); err != nil {
		t.Fatal(err)
	}
	if id, err := ts.Verify([]*x509.Certificate{evil}, x509.ExtKeyUsageClientAuth); err != nil || id.Org != "Mallory" {
		t.Fatalf("admitted org: %v", err)
	}
	if got := ts.Orgs(); strings.Join(got, ",") != "A,B,Mallory" {
		t.Fatalf("orgs %v", got)
	}
}

func TestTrustStoreSharedCA(t *testing.T) {
	shared := mustCA(t, "Consortium")
	ts, err := NewTrustStore([]OrgRoots{
		{Name: "Alpha", Roots: []*x509.Certificate{shared.Cert}},
		{Name: "Beta", Roots: []*x509.Certificate{shared.Cert}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The shared CA issues certificates naming each member in O.
	issueFor := func(org string) *x509.Certificate {
		// Issue writes the CA's O into the leaf; a copy of the root
		// naming the member keeps the root's raw subject as issuer.
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmplCA := *shared.Cert
		tmplCA.Subject.Organization = []string{org}
		c, _, err := (&CA{Cert: &tmplCA, Key: shared.Key}).Issue(CertRequest{Role: RoleNode, Name: "n-" + org, PublicKey: &k.PublicKey})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, org := range []string{"Alpha", "Beta"} {
		id, err := ts.Verify([]*x509.Certificate{issueFor(org)}, x509.ExtKeyUsageClientAuth)
		if err != nil || id.Org != org {
			t.Fatalf("%s: %+v %v", org, id, err)
		}
	}
	if _, err := ts.Verify([]*x509.Certificate{issueFor("Gamma")}, x509.ExtKeyUsageClientAuth); !errors.Is(err, ErrOrgMismatch) {
		t.Fatalf("unlisted org under shared CA: %v", err)
	}
}

func TestNewTrustStoreRejectsBadGenesis(t *testing.T) {
	ca := mustCA(t, "A")
	leaf, _, _ := ca.IssueNode("n", nil, 0)
	bad := [][]OrgRoots{
		{{Name: "A"}},
		{{Name: "", Roots: []*x509.Certificate{ca.Cert}}},
		{{Name: "A", Roots: []*x509.Certificate{leaf}}},
		{{Name: "A", Roots: []*x509.Certificate{ca.Cert}}, {Name: "A", Roots: []*x509.Certificate{ca.Cert}}},
	}
	for i, orgs := range bad {
		if _, err := NewTrustStore(orgs); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	o, err := OrgRootsFromPEM("A", string(EncodeCertsPEM(ca.Cert)))
	if err != nil || len(o.Roots) != 1 {
		t.Fatal(err)
	}
	if _, err := OrgRootsFromPEM("A", "junk"); !errors.Is(err, ErrBadCertFile) {
		t.Fatal(err)
	}
}

func TestTrustStoreConcurrentUpdatesAndVerifies(t *testing.T) {
	ca := mustCA(t, "A")
	ts, _ := NewTrustStore([]OrgRoots{{Name: "A", Roots: []*x509.Certificate{ca.Cert}}})
	leaf, _, _ := ca.IssueNode("n", nil, 0)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				_, _ = ts.Verify([]*x509.Certificate{leaf}, x509.ExtKeyUsageClientAuth)
			}
		}()
	}
	// A watcher sees at least one change and then stops.
	fired := make(chan struct{})
	watch := ts.Watch()
	go func() {
		<-watch
		close(fired)
	}()
	for i := 0; i < 200; i++ {
		_ = ts.SetOrgActive("A", i%2 == 1)
		var fp Fingerprint
		fp[0], fp[1] = byte(i), 1
		ts.RevokeFingerprint(fp)
	}
	wg.Wait()
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher not notified")
	}
	if _, err := ts.Verify([]*x509.Certificate{leaf}, x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatalf("after updates: %v", err)
	}
}

func TestParseFingerprint(t *testing.T) {
	ca := mustCA(t, "A")
	fp := FingerprintOf(ca.Cert)
	for _, s := range []string{fp.String(), "0x" + fp.String(), strings.ToUpper(fp.String())} {
		got, err := ParseFingerprint(s)
		if err != nil || got != fp {
			t.Fatalf("%q: %v", s, err)
		}
	}
	var colon []string
	for i := 0; i < 32; i++ {
		colon = append(colon, fp.String()[2*i:2*i+2])
	}
	if got, err := ParseFingerprint(strings.Join(colon, ":")); err != nil || got != fp {
		t.Fatal(err)
	}
	if _, err := ParseFingerprint("abcd"); err == nil {
		t.Fatal("short fingerprint accepted")
	}
}

// FuzzDecodePEM: key and certificate decoders take files from outside
// (a genesis, a home folder). Without a password no KDF runs, so every
// input is cheap; any input decodes or fails with an error.
func FuzzDecodePEM(f *testing.F) {
	ca, _ := NewRootCA("org", CAOptions{})
	node, _ := GenerateNodeKey()
	plain, _ := EncodeKeyPEM(ca.Key, nil)
	enc, _ := EncodeKeyPEM(ca.Key, []byte("pw"))
	nodePlain, _ := EncodeNodeKeyPEM(node, nil)
	nodeEnc, _ := EncodeNodeKeyPEM(node, []byte("pw"))
	for _, seed := range [][]byte{plain, enc, nodePlain, nodeEnc, EncodeCertsPEM(ca.Cert), []byte("garbage")} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := DecodeKeyPEM(data, nil); err == nil && k == nil {
			t.Fatal("nil key without error")
		}
		if k, err := DecodeNodeKeyPEM(data, nil); err == nil && k == nil {
			t.Fatal("nil node key without error")
		}
		if cs, err := ParseCertsPEM(data); err == nil && len(cs) == 0 {
			t.Fatal("no certificate without error")
		}
	})
}
