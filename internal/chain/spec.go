// Package chain holds the chain specification (the genesis file), the
// Ethereum chain configuration derived from it, and the genesis block.
package chain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/charter-ledger/charter/internal/privacy"
	"github.com/charter-ledger/charter/internal/system"
)

// Defaults for fields a genesis file may leave out.
const (
	DefaultChainID     = 1337
	DefaultGasLimit    = 1_000_000_000 // block gas limit
	DefaultTxGasLimit  = params.MaxTxGas
	DefaultBlockTimeMs = 1000
	DefaultMaxTxBytes  = 128 * 1024
	// DefaultBaseFeeWei is the fixed base fee when the genesis names none:
	// 1 wei, so that Ethereum libraries (ethers v6 fills EIP-1559 fees only
	// when the base fee is non-zero) send EIP-1559 transactions by default,
	// while a transfer costs 21,000 wei. "baseFeePerGas": "0x0" makes gas free.
	DefaultBaseFeeWei = 1
	// MaxBlockGasLimit bounds the block gas limit so that one block cannot
	// take minutes to execute.
	MaxBlockGasLimit = 10_000_000_000
)

// Spec is the chain specification, read from a genesis JSON file. It is a
// superset of the genesis format Ethereum clients use (config, alloc,
// gasLimit, timestamp, extraData, baseFeePerGas, coinbase): a go-ethereum
// style genesis file is a valid Spec. Charter adds the sections below.
type Spec struct {
	// Config is the Ethereum chain configuration. Only chainId is required:
	// fork fields left out are activated at genesis, through the newest fork
	// the EVM library supports (Osaka).
	Config *params.ChainConfig `json:"config"`

	Timestamp hexOrDecimal64        `json:"timestamp"`
	ExtraData hexutil.Bytes         `json:"extraData,omitempty"`
	GasLimit  hexOrDecimal64        `json:"gasLimit"`
	BaseFee   *math.HexOrDecimal256 `json:"baseFeePerGas,omitempty"`
	Coinbase  common.Address        `json:"coinbase"`
	Alloc     types.GenesisAlloc    `json:"alloc"`

	// Charter's own sections.

	// TxGasLimit caps the gas of one transaction (at most the EVM's own cap
	// of 2^24 from Osaka on).
	TxGasLimit hexOrDecimal64 `json:"txGasLimit,omitempty"`
	// MaxTxBytes caps the encoded size of one transaction.
	MaxTxBytes uint64 `json:"maxTxBytes,omitempty"`
	// BlockTimeMs is the longest a sealer waits before sealing pending
	// transactions, and the interval of empty blocks where forced.
	BlockTimeMs uint64 `json:"blockTimeMs,omitempty"`
	// MinGasPrice is the lowest effective tip per gas the pool admits.
	MinGasPrice *math.HexOrDecimal256 `json:"minGasPrice,omitempty"`
	// Consensus names the engine and its parameters.
	Consensus Consensus `json:"consensus"`
	// Organizations are the consortium's members with their root
	// certificates (see Organization). A network of several nodes needs at
	// least one; a development chain needs none.
	Organizations []Organization `json:"organizations,omitempty"`
	// PrivacyEnvelope is how private payloads are sealed on this network
	// (internal/privacy Scheme): "hybrid-session" (X25519 and ML-KEM-768,
	// one encapsulation per recipient reused by a sending node for many
	// envelopes: what `charter init` writes), "hybrid" (the same with an
	// encapsulation per envelope: what a genesis without the field
	// means), or "x25519-session" and "x25519" (X25519 alone: cheaper and
	// smaller, for a consortium whose payloads need not stay secret
	// against a future quantum computer). Every node seals with it, and
	// every member's private state rejects a payload sealed otherwise.
	PrivacyEnvelope string `json:"privacyEnvelope,omitempty"`
	// Governance seeds the on-chain registry and policy: accounts with
	// their organization and roles, nodes, default roles, voting rules.
	// Left out, the chain is open: every account may transact and deploy.
	Governance *system.GenesisSpec `json:"governance,omitempty"`
}

// Consensus is the consensus section of a Spec.
type Consensus struct {
	// Engine is one of solo, raft, bft, poa.
	Engine string `json:"engine"`
	// Validators are the node ids (addresses of node keys) that take part.
	// solo takes none or one (the sealer).
	Validators []common.Address `json:"validators,omitempty"`
	// Params are the engine's own parameters, decoded by the engine.
	Params json.RawMessage `json:"params,omitempty"`
}

// Engines lists the consensus engines a Spec may name.
var Engines = []string{"solo", "raft", "bft", "poa"}

// ErrInvalidSpec is wrapped by every validation error of a Spec.
var ErrInvalidSpec = errors.New("invalid chain spec")

// LoadSpec reads and validates a genesis file.
func LoadSpec(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read genesis: %w", err)
	}
	spec, err := ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("genesis %s: %w", path, err)
	}
	return spec, nil
}

// ParseSpec decodes a genesis document, fills defaults and validates it.
// Unknown fields are an error, so a misspelt field is not silently ignored.
func ParseSpec(data []byte) (*Spec, error) {
	var spec Spec
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON document", ErrInvalidSpec)
	}
	spec.fillDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return &spec, nil
}

// Marshal encodes the spec as indented JSON.
func (s *Spec) Marshal() ([]byte, error) { return json.MarshalIndent(s, "", "  ") }

func (s *Spec) fillDefaults() {
	if s.Config == nil {
		s.Config = &params.ChainConfig{}
	}
	activateAllForks(s.Config)
	if s.GasLimit == 0 {
		s.GasLimit = DefaultGasLimit
	}
	if s.BaseFee == nil {
		s.BaseFee = (*math.HexOrDecimal256)(big.NewInt(DefaultBaseFeeWei))
	}
	if s.TxGasLimit == 0 {
		s.TxGasLimit = hexOrDecimal64(DefaultTxGasLimit)
	}
	if s.MaxTxBytes == 0 {
		s.MaxTxBytes = DefaultMaxTxBytes
	}
	if s.BlockTimeMs == 0 {
		s.BlockTimeMs = DefaultBlockTimeMs
	}
	if s.Consensus.Engine == "" {
		s.Consensus.Engine = "solo"
	}
}

// activateAllForks activates at genesis every fork that the configuration
// leaves unset, through Osaka. Block-numbered forks start at 0; the chain is
// post-merge from genesis (no proof of work), so the difficulty is 0.
func activateAllForks(c *params.ChainConfig) {
	zero := func(p **big.Int) {
		if *p == nil {
			*p = new(big.Int)
		}
	}
	for _, p := range []**big.Int{&c.HomesteadBlock, &c.EIP150Block, &c.EIP155Block, &c.EIP158Block,
		&c.ByzantiumBlock, &c.ConstantinopleBlock, &c.PetersburgBlock, &c.IstanbulBlock,
		&c.MuirGlacierBlock, &c.BerlinBlock, &c.LondonBlock, &c.ArrowGlacierBlock, &c.GrayGlacierBlock,
		&c.TerminalTotalDifficulty} {
		zero(p)
	}
	for _, p := range []**uint64{&c.ShanghaiTime, &c.CancunTime, &c.PragueTime, &c.OsakaTime} {
		if *p == nil {
			*p = new(uint64)
		}
	}
	if c.BlobScheduleConfig == nil {
		c.BlobScheduleConfig = &params.BlobScheduleConfig{
			Cancun: params.DefaultCancunBlobConfig,
			Prague: params.DefaultPragueBlobConfig,
		}
	}
}

// PrivacyScheme is the network's envelope scheme (PrivacyEnvelope); the
// spec must be valid.
func (s *Spec) PrivacyScheme() privacy.Scheme {
	sc, err := privacy.ParseScheme(s.PrivacyEnvelope)
	if err != nil {
		panic(fmt.Sprintf("chain: PrivacyScheme of an unvalidated spec: %v", err))
	}
	return sc
}

// Validate checks the spec once, with errors that name the field.
func (s *Spec) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, args...))
	}
	c := s.Config
	if c == nil || c.ChainID == nil || c.ChainID.Sign() <= 0 {
		return bad("config.chainId", "required, a positive integer")
	}
	if !c.ChainID.IsUint64() {
		return bad("config.chainId", "too large")
	}
	if c.Ethash != nil || c.Clique != nil {
		return bad("config", "ethash and clique are not supported; name the engine in consensus.engine")
	}
	if c.TerminalTotalDifficulty == nil || c.TerminalTotalDifficulty.Sign() != 0 {
		return bad("config.terminalTotalDifficulty", "must be 0: the chain has no proof of work")
	}
	if err := c.CheckConfigForkOrder(); err != nil {
		return bad("config", "%v", err)
	}
	if gl := uint64(s.GasLimit); gl < params.MinGasLimit || gl > MaxBlockGasLimit {
		return bad("gasLimit", "%d is outside [%d, %d]", s.GasLimit, params.MinGasLimit, uint64(MaxBlockGasLimit))
	}
	if tl := uint64(s.TxGasLimit); tl < params.TxGas || tl > uint64(s.GasLimit) {
		return bad("txGasLimit", "%d is outside [%d, gasLimit %d]", s.TxGasLimit, params.TxGas, s.GasLimit)
	}
	if c.IsOsaka(new(big.Int), 0) && uint64(s.TxGasLimit) > params.MaxTxGas {
		return bad("txGasLimit", "%d is above the EVM's per-transaction cap %d (EIP-7825)", s.TxGasLimit, params.MaxTxGas)
	}
	if s.MaxTxBytes < 1024 || s.MaxTxBytes > 4<<20 {
		return bad("maxTxBytes", "%d is outside [1024, 4194304]", s.MaxTxBytes)
	}
	if s.BlockTimeMs < 10 || s.BlockTimeMs > 3_600_000 {
		return bad("blockTimeMs", "%d is outside [10, 3600000]", s.BlockTimeMs)
	}
	if s.BaseFee != nil && (*big.Int)(s.BaseFee).Sign() < 0 {
		return bad("baseFeePerGas", "negative")
	}
	if s.MinGasPrice != nil && (*big.Int)(s.MinGasPrice).Sign() < 0 {
		return bad("minGasPrice", "negative")
	}
	if len(s.ExtraData) > 32 {
		return bad("extraData", "%d bytes, at most 32", len(s.ExtraData))
	}
	if _, err := privacy.ParseScheme(s.PrivacyEnvelope); err != nil {
		return bad("privacyEnvelope", "%q: hybrid-session (what charter init writes), hybrid (when the field is left out), x25519-session or x25519", s.PrivacyEnvelope)
	}
	known := false
	for _, e := range Engines {
		known = known || s.Consensus.Engine == e
	}
	if !known {
		return bad("consensus.engine", "%q is not one of %s", s.Consensus.Engine, strings.Join(Engines, ", "))
	}
	seen := make(map[common.Address]bool)
	for i, v := range s.Consensus.Validators {
		if v == (common.Address{}) {
			return bad(fmt.Sprintf("consensus.validators[%d]", i), "zero address")
		}
		if seen[v] {
			return bad(fmt.Sprintf("consensus.validators[%d]", i), "%s listed twice", v)
		}
		seen[v] = true
	}
	switch s.Consensus.Engine {
	case "solo":
		if len(s.Consensus.Validators) > 1 {
			return bad("consensus.validators", "solo takes at most one sealer")
		}
	default:
		if len(s.Consensus.Validators) == 0 {
			return bad("consensus.validators", "%s needs at least one validator", s.Consensus.Engine)
		}
	}
	if err := validateOrgs(s.Organizations, s.Consensus.Engine == "solo"); err != nil {
		return err
	}
	if _, err := s.SystemGenesis(); err != nil {
		return bad("governance", "%v", err)
	}
	for addr, acct := range s.Alloc {
		if acct.Balance != nil && acct.Balance.Sign() < 0 {
			return bad("alloc."+addr.Hex()+".balance", "negative")
		}
	}
	return nil
}

// ChainID is the chain id as an integer.
func (s *Spec) ChainID() uint64 { return s.Config.ChainID.Uint64() }

// BaseFeeWei is the fixed base fee per gas.
func (s *Spec) BaseFeeWei() *big.Int {
	if s.BaseFee == nil {
		return new(big.Int)
	}
	return new(big.Int).Set((*big.Int)(s.BaseFee))
}

// MinGasPriceWei is the lowest tip per gas the pool admits (zero unless set).
func (s *Spec) MinGasPriceWei() *big.Int {
	if s.MinGasPrice == nil {
		return new(big.Int)
	}
	return new(big.Int).Set((*big.Int)(s.MinGasPrice))
}

// hexOrDecimal64 accepts 1000, "1000" and "0x3e8".
type hexOrDecimal64 = math.HexOrDecimal64

// SystemGenesis is the registry and policy the genesis seeds.
func (s *Spec) SystemGenesis() (*system.Genesis, error) {
	orgs := make([]system.GenesisOrg, len(s.Organizations))
	for i, o := range s.Organizations {
		orgs[i] = system.GenesisOrg{Name: o.Name, Roots: strings.Join(o.Roots, ""), Tier: o.Tier, Weight: o.Weight}
		pub, err := o.PrivacyPublicKey()
		if err != nil {
			return nil, fmt.Errorf("organizations[%d]: %v", i, err)
		}
		if pub != nil {
			orgs[i].PrivacyKey = pub.Bytes()
		}
	}
	return system.BuildGenesis(s.Governance, orgs, s.Consensus.Validators)
}
