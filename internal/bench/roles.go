package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/system"
)

// ErrRolesMissing: senders lack the role their transactions need and no
// admin key was given to grant it. Nothing was sent.
var ErrRolesMissing = errors.New("senders lack a role")

// account is the part of a charter_account answer the bench reads.
type account struct {
	Org            string   `json:"org"`
	Roles          []string `json:"roles"`
	Frozen         bool     `json:"frozen"`
	EffectiveRoles []string `json:"effectiveRoles"`
}

// neededRoles is what sender i must hold: write to transact, deploy for
// the token's owner (sender 0) under KindERC20 and KindMixed, and deploy
// for every sender of a mixed load with contract creations.
func (r *runner) neededRoles(i int) system.Role {
	need := system.RoleWrite
	if i == 0 && (r.cfg.Kind == KindERC20 || r.cfg.Kind == KindPrivateERC20 || r.cfg.Kind == KindMixed) {
		need |= system.RoleDeploy
	}
	if r.cfg.Kind == KindMixed && r.cfg.mix().Shares[txCreate] > 0 {
		need |= system.RoleDeploy
	}
	return need
}

// grantRoles reads every sender's roles through charter_account before
// anything is sent. Senders that lack what their transactions need get it
// from the organization admin's key (Config.Admin: setAccountRoles, which
// an admin may send for its own organization's accounts without a vote);
// without an admin key it stops with ErrRolesMissing. A chain that does
// not answer charter_account (no registry) is not checked.
func (r *runner) grantRoles(ctx context.Context) error {
	accts := make([]account, len(r.senders))
	batch := make([]gethrpc.BatchElem, len(r.senders))
	for i, a := range r.senders {
		batch[i] = gethrpc.BatchElem{Method: "charter_account", Args: []any{a}, Result: &accts[i]}
	}
	if err := r.batchCall(ctx, batch); err != nil {
		var rerr gethrpc.Error
		if errors.As(err, &rerr) && rerr.ErrorCode() == -32601 {
			return nil // not a Charter node: no registry to check
		}
		return fmt.Errorf("read the senders' roles (charter_account): %w", err)
	}
	var missing []int
	for i, a := range accts {
		have, err := system.ParseRoles(a.EffectiveRoles)
		if err != nil {
			return fmt.Errorf("charter_account %s: %w", r.senders[i], err)
		}
		if a.Frozen {
			return fmt.Errorf("sender %s is frozen; choose other --keys or fewer --senders", r.senders[i])
		}
		if r.needOrg != "" && a.Org != r.needOrg {
			if a.Org != "" {
				return fmt.Errorf("sender %s is an account of organization %s, not of %s, whose node sends its private transactions", r.senders[i], a.Org, r.needOrg)
			}
			missing = append(missing, i) // not in the registry: the admin adds it to needOrg
			continue
		}
		if need := r.neededRoles(i); have&need != need {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	lack := "role write"
	if r.needOrg != "" {
		lack = "role write in organization " + r.needOrg
	}
	if missing[0] == 0 && (r.cfg.Kind == KindERC20 || r.cfg.Kind == KindPrivateERC20 || r.cfg.Kind == KindMixed) {
		lack = "role write (the token's owner, the first, write and deploy)"
	}
	if r.cfg.Kind == KindMixed && r.cfg.mix().Shares[txCreate] > 0 {
		lack = "roles write and deploy (a mix with contract creations)"
	}
	if r.cfg.Admin == nil {
		fewer := ""
		if len(missing) < len(r.senders) {
			fewer = ", or use fewer --senders"
		}
		return fmt.Errorf("%w: %d of %d senders lack %s on this chain (the first %s), so their transactions would be refused; "+
			"pass --admin-key FILE, the admin account key of their organization ('charter init' writes NET/orgs/org0/admin-account.key), to grant it%s",
			ErrRolesMissing, len(missing), len(r.senders), lack, r.senders[missing[0]].Hex(), fewer)
	}
	admin := crypto.PubkeyToAddress(r.cfg.Admin.PublicKey)
	var adm account
	if err := r.call(ctx, &adm, "charter_account", admin); err != nil {
		return fmt.Errorf("read the admin's roles (charter_account): %w", err)
	}
	if !slices.Contains(adm.EffectiveRoles, "admin") || adm.Org == "" || (r.needOrg != "" && adm.Org != r.needOrg) {
		return fmt.Errorf("--admin-key: account %s is not an organization admin (organization %q, roles %s)",
			admin.Hex(), adm.Org, strings.Join(adm.EffectiveRoles, ","))
	}

	// One setAccountRoles per sender: its roles plus what it lacks.
	calls := make([][]byte, len(missing))
	for k, i := range missing {
		cur, err := system.ParseRoles(accts[i].Roles)
		if err != nil {
			return fmt.Errorf("charter_account %s: %w", r.senders[i], err)
		}
		roles := (cur | system.RoleRead | r.neededRoles(i)) &^ system.RoleAuditor
		if calls[k], err = system.Registry.Pack("setAccountRoles", r.senders[i], uint32(roles)); err != nil {
			return err
		}
	}
	// Estimate each: a call the registry refuses (an account of another
	// organization) is reported with its reason, and nothing is sent.
	gas := make([]hexutil.Uint64, len(missing))
	batch = make([]gethrpc.BatchElem, len(missing))
	for k := range missing {
		batch[k] = gethrpc.BatchElem{Method: "eth_estimateGas", Result: &gas[k], Args: []any{map[string]any{
			"from": admin, "to": system.RegistryAddress, "data": hexutil.Bytes(calls[k])}}}
	}
	if err := r.batchCall(ctx, batch); err != nil {
		return fmt.Errorf("grant the senders their roles with admin %s of %s: %w (nothing was sent)", admin.Hex(), adm.Org, err)
	}
	var nonce hexutil.Uint64
	if err := r.call(ctx, &nonce, "eth_getTransactionCount", admin, "pending"); err != nil {
		return err
	}
	txs := make([]*types.Transaction, len(missing))
	for k := range missing {
		to := system.RegistryAddress
		txs[k] = types.MustSignNewTx(r.cfg.Admin, r.signer, &types.DynamicFeeTx{ChainID: r.chainID, Nonce: uint64(nonce) + uint64(k),
			Gas: uint64(gas[k]) + uint64(gas[k])/4, GasFeeCap: r.feeCap, GasTipCap: r.tip, To: &to, Data: calls[k]})
	}
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench: %d senders lack %s; admin %s of %s grants it\n", len(missing), lack, admin.Hex(), adm.Org)
	}
	return r.submitAndWait(ctx, txs, "grant the senders their roles")
}
