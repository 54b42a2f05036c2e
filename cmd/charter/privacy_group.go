package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

const privacyGroupUsage = `Usage: charter privacy group SUBCOMMAND [arguments] [flags]

Subcommands:
  create --name N [--member ORG...]  create a group of your organization and others (an account with write)
  list [--org ORG]                   the active groups of an organization (default: the --key account's)
  show ID                            a group: members, members hash, status
  add ID ORG [ORG...]                add organizations to a group (an admin of a member organization)
  remove ID ORG                      take an organization out of a group (an admin of a member organization)
  delete ID                          delete a group (an admin of a member organization)

ID is 0x and 64 hex digits, or the base64 privacyGroupId of Besu's privacy API.
Run 'charter privacy group SUBCOMMAND --help' for its flags.
`

func runPrivacyGroup(args []string, stdout, stderr io.Writer) error {
	return runSubcommand(privacyGroupUsage, args, stdout, stderr,
		subcommand{"create", groupCreate}, subcommand{"list", groupList}, subcommand{"show", groupShow}, subcommand{"add", groupAdd}, subcommand{"remove", groupRemove}, subcommand{"delete", groupDelete})
}

// keyOrg returns the organization of the --key account, as the node's
// registry has it ("" for none).
func keyOrg(c *client, sf *sendFlags) (string, error) {
	key, err := sf.loadKey()
	if err != nil {
		return "", err
	}
	var acct rpc.AccountInfo
	if _, err := c.callInto(&acct, "charter_account", crypto.PubkeyToAddress(key.PublicKey)); err != nil {
		return "", err
	}
	return acct.Org, nil
}

// registryEvent unpacks the first registry event name of a receipt into
// out; an error says the transaction made none.
func registryEvent(s *sentTx, name string, out any) (*types.Log, error) {
	logs := eventLogs(s.receipt, system.RegistryAddress, system.Registry.Events[name].ID)
	if len(logs) == 0 || len(logs[0].Topics) < 2 {
		return nil, fmt.Errorf("transaction %s succeeded in block %s but made no %s event", s.tx.Hash().Hex(), s.receipt.BlockNumber, name)
	}
	if err := system.Registry.UnpackIntoInterface(out, name, logs[0].Data); err != nil {
		return nil, fmt.Errorf("%s event: %v", name, err)
	}
	return logs[0], nil
}

// sendRegistry checks the send flags, then signs and sends a call of the
// registry's method with args.
func sendRegistry(sf *sendFlags, method string, args ...any) (*sentTx, error) {
	if err := sf.check(); err != nil {
		return nil, err
	}
	data, err := system.Registry.Pack(method, args...)
	if err != nil {
		return nil, err
	}
	return sf.dialAndSend(system.RegistryAddress, nil, data)
}

func groupCreate(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy group create --name NAME [--description TEXT] [--member ORG ...] [--id ID] --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("privacy group create", stderr)
	name := fs.String("name", "", fmt.Sprintf("the group's name (at most %d bytes)", system.MaxGroupNameBytes))
	desc := fs.String("description", "", fmt.Sprintf("what the group is for (at most %d bytes)", system.MaxGroupDescriptionBytes))
	var members listFlag
	fs.Var(&members, "member", "a member organization besides the key's own, which is always one (repeatable, or comma separated)")
	idArg := fs.String("id", "", "the group's id, 0x and 64 hex digits or base64 (default: the registry derives one)")
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, syntax); err != nil {
		return err
	}
	var id common.Hash
	if *idArg != "" {
		if id, err = system.ParseGroupID(*idArg); err != nil {
			return fmt.Errorf("--id: %v", err)
		}
		if id == (common.Hash{}) {
			return errors.New("--id: the zero id asks the registry to derive one; leave --id out instead")
		}
	}
	// The chain's own checks of the arguments alone, before anything is sent.
	if err := system.CheckGroupText(*name, *desc); err != nil {
		return err
	}
	if err := sf.check(); err != nil {
		return err
	}
	c, err := sf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	org, err := keyOrg(c, sf)
	if err != nil {
		return err
	}
	all := slices.Clone(members)
	if org != "" && !slices.Contains(all, org) {
		all = append(all, org)
	}
	if err := system.CheckGroupMembers(all); err != nil {
		return fmt.Errorf("--member: %v", err)
	}
	data, err := system.Registry.Pack("createGroup", [32]byte(id), *name, *desc, []string(all))
	if err != nil {
		return err
	}
	s, err := sf.send(c, system.RegistryAddress, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	var ev struct {
		Org         string
		Name        string
		Members     []string
		MembersHash [32]byte
	}
	l, err := registryEvent(s, "GroupCreated", &ev)
	if err != nil {
		return err
	}
	gid := l.Topics[1]
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "id": gid,
			"privacyGroupId": system.GroupIDBase64(gid), "org": ev.Org, "name": ev.Name, "members": ev.Members,
			"membersHash": common.Hash(ev.MembersHash)})
	}
	_, err = fmt.Fprintf(stdout, "group %s (privacyGroupId %s) created by %s; members: %s\n", gid.Hex(), system.GroupIDBase64(gid),
		ev.Org, strings.Join(ev.Members, ", "))
	return err
}

// groupChangeArgs parses the positional ID [ORG...] of add, remove and
// delete, with n organizations (-1: at least one).
func groupChangeArgs(pos []string, n int, syntax string) (common.Hash, []string, error) {
	if n < 0 {
		if len(pos) < 2 {
			return common.Hash{}, nil, fmt.Errorf("missing arguments; usage: %s", syntax)
		}
	} else if err := wantArgs(pos, 1+n, syntax); err != nil {
		return common.Hash{}, nil, err
	}
	id, err := system.ParseGroupID(pos[0])
	if err != nil {
		return common.Hash{}, nil, err
	}
	var orgs []string
	for _, p := range pos[1:] {
		for _, o := range strings.Split(p, ",") {
			if o = strings.TrimSpace(o); o != "" {
				orgs = append(orgs, o)
			}
		}
	}
	return id, orgs, nil
}

func groupAdd(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy group add ID ORG [ORG...] --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("privacy group add", stderr)
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	id, orgs, err := groupChangeArgs(pos, -1, syntax)
	if err != nil {
		return err
	}
	if err := system.CheckGroupMembers(orgs); err != nil {
		return err
	}
	s, err := sendRegistry(sf, "addMembers", [32]byte(id), orgs)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	var ev struct {
		Org         string
		Added       []string
		MembersHash [32]byte
	}
	if _, err := registryEvent(s, "GroupMembersAdded", &ev); err != nil {
		return err
	}
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "id": id,
			"org": ev.Org, "added": ev.Added, "membersHash": common.Hash(ev.MembersHash)})
	}
	_, err = fmt.Fprintf(stdout, "group %s: %s added by %s\n", id.Hex(), strings.Join(ev.Added, ", "), ev.Org)
	return err
}

func groupRemove(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy group remove ID ORG --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("privacy group remove", stderr)
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	id, orgs, err := groupChangeArgs(pos, 1, syntax)
	if err != nil {
		return err
	}
	if len(orgs) != 1 {
		return fmt.Errorf("remove one organization at a time; usage: %s", syntax)
	}
	s, err := sendRegistry(sf, "removeMember", [32]byte(id), orgs[0])
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	var ev struct {
		Org         string
		Member      string
		MembersHash [32]byte
	}
	if _, err := registryEvent(s, "GroupMemberRemoved", &ev); err != nil {
		return err
	}
	deleted := len(eventLogs(s.receipt, system.RegistryAddress, system.Registry.Events["GroupDeleted"].ID)) > 0
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "id": id,
			"org": ev.Org, "removed": ev.Member, "membersHash": common.Hash(ev.MembersHash), "deleted": deleted})
	}
	line := fmt.Sprintf("group %s: %s removed by %s", id.Hex(), ev.Member, ev.Org)
	if deleted {
		line += "; it had no other member and is deleted"
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}

func groupDelete(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy group delete ID --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("privacy group delete", stderr)
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	id, _, err := groupChangeArgs(pos, 0, syntax)
	if err != nil {
		return err
	}
	s, err := sendRegistry(sf, "deleteGroup", [32]byte(id))
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	var ev struct{ Org string }
	if _, err := registryEvent(s, "GroupDeleted", &ev); err != nil {
		return err
	}
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "id": id, "org": ev.Org, "status": "deleted"})
	}
	_, err = fmt.Fprintf(stdout, "group %s deleted by %s\n", id.Hex(), ev.Org)
	return err
}

func groupShow(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy group show ID [--rpc URL] [--block N] [--json]"
	fs := newFlagSet("privacy group show", stderr)
	nf := addNodeFlags(fs)
	block := fs.String("block", "latest", "show the group as of this block height")
	jsonOut := fs.Bool("json", false, "print the charter_group answer as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	id, _, err := groupChangeArgs(pos, 0, syntax)
	if err != nil {
		return err
	}
	bargs, err := blockArg(*block)
	if err != nil {
		return err
	}
	var g rpc.GroupInfo
	raw, err := nf.query(&g, "charter_group", append([]any{id.Hex()}, bargs...)...)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	tw := newTable(stdout)
	fmt.Fprintf(tw, "Group\t%s\n", g.ID.Hex())
	fmt.Fprintf(tw, "privacyGroupId\t%s\n", g.PrivacyGroupID)
	fmt.Fprintf(tw, "Name\t%s\n", strings.Join(strings.Fields(g.Name), " "))
	fmt.Fprintf(tw, "Description\t%s\n", strings.Join(strings.Fields(g.Description), " "))
	fmt.Fprintf(tw, "Status\t%s\n", g.Status)
	fmt.Fprintf(tw, "Creator\t%s\n", g.Creator)
	fmt.Fprintf(tw, "Members\t%s\n", memberText(g))
	fmt.Fprintf(tw, "Members hash\t%s\n", g.MembersHash.Hex())
	fmt.Fprintf(tw, "Created\theight %d\n", g.Created)
	fmt.Fprintf(tw, "Changed\theight %d\n", g.Changed)
	return tw.Flush()
}

// memberText lists a group's members, marking those not active.
func memberText(g rpc.GroupInfo) string {
	if len(g.Members) == 0 {
		return "(none)"
	}
	parts := make([]string, len(g.Members))
	for i, m := range g.Members {
		parts[i] = m
		if slices.Contains(g.InactiveMembers, m) {
			parts[i] += " (not active)"
		}
	}
	return strings.Join(parts, ", ")
}

func groupList(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy group list [--org ORG | --key FILE] [--rpc URL] [--block N] [--json]"
	fs := newFlagSet("privacy group list", stderr)
	org := fs.String("org", "", "the organization whose groups to list (default: the --key account's)")
	key := fs.String("key", "", "key file of an account: list its organization's groups")
	pwFile := fs.String("password-file", "", "password of the key file, on this file's first line")
	nf := addNodeFlags(fs)
	block := fs.String("block", "latest", "list the groups as of this block height")
	jsonOut := fs.Bool("json", false, "print the charter_groups answer as JSON")
	setUsage(fs, stderr, syntax)
	if err := parse(fs, args); err != nil {
		return err
	}
	bargs, err := blockArg(*block)
	if err != nil {
		return err
	}
	if *org == "" && *key == "" {
		return errors.New("give --org, or --key to list the groups of the key's organization")
	}
	c, err := nf.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	if *org == "" {
		sf := &sendFlags{key: key, pwFile: pwFile}
		if *org, err = keyOrg(c, sf); err != nil {
			return err
		}
		if *org == "" {
			return fmt.Errorf("--key %s: its account belongs to no organization; give --org", *key)
		}
	}
	var gs []rpc.GroupInfo
	raw, err := c.callInto(&gs, "charter_groups", append([]any{*org}, bargs...)...)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	if len(gs) == 0 {
		_, err = fmt.Fprintf(stdout, "organization %s belongs to no privacy group\n", *org)
		return err
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "PRIVACY GROUP ID\tNAME\tCREATOR\tMEMBERS\tCHANGED")
	for _, g := range gs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", g.PrivacyGroupID, shorten(strings.Join(strings.Fields(g.Name), " "), 40), g.Creator,
			shorten(memberText(g), 80), g.Changed)
	}
	return tw.Flush()
}
