package chain

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/charter-ledger/charter/internal/system"
)

// DevOrg is the organization of the development chain.
const DevOrg = "dev"

// DevSpec is the spec of `charter dev`: one solo sealer, the development
// accounts prefunded.
func DevSpec(chainID uint64, blockTimeMs uint64) (*Spec, error) {
	accts, err := DevAccounts(DevAccountCount)
	if err != nil {
		return nil, err
	}
	spec := &Spec{
		Config:      &params.ChainConfig{ChainID: new(big.Int).SetUint64(chainID)},
		Alloc:       types.GenesisAlloc{},
		BlockTimeMs: blockTimeMs,
		Consensus:   Consensus{Engine: "solo"},
	}
	// One organization holds the development accounts with every role
	// but auditor; any other account may transact and deploy too.
	spec.Organizations = []Organization{{Name: DevOrg, Tier: TierValidate}}
	spec.Governance = &system.GenesisSpec{DefaultRoles: []string{"read", "write", "deploy"}, AllowSetCode: true}
	for _, a := range accts {
		spec.Alloc[a.Address] = types.Account{Balance: new(big.Int).Set(DevBalance)}
		spec.Governance.Accounts = append(spec.Governance.Accounts, system.GenesisAccount{
			Address: a.Address, Org: DevOrg, Roles: []string{"read", "write", "deploy", "admin"}})
	}
	spec.fillDefaults()
	return spec, spec.Validate()
}

// GenesisHeader is the header of block 0 for a given state root. The chain
// is post-merge from genesis with every field of the newest forks present.
func (s *Spec) GenesisHeader(stateRoot common.Hash) *types.Header {
	h := NewHeader(s, nil, s.Coinbase, uint64(s.Timestamp))
	h.Root = stateRoot
	h.Extra = common.CopyBytes(s.ExtraData)
	return h
}

// NewHeader starts the header of the block after parent (nil: genesis),
// with every fork-dependent field set. Root, TxHash, ReceiptHash, Bloom
// and GasUsed are filled by execution.
func NewHeader(s *Spec, parent *types.Header, coinbase common.Address, timestamp uint64) *types.Header {
	h := &types.Header{
		UncleHash:   types.EmptyUncleHash,
		Coinbase:    coinbase,
		Root:        types.EmptyRootHash,
		TxHash:      types.EmptyTxsHash,
		ReceiptHash: types.EmptyReceiptsHash,
		Difficulty:  new(big.Int),
		Number:      new(big.Int),
		GasLimit:    uint64(s.GasLimit),
		Time:        timestamp,
		BaseFee:     s.BaseFeeWei(),
	}
	if parent != nil {
		h.ParentHash = parent.Hash()
		h.Number = new(big.Int).Add(parent.Number, common.Big1)
		if h.Time < parent.Time {
			h.Time = parent.Time
		}
		// prevrandao: not random on a permissioned chain; documented as
		// the parent hash so contracts cannot mistake it for randomness.
		h.MixDigest = h.ParentHash
	}
	cfg := s.Config
	if cfg.IsShanghai(h.Number, h.Time) {
		h.WithdrawalsHash = &types.EmptyWithdrawalsHash
	}
	if cfg.IsCancun(h.Number, h.Time) {
		zero := uint64(0)
		h.BlobGasUsed, h.ExcessBlobGas = &zero, new(uint64)
		h.ParentBeaconRoot = new(common.Hash)
	}
	if cfg.IsPrague(h.Number, h.Time) {
		h.RequestsHash = &types.EmptyRequestsHash
	}
	return h
}
