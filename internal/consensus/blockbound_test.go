package consensus_test

import (
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/bft"
	"github.com/charter-ledger/charter/internal/consensus/poa"
	"github.com/charter-ledger/charter/internal/consensus/raft"
)

// Every engine refuses to start with a message bound that cannot carry the
// largest block the chain rules allow, in one line naming the field, and
// starts with its default bound.
func TestEnginesRefuseAMessageBoundBelowTheBlockBound(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	self := crypto.PubkeyToAddress(key.PublicKey)
	vals := []consensus.NodeID{self}
	engines := map[string]func(maxMessageBytes int) error{
		"bft": func(n int) error {
			c := bft.Config{ChainID: 1, Signer: bft.NewKeySigner(key), Validators: vals, MaxMessageBytes: n}
			c.EnsureDefaults()
			return c.Validate()
		},
		"poa": func(n int) error {
			c := poa.Config{Key: key, Validators: vals, MaxMessageBytes: n}
			return c.EnsureDefaults().Validate()
		},
		"raft": func(n int) error {
			c := raft.Config{Validators: vals, MaxMessageBytes: n}
			c.EnsureDefaults()
			return c.Validate()
		},
	}
	for name, validate := range engines {
		if err := validate(0); err != nil {
			t.Errorf("%s with its default message bound: %v", name, err)
		}
		err := validate(consensus.MaxBlockBytes)
		if err == nil || !strings.Contains(err.Error(), "MaxMessageBytes") || !strings.Contains(err.Error(), "cannot carry the largest block") ||
			strings.Contains(err.Error(), "\n") {
			t.Errorf("%s with a message bound of exactly the block bound: err = %v, want one line naming MaxMessageBytes", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if err := consensus.CheckMessageBound("X", consensus.MaxBlockBytes+100, 100); err != nil {
		t.Errorf("a bound of the block and its overhead: %v", err)
	}
	if err := consensus.CheckMessageBound("X", consensus.MaxBlockBytes+99, 100); err == nil {
		t.Error("a bound one byte short passes")
	}
}
