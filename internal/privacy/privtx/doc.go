// Package privtx is the private transaction of Charter's Besu-style
// privacy API: the bytes that web3js-quorum's
// priv.generateAndSendRawTransaction signs and eea_sendRawTransaction
// carries, decoded, checked, hashed and signed exactly as Besu and that
// client do. It holds no state and reads no clock; who may send to which
// group is decided above it (the registry, the privacy worker).
//
// # Format
//
// One RLP list of twelve items:
//
//	nonce          integer, at most 8 bytes
//	gasPrice       integer, at most 32 bytes (web3js-quorum sends 0)
//	gasLimit       integer, at most 8 bytes (web3js-quorum's default 3000000)
//	to             20 bytes, or empty for a contract creation
//	value          integer, at most 32 bytes (web3js-quorum sends 0)
//	data           bytes
//	v              integer: recovery id + chain id × 2 + 35 (EIP-155), or 27, 28
//	r, s           integers, at most 32 bytes each
//	privateFrom    32 bytes: the sender organization's privacy identity
//	               (the X25519 part of its registry privacy key)
//	recipients     either privateFor, a list of 1..MaxPrivateFor (64) keys of
//	               32 bytes, or privacyGroupId, a string of 32 bytes
//	restriction    "restricted" or "unrestricted" (the client sends the first;
//	               given the second it signs the base64 decoding of the word,
//	               which Decode refuses)
//
// Integers are big-endian without leading zero bytes (zero is the empty
// string), and every item is in canonical RLP. The API carries keys and
// group ids as standard base64 of these bytes.
//
// Decode is strict and bounded: it refuses input above MaxTxBytes
// (128 KiB) before reading it, then another item count, trailing bytes,
// non-canonical RLP or integers, a to of another length, keys or a group
// id of another length, an empty or too long privateFor list, another
// restriction, and a v that is neither 27, 28 nor at least 37. Its errors
// wrap ErrMalformed and name the item. What Decode accepts, Encode writes
// back to the same bytes, and Encode refuses what Decode would.
//
// # Hashes
//
// The private transaction hash (Besu's, and the one the priv_ API
// answers for it) is keccak256 of the encoding.
//
// The signing hash for chain id c is keccak256 of the RLP list of the
// same twelve items with v replaced by c and r and s by empty strings
// (EIP-155 applied to the private format); the recipients item stays as
// it is, privateFor or privacyGroupId. SignTx signs it with a
// deterministic low-s signature, as the client does, so that the same key
// and fields give the same bytes. Sender refuses a signature without a
// chain id (v of 27 or 28), one for another chain, one with s above
// secp256k1n/2, and one from which no key recovers.
//
// # Group ids
//
// A transaction for a privacy group names it by privacyGroupId. One that
// lists privateFor implies a legacy group, whose id LegacyGroupID derives
// as web3js-quorum's generatePrivacyGroup does:
//
//	participants  privateFor, then privateFrom, each key at its first appearance
//	order         ascending Java Arrays.hashCode of the key (31 × h + b over
//	              the bytes as signed, from 1, wrapping at 32 bits); keys of
//	              equal hash keep their order
//	id            keccak256(RLP list of the ordered keys)
//
// The registry derives a legacy group's id the same way from its members'
// privacy identities, so a transaction's GroupID and the group on chain
// agree.
//
// # Execution
//
// Legacy gives the fields a group's EVM runs (nonce, gas price, gas, to,
// value, data); the sender comes from Sender, checked by the caller
// against the organization that privateFrom names.
package privtx
