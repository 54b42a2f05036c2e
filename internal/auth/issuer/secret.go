package issuer

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// hashParams are argon2id's costs. The defaults are OWASP's for argon2id
// (19 MiB, 2 passes, 1 lane): about 30 ms on one core, so that a stolen
// clients file does not give the secrets away cheaply, and a token
// request costs the node little. The parameters are stored with each
// hash, so they may change without invalidating old secrets.
type hashParams struct {
	memoryKiB uint32
	time      uint32
	threads   uint8
}

var defaultHashParams = hashParams{memoryKiB: 19 * 1024, time: 2, threads: 1}

// Bounds on the parameters of a stored hash: a file edited by hand cannot
// make one check take a gigabyte or a minute.
const (
	maxHashMemoryKiB = 256 * 1024
	maxHashTime      = 16
	maxHashThreads   = 16
	saltBytes        = 16
	hashBytes        = 32
)

// newSecret makes a client secret: 32 random bytes, base64url.
func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// hashSecret hashes secret with a fresh salt into the PHC string form:
// $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH (base64 without padding).
func hashSecret(secret string, p hashParams) (string, error) {
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(secret), salt, p.time, p.memoryKiB, p.threads, hashBytes)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memoryKiB, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(sum)), nil
}

type parsedHash struct {
	p          hashParams
	salt, hash []byte
}

// parseHash reads a PHC argon2id string within the bounds above.
func parseHash(s string) (parsedHash, error) {
	var out parsedHash
	if len(s) > 256 {
		return out, errors.New("longer than 256 bytes")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return out, errors.New("not an argon2id hash ($argon2id$v=19$m=...,t=...,p=...$salt$hash)")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return out, fmt.Errorf("argon2 version %q, want v=%d", parts[2], argon2.Version)
	}
	var m, t, p uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return out, fmt.Errorf("parameter %q: not a number", kv)
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		default:
			return out, fmt.Errorf("unknown parameter %q", k)
		}
	}
	if m < 8 || m > maxHashMemoryKiB || t < 1 || t > maxHashTime || p < 1 || p > maxHashThreads || m < 8*p {
		return out, fmt.Errorf("parameters m=%d,t=%d,p=%d outside m 8..%d KiB, t 1..%d, p 1..%d", m, t, p, maxHashMemoryKiB, maxHashTime, maxHashThreads)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return out, errors.New("salt: want 8 to 64 bytes of base64")
	}
	sum, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(sum) < 16 || len(sum) > 64 {
		return out, errors.New("hash: want 16 to 64 bytes of base64")
	}
	out.p = hashParams{memoryKiB: uint32(m), time: uint32(t), threads: uint8(p)}
	out.salt, out.hash = salt, sum
	return out, nil
}

// checkSecret reports whether secret matches the stored hash, comparing
// in constant time.
func checkSecret(stored, secret string) bool {
	h, err := parseHash(stored)
	if err != nil || len(secret) > MaxSecretBytes {
		return false
	}
	sum := argon2.IDKey([]byte(secret), h.salt, h.p.time, h.p.memoryKiB, h.p.threads, uint32(len(h.hash)))
	return subtle.ConstantTimeCompare(sum, h.hash) == 1
}
