package p2p

import (
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// The handshake. After TLS (both certificates verified against the trust
// store), each side sends one typeHandshake frame whose payload is a hello:
//
//	version   uint16  protocolVersion
//	chainID   uint64
//	genesis   [32]byte  hash of the genesis block
//	nodeID    [20]byte  address of the sender's secp256k1 node key
//	signature [65]byte  secp256k1 [R || S || V] over helloDigest
//
// all integers big-endian. The signature covers the TLS exported keying
// material of this very connection (RFC 8446 §7.5, label ekmLabel) and the
// sender's side (dialer or listener), so a hello replayed on another
// connection, or reflected back on the same one, does not verify: only the
// holder of the node key can claim its NodeID.
const (
	protocolVersion = 1
	helloLen        = 2 + 8 + 32 + 20 + 65
	ekmLabel        = "EXPORTER-charter-p2p-handshake"
	ekmLen          = 32
	helloDomain     = "charter/p2p/hello/v1"
	// alpnProto is negotiated in TLS so that a Charter port is not
	// mistaken for any other TLS service (nor the reverse).
	alpnProto = "charter/1"
)

// Which side of the connection signed a hello.
const (
	sideDialer   byte = 'D'
	sideListener byte = 'L'
)

// errHello is wrapped by every hello decoding or verification error.
var errHello = errors.New("bad handshake")

// hello is the decoded handshake message.
type hello struct {
	Version uint16
	ChainID uint64
	Genesis common.Hash
	NodeID  common.Address
	Sig     [65]byte
}

func (h *hello) encode() []byte {
	b := make([]byte, 0, helloLen)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = binary.BigEndian.AppendUint64(b, h.ChainID)
	b = append(b, h.Genesis[:]...)
	b = append(b, h.NodeID[:]...)
	return append(b, h.Sig[:]...)
}

// decodeHello parses a hello payload. It checks only the form (exact
// length and version); verify checks the signature.
func decodeHello(b []byte) (hello, error) {
	var h hello
	if len(b) != helloLen {
		return h, fmt.Errorf("%w: hello is %d bytes, want %d", errHello, len(b), helloLen)
	}
	h.Version = binary.BigEndian.Uint16(b[0:2])
	if h.Version != protocolVersion {
		return h, fmt.Errorf("%w: protocol version %d, want %d", errHello, h.Version, protocolVersion)
	}
	h.ChainID = binary.BigEndian.Uint64(b[2:10])
	copy(h.Genesis[:], b[10:42])
	copy(h.NodeID[:], b[42:62])
	copy(h.Sig[:], b[62:127])
	return h, nil
}

// digest is the hash a hello's signature covers.
func (h *hello) digest(side byte, ekm []byte) []byte {
	b := make([]byte, 0, len(helloDomain)+1+len(ekm)+helloLen-65)
	b = append(b, helloDomain...)
	b = append(b, side)
	b = append(b, ekm...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = binary.BigEndian.AppendUint64(b, h.ChainID)
	b = append(b, h.Genesis[:]...)
	b = append(b, h.NodeID[:]...)
	return crypto.Keccak256(b)
}

// newHello builds and signs this node's hello for one connection.
func newHello(key *ecdsa.PrivateKey, chainID uint64, genesis common.Hash, side byte, ekm []byte) (hello, error) {
	h := hello{Version: protocolVersion, ChainID: chainID, Genesis: genesis, NodeID: crypto.PubkeyToAddress(key.PublicKey)}
	sig, err := crypto.Sign(h.digest(side, ekm), key)
	if err != nil {
		return h, fmt.Errorf("sign hello: %w", err)
	}
	copy(h.Sig[:], sig)
	return h, nil
}

// verify checks that the hello was signed by the key of its NodeID for
// this connection (ekm) and side.
func (h *hello) verify(side byte, ekm []byte) error {
	pub, err := crypto.SigToPub(h.digest(side, ekm), h.Sig[:])
	if err != nil {
		return fmt.Errorf("%w: signature does not recover: %v", errHello, err)
	}
	if got := crypto.PubkeyToAddress(*pub); got != h.NodeID {
		return fmt.Errorf("%w: signature is not by node %s (not made for this connection: replayed?)", errHello, h.NodeID)
	}
	return nil
}
