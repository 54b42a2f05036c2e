package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"
)

// fuzzCAPEM and fuzzCAKeyPEM are a root CA ("fuzz", valid from 2025-01-01
// for 50 years) made once with NewRootCA and frozen here, with its key (a
// test key, of no value), so that certificates in the fuzz corpus stay
// signed by a root the fuzz targets trust.
const fuzzCAPEM = `-----BEGIN CERTIFICATE-----
MIIBkDCCATegAwIBAgIQHDYspiJP7b9oUMFD3jrs6zAKBggqhkjOPQQDAjAmMQ0w
CwYDVQQKEwRmdXp6MRUwEwYDVQQDEwxmdXp6IFJvb3QgQ0EwIBcNMjUwMTAxMDAw
MDAwWhgPMjA3NDEyMjAwMDAwMDBaMCYxDTALBgNVBAoTBGZ1enoxFTATBgNVBAMT
DGZ1enogUm9vdCBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABFoyTI8sr0h1
PGPtSFWyKMvJ/yHRb6OGvJ5ivz9ajWtfvPKMdCGKHKxrLmiB+Hl11HbtY9fYwJur
mQ0p6miqgw2jRTBDMA4GA1UdDwEB/wQEAwIBhjASBgNVHRMBAf8ECDAGAQH/AgEA
MB0GA1UdDgQWBBQa3WCz7nbNIAsJIgd7g60wNYFo1TAKBggqhkjOPQQDAgNHADBE
AiB47+zJOjTIM80Sb1nURNNLro/D5OzDaq3ZDJ84Z+DEcQIgdwiWbvu50BmFD5rE
JzdZfUjnsPSbsCqOIGfcrbxfApE=
-----END CERTIFICATE-----
`

const fuzzCAKeyPEM = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqTevhO36AxVPuiAa
ZfTu0RiOGk+lwntiwuLsoXZEzoqhRANCAARaMkyPLK9IdTxj7UhVsijLyf8h0W+j
hryeYr8/Wo1rX7zyjHQhihysay5ogfh5ddR27WPX2MCbq5kNKepoqoMN
-----END PRIVATE KEY-----
`

// fuzzNow is the clock of the fuzzed trust store: within the validity of
// the fuzz CA and of the leaves the seeds issue.
var fuzzNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func fuzzCA(t testing.TB) *CA {
	t.Helper()
	certs, err := ParseCertsPEM([]byte(fuzzCAPEM))
	if err != nil {
		t.Fatal(err)
	}
	key, err := DecodeKeyPEM([]byte(fuzzCAKeyPEM), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: certs[0], Key: key}
}

// keyErrors are the errors a key file decoder may answer.
var keyErrors = []error{ErrBadKeyFile, ErrPasswordRequired, ErrWrongPassword}

func isOneOf(err error, sentinels []error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// fuzzScryptWork bounds the scrypt work (N·r·p) the fuzz target spends on
// one input; files that ask for more are only checked against the bounds
// of parseSealParams, the rest run the whole decryption.
const fuzzScryptWork = 1 << 14

// FuzzDecodeEncryptedKey: key files with a password, as an operator's
// disk holds them (an attacker may have written one). Nothing panics; the
// parameters of an encrypted file are refused before any work when they
// ask for more than the bounds; every refusal is one of ErrBadKeyFile,
// ErrPasswordRequired, ErrWrongPassword; a key that opens encrypts and
// opens again to the same key.
func FuzzDecodeEncryptedKey(f *testing.F) {
	ca := fuzzCA(f)
	node, _ := GenerateNodeKey()
	for _, pw := range [][]byte{[]byte("pw"), nil} {
		enc, _ := EncodeKeyPEM(ca.Key, []byte("pw"))
		f.Add(enc, pw)
		nodeEnc, _ := EncodeNodeKeyPEM(node, []byte("pw"))
		f.Add(nodeEnc, pw)
	}
	enc, _ := EncodeKeyPEM(ca.Key, []byte("pw"))
	f.Add(enc, []byte("wrong"))
	f.Add(bytes.Replace(enc, []byte("Scrypt-N: 1024"), []byte("Scrypt-N: 2048"), 1), []byte("pw"))
	f.Add(bytes.Replace(enc, []byte("Scrypt-N: 1024"), []byte("Scrypt-N: 1048576"), 1), []byte("pw"))
	f.Add(bytes.Replace(enc, []byte("Scrypt-R: 8"), []byte("Scrypt-R: 0"), 1), []byte("pw"))
	f.Add(bytes.Replace(enc, []byte("Content: PRIVATE KEY"), []byte("Content: CHARTER NODE KEY"), 1), []byte("pw"))
	plain, _ := EncodeKeyPEM(ca.Key, nil)
	f.Add(plain, []byte("pw"))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n"), []byte("pw"))
	f.Fuzz(func(t *testing.T, data, password []byte) {
		if block, _ := pem.Decode(data); block != nil && block.Type == PEMEncryptedKey {
			p, err := parseSealParams(block.Headers)
			if err != nil {
				if !errors.Is(err, ErrBadKeyFile) {
					t.Fatalf("bad parameters refused with %v, not ErrBadKeyFile", err)
				}
			} else {
				if p.n < 2 || p.n&(p.n-1) != 0 || p.n > maxScryptN || p.r < 1 || p.r > maxScryptR || p.p < 1 || p.p > maxScryptP ||
					128*p.n*p.r > maxScryptMem || len(p.salt) < 8 || len(p.salt) > 64 || len(p.nonce) != 12 {
					t.Fatalf("parameters beyond the bounds accepted: N %d r %d p %d salt %d nonce %d", p.n, p.r, p.p, len(p.salt), len(p.nonce))
				}
				if p.n*p.r*p.p > fuzzScryptWork && len(password) > 0 {
					return // within the bounds, but too slow to fuzz
				}
			}
		}
		key, err := DecodeKeyPEM(data, password)
		checkKey(t, "DecodeKeyPEM", key, err)
		if err == nil {
			again, err := EncodeKeyPEM(key, password)
			if err != nil {
				t.Fatalf("a decoded key does not encode: %v", err)
			}
			if k2, err := DecodeKeyPEM(again, password); err != nil || !k2.Equal(key) {
				t.Fatalf("a re-encoded key does not decode to itself: %v", err)
			}
		}
		nodeKey, err := DecodeNodeKeyPEM(data, password)
		checkKey(t, "DecodeNodeKeyPEM", nodeKey, err)
		if err == nil {
			again, err := EncodeNodeKeyPEM(nodeKey, password)
			if err != nil {
				t.Fatalf("a decoded node key does not encode: %v", err)
			}
			if k2, err := DecodeNodeKeyPEM(again, password); err != nil || !k2.Equal(nodeKey) {
				t.Fatalf("a re-encoded node key does not decode to itself: %v", err)
			}
		}
	})
}

func checkKey(t *testing.T, what string, key *ecdsa.PrivateKey, err error) {
	t.Helper()
	switch {
	case err == nil && key == nil:
		t.Fatalf("%s: no key and no error", what)
	case err != nil && key != nil:
		t.Fatalf("%s: a key and an error", what)
	case err != nil && !isOneOf(err, keyErrors):
		t.Fatalf("%s: error %v is none of ErrBadKeyFile, ErrPasswordRequired, ErrWrongPassword", what, err)
	}
}

// FuzzParseRootsPEM: an organization's roots as a genesis or a governance
// proposal (add an organization, rotate its CA) carries them. Nothing
// panics; what is accepted is CA certificates only, which re-encode to PEM
// that parses to the same certificates, and make a trust store.
func FuzzParseRootsPEM(f *testing.F) {
	ca := fuzzCA(f)
	other, _ := NewRootCA("other", CAOptions{})
	leaf, _, _ := ca.IssueNode("n", []string{"127.0.0.1"}, 0)
	f.Add(fuzzCAPEM)
	f.Add(fuzzCAPEM + string(EncodeCertsPEM(other.Cert)))
	f.Add(fuzzCAPEM + "\n  \n")
	f.Add(fuzzCAPEM + "trailing")
	f.Add(string(EncodeCertsPEM(leaf)))
	f.Add(fuzzCAKeyPEM)
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		certs, err := ParseRootsPEM(text)
		if err != nil {
			if certs != nil {
				t.Fatal("certificates and an error")
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("no certificate and no error")
		}
		for _, c := range certs {
			if !c.IsCA {
				t.Fatalf("accepted %q, not a CA", c.Subject.CommonName)
			}
		}
		again, err := ParseRootsPEM(string(EncodeCertsPEM(certs...)))
		if err != nil || len(again) != len(certs) {
			t.Fatalf("re-encoded roots do not parse: %v", err)
		}
		for i := range certs {
			if !certs[i].Equal(again[i]) {
				t.Fatalf("root %d changed through PEM", i)
			}
		}
		if _, err := NewTrustStore([]OrgRoots{{Name: "org", Roots: certs}}); err != nil {
			t.Logf("trust store refuses the roots: %v", err)
		}
	})
}

// verifyErrors are the errors TrustStore.Verify may answer.
var verifyErrors = []error{ErrNoCertificate, ErrNotYetValid, ErrExpired, ErrWrongKeyUsage, ErrUnknownCA,
	ErrOrgMismatch, ErrInvalidCertificate, ErrOrgInactive, ErrRevoked, ErrWrongRole}

// FuzzVerifyChain: the certificate chain a peer presents in its TLS
// handshake (DER, leaf then one intermediate), checked for a usage and
// role. Nothing panics; a refusal wraps exactly one of Verify's documented
// errors; an accepted leaf names an organization the store knows and is
// signed by one of its roots.
func FuzzVerifyChain(f *testing.F) {
	ca := fuzzCA(f)
	issue := func(req CertRequest) []byte {
		c, _, err := ca.Issue(req)
		if err != nil {
			f.Fatal(err)
		}
		return c.Raw
	}
	from := time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)
	year := 365 * 24 * time.Hour
	node := issue(CertRequest{Role: RoleNode, Name: "n1", NotBefore: from, Validity: 2 * year})
	admin := issue(CertRequest{Role: RoleAdmin, Name: "a1", NotBefore: from, Validity: 2 * year})
	expired := issue(CertRequest{Role: RoleNode, Name: "old", NotBefore: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), Validity: year})
	foreign, _ := NewRootCA("fuzz", CAOptions{NotBefore: from, Validity: 10 * year})
	alien, _, _ := foreign.IssueNode("n2", nil, year)
	for _, c := range []struct {
		leaf, inter []byte
	}{{node, nil}, {admin, nil}, {expired, nil}, {alien.Raw, nil}, {alien.Raw, foreign.Cert.Raw}, {node, ca.Cert.Raw}, {ca.Cert.Raw, nil}, {nil, nil}} {
		f.Add(c.leaf, c.inter, uint8(0))
		f.Add(c.leaf, c.inter, uint8(1))
	}
	f.Fuzz(func(t *testing.T, leafDER, interDER []byte, mode uint8) {
		ts, err := NewTrustStore([]OrgRoots{{Name: "fuzz", Roots: []*x509.Certificate{ca.Cert}}}, WithClock(func() time.Time { return fuzzNow }))
		if err != nil {
			t.Fatal(err)
		}
		var chain []*x509.Certificate
		for _, der := range [][]byte{leafDER, interDER} {
			if len(der) == 0 {
				continue
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return // crypto/tls refuses the handshake before Verify
			}
			chain = append(chain, c)
		}
		usage := x509.ExtKeyUsageClientAuth
		var roles []Role
		if mode&1 == 1 {
			usage, roles = x509.ExtKeyUsageServerAuth, []Role{RoleNode}
		}
		id, err := ts.Verify(chain, usage, roles...)
		if err != nil {
			n := 0
			for _, s := range verifyErrors {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("Verify error %v wraps %d of its documented errors, want exactly 1", err, n)
			}
			return
		}
		if id.Org != "fuzz" {
			t.Fatalf("accepted for organization %q", id.Org)
		}
		if err := chain[0].CheckSignatureFrom(ca.Cert); err != nil {
			t.Fatalf("accepted a leaf the root did not sign: %v", err)
		}
	})
}
