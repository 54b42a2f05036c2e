package privtx

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// LegacyGroupID is the id of the privacy group that a transaction listing
// privateFor implies, derived as web3js-quorum's generatePrivacyGroup
// derives it: the participants are privateFor then privateFrom, each key
// kept at its first appearance; they are ordered by the Java
// Arrays.hashCode of the key's bytes read as signed (a stable sort, so
// keys of equal hash keep that order); the id is keccak256 of the RLP list
// of the ordered keys. It derives an id from keys of any length; a Tx
// that Decode accepts has keys of KeySize bytes.
func LegacyGroupID(privateFrom []byte, privateFor [][]byte) common.Hash {
	type participant struct {
		key  []byte
		hash int32
	}
	parts := make([]participant, 0, len(privateFor)+1)
	add := func(key []byte) {
		for _, p := range parts {
			if bytes.Equal(p.key, key) {
				return
			}
		}
		parts = append(parts, participant{key: key, hash: javaHashCode(key)})
	}
	for _, k := range privateFor {
		add(k)
	}
	add(privateFrom)
	slices.SortStableFunc(parts, func(a, b participant) int { return cmp.Compare(a.hash, b.hash) })

	keys := make([][]byte, len(parts))
	for i, p := range parts {
		keys[i] = p.key
	}
	enc, err := rlp.EncodeToBytes(keys)
	if err != nil {
		panic("privtx: RLP of a list of byte strings: " + err.Error()) // cannot fail
	}
	return crypto.Keccak256Hash(enc)
}

// javaHashCode is java.util.Arrays.hashCode(byte[]): 31 × h + b over the
// bytes as signed values, from 1, wrapping at 32 bits.
func javaHashCode(b []byte) int32 {
	h := int32(1)
	for _, c := range b {
		h = 31*h + int32(int8(c))
	}
	return h
}
