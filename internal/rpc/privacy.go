package rpc

import (
	"context"
	"errors"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"

	"github.com/charter-ledger/charter/internal/privacy/privstate"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// ErrNoPrivacyGroup is what a Privacy read answers (wrapped or not) for a
// group this node may not read or that does not exist: the priv_
// namespace answers both alike (-32000 with this text), so that a
// non-member learns nothing of the group.
var ErrNoPrivacyGroup = errors.New("privacy group not found")

// PrivacyBackend is implemented by a Backend whose node takes part in
// private transactions; the priv_ and eea_ namespaces (Besu's privacy API)
// are served when Privacy returns non-nil.
type PrivacyBackend interface {
	Privacy() Privacy
}

// Privacy is what the priv_ and eea_ namespaces read and do. Groups are
// named by their 32-byte id; organizations by their 32-byte privacy
// identity (the X25519 part of their registry privacy key: base64 in
// privateFrom, privateFor and the members of a group).
//
// A node answers only for groups its organization belongs to (or, for
// reads, that its organization was granted as auditor): for any other
// group it holds nothing, and the reads answer as for a group that does
// not exist (ErrNoPrivacyGroup), a receipt or transaction nil.
type Privacy interface {
	// MarkerAddress is the address marker transactions are sent to
	// (priv_getPrivacyPrecompileAddress).
	MarkerAddress() common.Address

	// SendRaw checks a signed private transaction (privtx encoding),
	// seals its payload to the group's organizations, sends it to their
	// nodes and submits the marker transaction: the marker's hash
	// (eea_sendRawTransaction). The error says why not.
	SendRaw(ctx context.Context, raw []byte) (common.Hash, error)
	// Distribute seals and sends the payload without a marker: the
	// payload's hash, which a marker sent by other means commits to
	// (priv_distributeRawTransaction).
	Distribute(ctx context.Context, raw []byte) (common.Hash, error)

	// CreateGroup creates a privacy group of the organizations with these
	// identities (this node's organization among them) and returns its id
	// once the group is on the chain (priv_createPrivacyGroup).
	CreateGroup(ctx context.Context, members [][]byte, name, description string) (common.Hash, error)
	// DeleteGroup deletes a group this node's organization belongs to,
	// once the deletion is on the chain (priv_deletePrivacyGroup).
	DeleteGroup(ctx context.Context, id common.Hash) error
	// FindGroups are the active groups this node's organization belongs
	// to whose members are exactly (as a set) the organizations with these
	// identities (priv_findPrivacyGroup).
	FindGroups(members [][]byte) ([]PrivacyGroup, error)
	// Group is group id if this node may read it; ok false otherwise.
	Group(id common.Hash) (g PrivacyGroup, ok bool)

	// Nonce is addr's next private nonce in group
	// (priv_getTransactionCount).
	Nonce(group common.Hash, addr common.Address) (uint64, error)
	// Receipt is the private receipt of the private transaction whose
	// marker has hash marker; nil and no error when this node holds none
	// (not its group, not executed yet, purged).
	Receipt(marker common.Hash) (*PrivateReceipt, error)
	// Transaction is the private transaction of a marker; nil and no
	// error when this node holds none.
	Transaction(marker common.Hash) (*PrivateTransaction, error)
	// Call runs msg on group's private state after public block number
	// (priv_call); nothing is kept.
	Call(ctx context.Context, group common.Hash, number uint64, msg *core.Message) (*core.ExecutionResult, error)
	// Code is the code of addr in group's private state after public block
	// number (priv_getCode).
	Code(group common.Hash, number uint64, addr common.Address) ([]byte, error)
	// Logs are group's private logs that q selects (priv_getLogs). As in
	// Besu, a log's TxHash should be its marker's hash and TxIndex the
	// marker's index in its public block; the log is served as given.
	Logs(group common.Hash, q privstate.LogQuery) ([]*types.Log, error)
	// StateRoot is group's private state root after public block number
	// (priv_debugGetStateRoot): every member node reports the same.
	StateRoot(group common.Hash, number uint64) (common.Hash, error)
	// Head is the last public block applied to group's private state (0:
	// none yet).
	Head(group common.Hash) (uint64, error)
	// SubscribeLogs delivers, for every public block applied to a group's
	// private state on this node, its private logs, in order. The
	// subscriber must keep reading.
	SubscribeLogs(ch chan<- PrivateLogsEvent) event.Subscription
}

// PrivacyGroup is a privacy group as the priv_ namespace shows it.
type PrivacyGroup struct {
	ID          common.Hash
	Name        string
	Description string
	// Legacy is true for a group made implicitly by a privateFor
	// transaction (its id derived from its members' identities).
	Legacy  bool
	Members [][]byte // the members' privacy identities
}

// PrivateReceipt is a private receipt with the marker that ordered it.
type PrivateReceipt struct {
	Marker common.Hash // the marker transaction (Besu's commitmentHash)
	Group  common.Hash
	Tx     *privtx.Tx
	*privstate.Receipt
}

// PrivateTransaction is a private transaction with where it was ordered.
type PrivateTransaction struct {
	Marker      common.Hash
	Group       common.Hash
	Tx          *privtx.Tx
	From        common.Address // zero if its signature recovers none
	BlockHash   common.Hash    // the public block of its marker
	BlockNumber uint64
	Index       int // among the group's private transactions of that block
}

// PrivateLogsEvent is what one public block did to one group's logs.
type PrivateLogsEvent struct {
	Group  common.Hash
	Number uint64
	Logs   []*types.Log
}
