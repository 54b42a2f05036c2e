package console

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func rootPEM(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{cn}},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// The certificates endpoint lists every root of every organization with
// its validity, in organization order, and says which it cannot read.
func TestCertificatesListsRootsWithTheirExpiry(t *testing.T) {
	soon := time.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second)
	later := time.Now().Add(900 * 24 * time.Hour).UTC().Truncate(time.Second)
	roots := map[string]string{
		"org1": rootPEM(t, "org1 root", soon) + rootPEM(t, "org1 next root", later),
		"org0": rootPEM(t, "org0 root", later),
		"org2": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	}
	a := &api{cfg: APIConfig{Roots: func() (map[string]string, error) { return roots, nil }}}
	got, err := a.certificates(nil)
	if err != nil {
		t.Fatal(err)
	}
	certs := got.([]Certificate)
	if len(certs) != 4 {
		t.Fatalf("%d certificates, want 4: %+v", len(certs), certs)
	}
	if certs[0].Org != "org0" || certs[1].Org != "org1" || !certs[1].NotAfter.Equal(soon) || !strings.Contains(certs[1].Subject, "org1 root") ||
		!certs[2].NotAfter.Equal(later) || certs[3].Org != "org2" || certs[3].Error == "" || len(certs[0].Fingerprint) != 66 {
		t.Fatalf("certificates: %+v", certs)
	}
}

// The history ring keeps the newest readings, oldest first, and no more
// than its size.
func TestHistoryKeepsTheNewest(t *testing.T) {
	h := NewHistory(3)
	if got := h.All(); len(got) != 0 {
		t.Fatalf("empty ring: %v", got)
	}
	for i := 1; i <= 7; i++ {
		h.Add(Counters{Time: float64(i)})
		got := h.All()
		if len(got) != min(i, 3) || got[len(got)-1].Time != float64(i) || got[0].Time != float64(max(1, i-2)) {
			t.Fatalf("after %d readings: %v", i, got)
		}
	}
}
