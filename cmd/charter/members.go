package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

const membersUsage = `Usage: charter members [SUBCOMMAND] [arguments] [flags]

  charter members [--rpc URL] [--block N] [--json]
        organizations with their tier, weight, status, nodes and accounts; the validator set
  charter members account ADDR [--rpc URL] [--block N] [--json]
        an account's organization, roles and whether it is frozen
  charter members set-roles ACCOUNT ROLES --key FILE [--rpc URL] [--json] [--no-wait]
        as an admin of your organization, set an account's roles (comma separated:
        read, write, deploy, admin; or none)
`

func runMembers(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "help":
			fmt.Fprint(stderr, membersUsage)
			return flag.ErrHelp
		case "account":
			return membersAccount(args[1:], stdout, stderr)
		case "set-roles":
			return membersSetRoles(args[1:], stdout, stderr)
		}
		if !strings.HasPrefix(args[0], "-") {
			return fmt.Errorf("unknown subcommand %q; want account or set-roles, or no subcommand for the list", args[0])
		}
	}
	return membersList(args, stdout, stderr)
}

func membersList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("members", stderr)
	nf := addNodeFlags(fs)
	block := fs.String("block", "latest", "the registry as of this block height")
	jsonOut := fs.Bool("json", false, "print the charter_members answer as JSON")
	setUsage(fs, stderr, "charter members [--rpc URL] [--block N] [--json]; also 'charter members account' and 'charter members set-roles' (charter members help)")
	if err := parse(fs, args); err != nil {
		return err
	}
	bargs, err := blockArg(*block)
	if err != nil {
		return err
	}
	var m rpc.Members
	raw, err := nf.query(&m, "charter_members", bargs...)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	fmt.Fprintf(stdout, "Registry at height %d\n\n", m.Height)
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ORGANIZATION\tTIER\tWEIGHT\tSTATUS\tSINCE\tNODES\tVALIDATORS\tACCOUNTS")
	for _, o := range m.Organizations {
		vals := 0
		for _, n := range o.Nodes {
			if n.Validator {
				vals++
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\n", orgLabel(o.Name), o.Tier, o.Weight, o.Status, o.Since, len(o.Nodes), vals, len(o.Accounts))
	}
	tw.Flush()
	for _, o := range m.Organizations {
		fmt.Fprintf(stdout, "\n%s\n", orgLabel(o.Name))
		if len(o.Nodes) > 0 {
			tw = newTable(stdout)
			fmt.Fprintln(tw, "  NODE\tVALIDATOR\tREVOKED\tCERTIFICATE")
			for _, n := range o.Nodes {
				fp := "any of the organization"
				if n.Fingerprint != (common.Hash{}) {
					fp = strings.TrimPrefix(n.Fingerprint.Hex(), "0x")
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", n.ID.Hex(), yesNo(n.Validator), yesNo(n.Revoked), fp)
			}
			tw.Flush()
		}
		if len(o.Accounts) > 0 {
			tw = newTable(stdout)
			fmt.Fprintln(tw, "  ACCOUNT\tROLES\tFROZEN")
			for _, a := range o.Accounts {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Address.Hex(), roleText(a.Roles), yesNo(a.Frozen))
			}
			tw.Flush()
		}
		if len(o.Nodes) == 0 && len(o.Accounts) == 0 {
			fmt.Fprintln(stdout, "  no nodes, no accounts")
		}
	}
	fmt.Fprintln(stdout)
	tw = newTable(stdout)
	fmt.Fprintf(tw, "Validators\t%s\n", addrList(m.Validators))
	for _, vc := range m.ValidatorChanges {
		when := "in force"
		if vc.From > m.Height {
			when = "scheduled"
		}
		fmt.Fprintf(tw, "Validator set from height %d (%s)\t%s\n", vc.From, when, addrList(vc.IDs))
	}
	fmt.Fprintf(tw, "Default roles\t%s\n", roleText(m.DefaultRoles))
	for _, k := range sortedKeys(m.Parameters) {
		fmt.Fprintf(tw, "Parameter %s\t%d\n", k, m.Parameters[k])
	}
	for _, u := range m.Upgrades {
		fmt.Fprintf(tw, "Upgrade %s\tat height %d\n", u.Name, u.Height)
	}
	if len(m.Revoked) > 0 {
		fps := make([]string, len(m.Revoked))
		for i, h := range m.Revoked {
			fps[i] = strings.TrimPrefix(h.Hex(), "0x")
		}
		fmt.Fprintf(tw, "Revoked certificates\t%s\n", strings.Join(fps, ", "))
	}
	if len(m.Frozen) > 0 {
		fmt.Fprintf(tw, "Frozen\t%s\n", addrList(m.Frozen))
	}
	fmt.Fprintf(tw, "Contract factories\t%s\n", addrList(m.Factories))
	return tw.Flush()
}

func orgLabel(name string) string {
	if name == "" {
		return "(no organization)"
	}
	return name
}

func roleText(roles []string) string {
	if len(roles) == 0 {
		return "none"
	}
	return strings.Join(roles, ",")
}

func addrList(as []common.Address) string {
	if len(as) == 0 {
		return "none"
	}
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.Hex()
	}
	return strings.Join(parts, ", ")
}

func membersAccount(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter members account ADDR [--rpc URL] [--block N] [--json]"
	fs := newFlagSet("members account", stderr)
	nf := addNodeFlags(fs)
	block := fs.String("block", "latest", "the account as of this block height")
	jsonOut := fs.Bool("json", false, "print the charter_account answer as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	addr, err := parseAddr("account", pos[0])
	if err != nil {
		return err
	}
	bargs, err := blockArg(*block)
	if err != nil {
		return err
	}
	var a rpc.AccountInfo
	raw, err := nf.query(&a, "charter_account", append([]any{addr}, bargs...)...)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	tw := newTable(stdout)
	fmt.Fprintf(tw, "Account\t%s\n", a.Address.Hex())
	fmt.Fprintf(tw, "Organization\t%s\n", orgLabel(a.Org))
	fmt.Fprintf(tw, "Roles\t%s\n", roleText(a.Roles))
	fmt.Fprintf(tw, "Effective roles\t%s\n", roleText(a.EffectiveRoles))
	fmt.Fprintf(tw, "Frozen\t%s\n", yesNo(a.Frozen))
	return tw.Flush()
}

func membersSetRoles(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter members set-roles ACCOUNT ROLES --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("members set-roles", stderr)
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 2, syntax); err != nil {
		return err
	}
	acct, err := parseAddr("account", pos[0])
	if err != nil {
		return err
	}
	roles, err := parseRoleArg(pos[1])
	if err != nil {
		return err
	}
	if err := sf.check(); err != nil {
		return err
	}
	data, err := system.Registry.Pack("setAccountRoles", acct, uint32(roles))
	if err != nil {
		return err
	}
	s, err := sf.dialAndSend(system.RegistryAddress, nil, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	logs := eventLogs(s.receipt, system.RegistryAddress, system.Registry.Events["RolesChanged"].ID)
	if len(logs) == 0 {
		return fmt.Errorf("transaction %s succeeded in block %s but made no RolesChanged event", s.tx.Hash().Hex(), s.receipt.BlockNumber)
	}
	var ev struct {
		Org   string
		Roles uint32
	}
	if err := system.Registry.UnpackIntoInterface(&ev, "RolesChanged", logs[0].Data); err != nil {
		return fmt.Errorf("RolesChanged event: %v", err)
	}
	org, now := ev.Org, ev.Roles
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "account": acct,
			"org": org, "roles": system.Role(now).Names()})
	}
	_, err = fmt.Fprintf(stdout, "account %s of %s now holds %s\n", acct.Hex(), org, system.Role(now))
	return err
}

// parseRoleArg reads the ROLES argument of set-roles.
func parseRoleArg(s string) (system.Role, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "none") {
		return 0, nil
	}
	r, err := system.ParseRoles(strings.Split(s, ","))
	if err != nil {
		return 0, fmt.Errorf("roles %q: %v", s, err)
	}
	// The chain's own rule, checked before sending.
	if err := system.CheckAdminRoles(r); err != nil {
		return 0, err
	}
	return r, nil
}

// ---- usage ----

func runUsage(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("usage", stderr)
	nf := addNodeFlags(fs)
	from := fs.String("from", "", "first UTC day, YYYY-MM-DD (default: --to)")
	to := fs.String("to", "", "last UTC day, YYYY-MM-DD (default: today)")
	jsonOut := fs.Bool("json", false, "print the charter_usage answer as JSON")
	setUsage(fs, stderr, "charter usage [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--rpc URL] [--json]")
	if err := parse(fs, args); err != nil {
		return err
	}
	toDay := uint64(time.Now().Unix() / 86400)
	if *to != "" {
		d, err := parseDay("to", *to)
		if err != nil {
			return err
		}
		toDay = d
	}
	fromDay := toDay
	if *from != "" {
		d, err := parseDay("from", *from)
		if err != nil {
			return err
		}
		fromDay = d
	}
	if fromDay > toDay {
		return fmt.Errorf("--from %s is after --to %s", dayText(fromDay), dayText(toDay))
	}
	if toDay-fromDay > 3660 {
		return fmt.Errorf("--from %s to --to %s spans more than 3660 days", dayText(fromDay), dayText(toDay))
	}
	var rows []rpc.UsageRow
	raw, err := nf.query(&rows, "charter_usage", fromDay, toDay)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	if fromDay == toDay {
		fmt.Fprintf(stdout, "Usage on %s (UTC)\n\n", dayText(fromDay))
	} else {
		fmt.Fprintf(stdout, "Usage from %s to %s (UTC)\n\n", dayText(fromDay), dayText(toDay))
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ORGANIZATION\tNODES\tTXS\tGAS\tSTATE BYTES\tGAS SHARE")
	var txs, gas, bytes uint64
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", orgLabel(r.Org), r.Nodes, r.Txs, r.Gas, r.StateBytes, pct(r.Share))
		txs, gas, bytes = txs+r.Txs, gas+r.Gas, bytes+r.StateBytes
	}
	fmt.Fprintf(tw, "total\t\t%d\t%d\t%d\t\n", txs, gas, bytes)
	return tw.Flush()
}

func parseDay(flagName, s string) (uint64, error) {
	t, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(s), time.UTC)
	if err != nil || t.Unix() < 0 {
		return 0, fmt.Errorf("--%s %q: want a date YYYY-MM-DD, from 1970-01-01 on", flagName, s)
	}
	return uint64(t.Unix() / 86400), nil
}

func dayText(day uint64) string { return time.Unix(int64(day)*86400, 0).UTC().Format("2006-01-02") }
