package identity

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/crypto/scrypt"

	"github.com/charter-ledger/charter/internal/durable"
)

// PEM block types this package writes.
const (
	// PEMCertificate is the standard certificate block.
	PEMCertificate = "CERTIFICATE"
	// PEMPrivateKey is the standard unencrypted PKCS#8 private key block.
	PEMPrivateKey = "PRIVATE KEY"
	// PEMEncryptedKey is Charter's password-protected key block. Its
	// headers name the content and the parameters; its bytes are the
	// AES-256-GCM sealed content:
	//
	//	-----BEGIN CHARTER ENCRYPTED KEY-----
	//	Cipher: AES-256-GCM
	//	Content: PRIVATE KEY          (PKCS#8 DER) or CHARTER NODE KEY (32-byte secp256k1 scalar)
	//	KDF: scrypt
	//	Nonce: <12 bytes, hex>
	//	Salt: <16 bytes, hex>
	//	Scrypt-N: 32768
	//	Scrypt-P: 1
	//	Scrypt-R: 8
	//
	//	<base64 of ciphertext and tag>
	//	-----END CHARTER ENCRYPTED KEY-----
	//
	// key = scrypt(password, salt, N, r, p, 32); the additional data of
	// the seal is every header in the fixed order above, so a file whose
	// headers were edited does not open.
	PEMEncryptedKey = "CHARTER ENCRYPTED KEY"
	// PEMNodeKey is an unencrypted secp256k1 node key: the 32-byte scalar.
	PEMNodeKey = "CHARTER NODE KEY"
)

// Scrypt cost of new key files (the values the scrypt paper and
// golang.org/x/crypto recommend for interactive logins in 2017: about
// 100 ms and 32 MiB). Reading bounds N, r, p and the memory they need,
// so that a crafted file cannot make a node spend minutes or gigabytes.
var (
	scryptN = 1 << 15
)

const (
	scryptR    = 8
	scryptP    = 1
	maxScryptN = 1 << 20
	maxScryptR = 32
	maxScryptP = 4
	// maxScryptMem bounds the memory scrypt may use to open a file
	// (128·N·r bytes): 256 MiB, the cost of go-ethereum's standard
	// keystore.
	maxScryptMem = 256 << 20
)

// Errors of key files. Each is wrapped with the file's path.
var (
	// ErrWrongPassword: the password does not open the key file (or the
	// file was altered: authenticated encryption cannot tell the two apart).
	ErrWrongPassword = errors.New("wrong password")
	// ErrPasswordRequired: the key file is encrypted and no password was
	// given.
	ErrPasswordRequired = errors.New("password required")
	// ErrBadKeyFile: the file is not a key file this package reads.
	ErrBadKeyFile = errors.New("not a valid key file")
	// ErrBadCertFile: the file holds no parseable certificate.
	ErrBadCertFile = errors.New("not a valid certificate file")
)

// EncodeCertsPEM encodes certificates as consecutive CERTIFICATE blocks,
// leaf first as TLS expects.
func EncodeCertsPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: PEMCertificate, Bytes: c.Raw})
	}
	return b.Bytes()
}

// ParseCertsPEM decodes every CERTIFICATE block of data. It fails when
// data holds no certificate, a block of another type, or a certificate
// that does not parse.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != PEMCertificate {
			return nil, fmt.Errorf("%w: unexpected PEM block %q", ErrBadCertFile, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCertFile, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrBadCertFile)
	}
	return certs, nil
}

// WriteCertFile writes certificates (public) to path with mode 0644,
// replacing the file atomically.
func WriteCertFile(path string, certs ...*x509.Certificate) error {
	if len(certs) == 0 {
		return fmt.Errorf("write certificate file %s: no certificate", path)
	}
	return writeFileAtomic(path, EncodeCertsPEM(certs...), 0o644)
}

// ReadCertFile reads the certificates of a PEM file, leaf first.
func ReadCertFile(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate file: %w", err)
	}
	certs, err := ParseCertsPEM(data)
	if err != nil {
		return nil, fmt.Errorf("certificate file %s: %w", path, err)
	}
	return certs, nil
}

// EncodeKeyPEM encodes a P-256 private key as PKCS#8 PEM, encrypted with
// the password when it is not empty (PEMEncryptedKey).
func EncodeKeyPEM(key *ecdsa.PrivateKey, password []byte) ([]byte, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: only ECDSA P-256 keys are written as PKCS#8", ErrBadKeyFile)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	defer clear(der)
	return encodeSecret(PEMPrivateKey, der, password)
}

// DecodeKeyPEM decodes a key written by EncodeKeyPEM (or any unencrypted
// PKCS#8 or SEC 1 "EC PRIVATE KEY" P-256 key). Errors: ErrPasswordRequired,
// ErrWrongPassword, ErrBadKeyFile.
func DecodeKeyPEM(data, password []byte) (*ecdsa.PrivateKey, error) {
	content, der, err := decodeSecret(data, password)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	var key any
	switch content {
	case PEMPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	default:
		return nil, fmt.Errorf("%w: PEM block %q is not a TLS private key", ErrBadKeyFile, content)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key is not ECDSA P-256", ErrBadKeyFile)
	}
	return ec, nil
}

// WriteKeyFile writes a P-256 private key to path with mode 0600,
// encrypted when password is not empty. It never overwrites: an existing
// file is an error wrapping fs.ErrExist, so that a second `ca` run cannot
// destroy a key that certificates were issued for.
func WriteKeyFile(path string, key *ecdsa.PrivateKey, password []byte) error {
	data, err := EncodeKeyPEM(key, password)
	if err != nil {
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	return writeKeyBytes(path, data)
}

// ReadKeyFile reads a P-256 private key file. A wrong password gives
// "wrong password for key file PATH" (errors.Is ErrWrongPassword); a file
// group or others may access is refused (ErrKeyFileMode, see
// ReadPrivateFile).
func ReadKeyFile(path string, password []byte) (*ecdsa.PrivateKey, error) {
	data, err := ReadPrivateFile(path, MaxKeyFileBytes)
	if errors.Is(err, ErrKeyFileMode) || errors.Is(err, ErrBadKeyFile) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	key, err := DecodeKeyPEM(data, password)
	if err != nil {
		return nil, keyFileError(path, err)
	}
	return key, nil
}

// LoadCA reads a CA written by SaveCA.
func LoadCA(certPath, keyPath string, password []byte) (*CA, error) {
	certs, err := ReadCertFile(certPath)
	if err != nil {
		return nil, err
	}
	key, err := ReadKeyFile(keyPath, password)
	if err != nil {
		return nil, err
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("certificate file %s: %q is not a CA certificate", certPath, cert.Subject.CommonName)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("key file %s does not belong to CA certificate %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// SaveCA writes the CA's certificate (0644) and key (0600, encrypted when
// password is not empty). The key file must not exist yet.
func SaveCA(ca *CA, certPath, keyPath string, password []byte) error {
	if err := WriteKeyFile(keyPath, ca.Key, password); err != nil {
		return err
	}
	return WriteCertFile(certPath, ca.Cert)
}

// LoadTLSCertificate reads a certificate chain file and its key file into
// a tls.Certificate (Leaf set), checking that the key matches the leaf.
func LoadTLSCertificate(certPath, keyPath string, password []byte) (tls.Certificate, error) {
	certs, err := ReadCertFile(certPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := ReadKeyFile(keyPath, password)
	if err != nil {
		return tls.Certificate{}, err
	}
	c, err := TLSCertificate(key, certs...)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("key file %s and certificate file %s: %w", keyPath, certPath, err)
	}
	return c, nil
}

// TLSCertificate assembles a tls.Certificate from a key and its chain
// (leaf first).
func TLSCertificate(key *ecdsa.PrivateKey, chain ...*x509.Certificate) (tls.Certificate, error) {
	if len(chain) == 0 {
		return tls.Certificate{}, errors.New("no certificate")
	}
	if !key.PublicKey.Equal(chain[0].PublicKey) {
		return tls.Certificate{}, errors.New("private key does not match the certificate")
	}
	c := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c, nil
}

func keyFileError(path string, err error) error {
	switch {
	case errors.Is(err, ErrWrongPassword):
		return fmt.Errorf("%w for key file %s", ErrWrongPassword, path)
	case errors.Is(err, ErrPasswordRequired):
		return fmt.Errorf("key file %s is encrypted: %w", path, ErrPasswordRequired)
	}
	return fmt.Errorf("key file %s: %w", path, err)
}

// encodeSecret writes plain as a PEM block of type content, or, with a
// password, as a PEMEncryptedKey block whose Content header is content.
func encodeSecret(content string, plain, password []byte) ([]byte, error) {
	if len(password) == 0 {
		return pem.EncodeToMemory(&pem.Block{Type: content, Bytes: plain}), nil
	}
	p := sealParams{content: content, n: scryptN, r: scryptR, p: scryptP,
		salt: make([]byte, 16), nonce: make([]byte, 12)}
	if _, err := rand.Read(p.salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(p.nonce); err != nil {
		return nil, err
	}
	aead, err := p.aead(password)
	if err != nil {
		return nil, err
	}
	sealed := aead.Seal(nil, p.nonce, plain, p.additionalData())
	return pem.EncodeToMemory(&pem.Block{Type: PEMEncryptedKey, Headers: p.headers(), Bytes: sealed}), nil
}

// decodeSecret reads the first PEM block of data and returns its content
// type and plaintext, opening it with password if encrypted.
func decodeSecret(data, password []byte) (content string, plain []byte, err error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return "", nil, fmt.Errorf("%w: no PEM block", ErrBadKeyFile)
	}
	if block.Type != PEMEncryptedKey {
		if len(block.Headers) != 0 {
			// Legacy RFC 1423 encryption ("Proc-Type: 4,ENCRYPTED") is
			// insecure and not supported.
			return "", nil, fmt.Errorf("%w: PEM headers on an unencrypted %q block", ErrBadKeyFile, block.Type)
		}
		return block.Type, block.Bytes, nil
	}
	p, err := parseSealParams(block.Headers)
	if err != nil {
		return "", nil, err
	}
	if len(password) == 0 {
		return "", nil, ErrPasswordRequired
	}
	aead, err := p.aead(password)
	if err != nil {
		return "", nil, err
	}
	plain, err = aead.Open(nil, p.nonce, block.Bytes, p.additionalData())
	if err != nil {
		return "", nil, ErrWrongPassword
	}
	return p.content, plain, nil
}

type sealParams struct {
	content     string
	n, r, p     int
	salt, nonce []byte
}

func (s *sealParams) headers() map[string]string {
	return map[string]string{
		"Cipher":   "AES-256-GCM",
		"Content":  s.content,
		"KDF":      "scrypt",
		"Nonce":    hex.EncodeToString(s.nonce),
		"Salt":     hex.EncodeToString(s.salt),
		"Scrypt-N": strconv.Itoa(s.n),
		"Scrypt-P": strconv.Itoa(s.p),
		"Scrypt-R": strconv.Itoa(s.r),
	}
}

// additionalData binds every header to the ciphertext.
func (s *sealParams) additionalData() []byte {
	h := s.headers()
	var b bytes.Buffer
	b.WriteString(PEMEncryptedKey)
	for _, k := range []string{"Cipher", "Content", "KDF", "Nonce", "Salt", "Scrypt-N", "Scrypt-P", "Scrypt-R"} {
		b.WriteString("\n" + k + ": " + h[k])
	}
	return b.Bytes()
}

func (s *sealParams) aead(password []byte) (cipher.AEAD, error) {
	key, err := scrypt.Key(password, s.salt, s.n, s.r, s.p, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: scrypt: %v", ErrBadKeyFile, err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// parseSealParams validates the headers of an encrypted block, bounding
// the scrypt cost before any work is done.
func parseSealParams(h map[string]string) (*sealParams, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: encrypted key: "+format, append([]any{ErrBadKeyFile}, args...)...)
	}
	if h["KDF"] != "scrypt" {
		return nil, bad("unsupported KDF %q", h["KDF"])
	}
	if h["Cipher"] != "AES-256-GCM" {
		return nil, bad("unsupported cipher %q", h["Cipher"])
	}
	p := &sealParams{content: h["Content"]}
	if p.content == "" {
		return nil, bad("missing Content header")
	}
	var err error
	atoi := func(name string, max int) int {
		v, e := strconv.Atoi(h[name])
		if e != nil || v < 1 || v > max {
			if err == nil {
				err = bad("%s %q out of range 1..%d", name, h[name], max)
			}
		}
		return v
	}
	p.n = atoi("Scrypt-N", maxScryptN)
	p.r = atoi("Scrypt-R", maxScryptR)
	p.p = atoi("Scrypt-P", maxScryptP)
	if err != nil {
		return nil, err
	}
	if p.n < 2 || p.n&(p.n-1) != 0 {
		return nil, bad("Scrypt-N %d is not a power of two", p.n)
	}
	if 128*p.n*p.r > maxScryptMem {
		return nil, bad("scrypt parameters need %d MiB, maximum %d", 128*p.n*p.r>>20, maxScryptMem>>20)
	}
	if p.salt, err = hex.DecodeString(h["Salt"]); err != nil || len(p.salt) < 8 || len(p.salt) > 64 {
		return nil, bad("bad salt")
	}
	if p.nonce, err = hex.DecodeString(h["Nonce"]); err != nil || len(p.nonce) != 12 {
		return nil, bad("bad nonce")
	}
	return p, nil
}

// writeKeyBytes creates path with mode 0600, failing if it exists, and
// syncs it before returning.
func writeKeyBytes(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("key file %s already exists; refusing to overwrite a private key: %w", path, err)
		}
		return fmt.Errorf("write key file: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic replaces path with data durably: the old content or the
// new survives a crash at any instant (durable.WriteFile: a synced
// temporary file renamed over path, then the folder synced).
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return durable.WriteFile(durable.OSFS{}, path, data, perm)
}
