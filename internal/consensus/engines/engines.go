// Package engines is the one list of Charter's consensus engines: it makes
// the engine a chain's genesis names. Adding an engine is writing its core
// (a package below internal/consensus with FromSpec) and one line here;
// nothing in the node.
package engines

import (
	"fmt"

	"github.com/charter-ledger/charter/internal/consensus"
	"github.com/charter-ledger/charter/internal/consensus/bft"
	"github.com/charter-ledger/charter/internal/consensus/poa"
	"github.com/charter-ledger/charter/internal/consensus/raft"
	"github.com/charter-ledger/charter/internal/consensus/solo"
)

// fromSpec is each engine's constructor from the genesis, by name.
var fromSpec = map[string]func(consensus.Spec, consensus.Env) (consensus.Engine, consensus.Profile, error){
	"solo": solo.FromSpec,
	"raft": raft.FromSpec,
	"bft":  bft.FromSpec,
	"poa":  poa.FromSpec,
}

// New makes the engine spec names.
func New(spec consensus.Spec, env consensus.Env) (consensus.Engine, consensus.Profile, error) {
	f, ok := fromSpec[spec.Engine]
	if !ok {
		return nil, consensus.Profile{}, fmt.Errorf("consensus engine %q cannot run in this node", spec.Engine)
	}
	return f(spec, env)
}

// CheckParams checks the engine's section of a genesis
// (consensus.params) as the engine will at the node's start, with errors
// that name the field: `charter init` refuses a genesis the nodes would.
func CheckParams(spec consensus.Spec) error {
	var err error
	switch spec.Engine {
	case "raft":
		_, err = raft.ConfigFromSpec(spec)
	case "bft":
		_, err = bft.ConfigFromSpec(spec)
	case "poa":
		_, err = poa.ConfigFromSpec(spec)
	case "solo":
		err = spec.NoParams()
	default:
		return fmt.Errorf("consensus engine %q cannot run in this node", spec.Engine)
	}
	return err
}
