// Package identity is Charter's certificate authority and key store: the
// X.509 identities of organizations, nodes, administrators and API clients,
// the secp256k1 node keys of consensus, and the TrustStore that decides
// whether a peer belongs to the consortium.
//
// Every organization has its own root CA (ECDSA P-256), listed in the
// genesis; a consortium may also share one root among several
// organizations. Certificates carry the organization in the subject's O,
// the node or user name in CN, the role (node, admin, client) in the first
// OU, and the node's addresses as subject alternative names.
//
// # Functions for `charter ca` and `charter init`
//
//	NewRootCA(org, CAOptions{Validity: d})         create an organization's root CA
//	SaveCA(ca, certPath, keyPath, password)         ca.crt 0644, ca.key 0600 (encrypted if password)
//	LoadCA(certPath, keyPath, password)             read it back (checks the key matches)
//	ca.IssueNode(name, hosts, validity)             node certificate: server+client auth, SANs from hosts
//	ca.IssueAdmin(name, validity)                   organization administrator certificate
//	ca.IssueClient(name, validity)                  API client certificate
//	ca.Issue(CertRequest{...})                      the general form (own public key, NotBefore, ...)
//	WriteCertFile(path, certs...) / ReadCertFile    PEM certificates, leaf first, 0644
//	WriteKeyFile(path, key, password) / ReadKeyFile P-256 keys, PKCS#8 PEM, 0600, never overwrites
//	LoadTLSCertificate(certPath, keyPath, password) a tls.Certificate for the transport and the API
//	GenerateNodeKey, SaveNodeKey, LoadNodeKey       secp256k1 consensus keys, 0600
//	NodeIDOf(key)                                   the node's consensus id (its Ethereum address)
//	SavePrivacyKey, LoadPrivacyKey                  an organization's privacy key (internal/privacy), 0600
//	WritePrivacyPublicKey                           its public key file, 0644
//	FingerprintOf(cert), ParseFingerprint(s)        SHA-256 certificate fingerprints
//
// A validity of zero means the defaults: ten years for a CA, one year for
// other certificates. An empty password writes an unencrypted key. Errors
// wrap sentinels the CLI can test with errors.Is: ErrWrongPassword (the
// message reads "wrong password for key file PATH"), ErrPasswordRequired,
// ErrBadKeyFile, ErrBadCertFile, ErrInvalidRequest, and fs.ErrExist when a
// key file would be overwritten.
//
// # Key files
//
// Unencrypted TLS keys are standard PKCS#8 "PRIVATE KEY" blocks, readable
// by openssl. Password-protected keys (TLS, node or privacy) use the block
// type "CHARTER ENCRYPTED KEY": the key is derived with scrypt
// (N=32768, r=8, p=1, random 16-byte salt) and the content sealed with
// AES-256-GCM, the parameters in PEM headers which are themselves
// authenticated; see PEMEncryptedKey. Node keys are "CHARTER NODE KEY"
// blocks holding the 32-byte scalar; go-ethereum's hex nodekey files are
// read too. Privacy keys are "CHARTER PRIVACY KEY" blocks holding the 96
// bytes of privacy.PrivateKey.Bytes. Key files are written 0600, and every
// reader (ReadKeyFile, LoadCA, LoadTLSCertificate, LoadNodeKey,
// LoadPrivacyKey, ReadPrivateFile) refuses a file that group or others may
// access, in one line naming the file and the fix (chmod 600 FILE):
// ErrKeyFileMode.
//
// # Trust
//
// The node builds a TrustStore from the genesis organizations:
//
//	org, _ := identity.OrgRootsFromPEM(name, rootPEM...)   // per genesis organization
//	ts, err := identity.NewTrustStore([]identity.OrgRoots{org, ...})
//	id, err := ts.Verify(peerChain, x509.ExtKeyUsageClientAuth, identity.RoleNode)
//
// Verify returns the holder's organization and name, or an error that
// wraps one precise reason (ErrUnknownCA, ErrExpired, ErrNotYetValid,
// ErrRevoked, ErrWrongKeyUsage, ErrWrongRole, ErrOrgInactive, ...). Go's
// TLS stack does not check revocation, so the store carries it: governance
// calls RevokeFingerprint, RevokeSerial, SetOrgActive and AddOrg at
// runtime, and Watch tells long-lived connections to verify again. The
// store is goroutine-safe.
package identity
