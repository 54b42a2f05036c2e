package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

const govUsage = `Usage: charter gov SUBCOMMAND [arguments] [flags]

Subcommands:
  propose ACTION   propose a governance action for your organization (run 'charter gov propose --help' for the actions)
  vote ID yes|no   vote on a proposal for your organization
  cancel ID        withdraw an open proposal of your organization
  show ID          a proposal: action, arguments, status, tally and votes
  list             proposals, newest first (--status to filter)
  history          the governance audit trail
  policy           the voting rule of each class of proposals

Run 'charter gov SUBCOMMAND --help' for its flags.
`

func runGov(args []string, stdout, stderr io.Writer) error {
	return runSubcommand(govUsage, args, stdout, stderr,
		subcommand{"propose", govPropose}, subcommand{"vote", govVote}, subcommand{"cancel", govCancel}, subcommand{"show", govShow}, subcommand{"list", govList}, subcommand{"history", govHistory}, subcommand{"policy", govPolicy})
}

const proposeSyntax = "charter gov propose ACTION [action flags] --memo TEXT --key FILE [--rpc URL] [--password-file F] [--json] [--no-wait] [--timeout D]"

func proposeHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\nActions and their flags:\n", proposeSyntax)
	tw := newTable(w)
	for _, a := range system.Actions() {
		fmt.Fprintf(tw, "  %s\t%s\n", a.CLIName(), actionSyntax(a))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nRun 'charter gov propose ACTION --help' for an action's flags.")
}

func govPropose(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		proposeHelp(stderr)
		if len(args) == 0 {
			return errUsage
		}
		return flag.ErrHelp
	}
	if strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("give the action first: %s; actions: %s", proposeSyntax, strings.Join(actionNames(), ", "))
	}
	action, err := actionByName(args[0])
	if err != nil {
		return err
	}
	name, syntax := action.CLIName(), actionSyntax(action)
	fs := newFlagSet("gov propose "+name, stderr)
	af := addActionFlags(fs, action)
	memo := fs.String("memo", "", fmt.Sprintf("why: kept with the proposal and in the audit trail (at most %d bytes)", system.MaxMemoBytes))
	sf := addSendFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: charter gov propose %s %s --memo TEXT --key FILE [flags]\n\n%s\n\nFlags:\n", name, syntax, action.Doc())
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q; usage: charter gov propose %s %s --memo TEXT --key FILE", pos[0], name, syntax)
	}
	var c *client
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	conn := func() (*client, error) {
		if c == nil {
			var err error
			if c, err = sf.dial(); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	act, err := af.build(conn)
	if err != nil {
		return err
	}
	// The chain's own first check: what the arguments are by themselves.
	if err := act.Validate(); err != nil {
		if strings.HasPrefix(err.Error(), action.String()+":") {
			return err
		}
		return fmt.Errorf("%s: %v", name, err)
	}
	encoded, err := system.Encode(act)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*memo) == "" {
		return errors.New("--memo is required: say why; it is kept with the proposal")
	}
	if err := system.CheckMemo(*memo); err != nil {
		return fmt.Errorf("--memo: %v", err)
	}
	if err := sf.check(); err != nil {
		return err
	}
	data, err := system.Governance.Pack("propose", uint8(action), encoded, *memo)
	if err != nil {
		return err
	}
	if _, err := conn(); err != nil {
		return err
	}
	s, err := sf.send(c, system.GovernanceAddress, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	return printProposal(stdout, sf, s, name, name)
}

// printProposal prints the proposal a mined propose transaction made: its
// id, what it does (what, e.g. "upgrade-contract Token to 0x…"), the
// proposing organization and its expiry, or the same as JSON with action
// named by action.
func printProposal(stdout io.Writer, sf *sendFlags, s *sentTx, action, what string) error {
	logs := govLogs(s.receipt, "ProposalCreated")
	if len(logs) == 0 || len(logs[0].Topics) < 2 {
		return fmt.Errorf("transaction %s succeeded in block %s but made no ProposalCreated event", s.tx.Hash().Hex(), s.receipt.BlockNumber)
	}
	var ev struct {
		Action  uint8
		Org     string
		Expires uint64
		Memo    string
	}
	if err := system.Governance.UnpackIntoInterface(&ev, "ProposalCreated", logs[0].Data); err != nil {
		return fmt.Errorf("ProposalCreated event: %v", err)
	}
	id := topicUint(logs[0].Topics[1])
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "proposal": id,
			"action": action, "org": ev.Org, "proposer": s.from, "expires": ev.Expires})
	}
	_, err := fmt.Fprintf(stdout, "proposal %d: %s by %s, expires at height %d (vote with 'charter gov vote %d yes')\n", id, what, ev.Org, ev.Expires, id)
	return err
}

// ---- vote, cancel ----

func govVote(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter gov vote ID yes|no --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("gov vote", stderr)
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 2, syntax); err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	var support bool
	switch strings.ToLower(pos[1]) {
	case "yes":
		support = true
	case "no":
	default:
		return fmt.Errorf("vote %q: want yes or no", pos[1])
	}
	if err := sf.check(); err != nil {
		return err
	}
	data, err := system.Governance.Pack("vote", id, support)
	if err != nil {
		return err
	}
	s, err := sf.dialAndSend(system.GovernanceAddress, nil, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	g := &system.Governance
	out := map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "proposal": id, "support": support}
	var cast struct {
		Org     string
		Support bool
		Weight  uint64
	}
	if logs := govLogs(s.receipt, "VoteCast"); len(logs) > 0 {
		if err := g.UnpackIntoInterface(&cast, "VoteCast", logs[0].Data); err == nil {
			out["org"], out["weight"] = cast.Org, cast.Weight
		}
	}
	org, weight := cast.Org, cast.Weight
	status := "open"
	var line string
	if logs := govLogs(s.receipt, "ProposalPassed"); len(logs) > 0 {
		var passed struct{ ActivatesAt uint64 }
		if err := g.UnpackIntoInterface(&passed, "ProposalPassed", logs[0].Data); err != nil {
			return fmt.Errorf("ProposalPassed event: %v", err)
		}
		at := passed.ActivatesAt
		status, out["activatesAt"] = "passed", at
		line = fmt.Sprintf("proposal %d passed; executes at height %d", id, at)
		// The vote that passes a proposal returns when it is in force
		// (what its next command depends on), unless the timelock is long.
		if p, ok := awaitExecution(sf, id, s.receipt.BlockNumber.Uint64(), at); ok {
			status = p.Status
			if p.Status == "executed" {
				line = fmt.Sprintf("proposal %d passed; executed at height %d", id, at)
			} else {
				line = fmt.Sprintf("proposal %d passed; its execution at height %d: %s %s", id, at, p.Status, p.Result)
				out["result"] = p.Result
			}
		}
	} else if len(govLogs(s.receipt, "ProposalRejected")) > 0 {
		status = "rejected"
		line = fmt.Sprintf("proposal %d rejected", id)
	} else {
		line = fmt.Sprintf("proposal %d: %s voted %s (weight %d); still open", id, org, yesNo(support), weight)
		var p rpc.ProposalInfo
		if _, err := sf.query(&p, "charter_proposal", id, hexutil.EncodeBig(s.receipt.BlockNumber)); err == nil {
			out["yesWeight"], out["noWeight"], out["totalWeight"] = p.Yes, p.No, p.Total
			line += fmt.Sprintf(": yes %d, no %d of total weight %d, %s needed", p.Yes, p.No, p.Total, pct(p.Threshold))
		}
	}
	out["status"] = status
	if *sf.json {
		return printValue(stdout, out)
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}

// voteWaitBlocks bounds the timelock a passing vote waits out: a
// proposal that executes further away is reported as passed at once.
const voteWaitBlocks = 64

// awaitExecution waits, within --timeout, until proposal id, passed in
// block passedIn, is no longer waiting to execute at height at; its state
// then, and false if it did not come to that (a long timelock, the
// timeout, a node that does not answer).
func awaitExecution(sf *sendFlags, id, passedIn, at uint64) (rpc.ProposalInfo, bool) {
	var p rpc.ProposalInfo
	if at > passedIn+voteWaitBlocks {
		return p, false
	}
	deadline := time.Now().Add(*sf.timeout)
	for time.Now().Before(deadline) {
		if _, err := sf.query(&p, "charter_proposal", id); err != nil {
			return p, false
		}
		if p.Status != "passed" {
			return p, true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return p, false
}

func govCancel(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter gov cancel ID --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("gov cancel", stderr)
	sf := addSendFlags(fs)
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	if err := sf.check(); err != nil {
		return err
	}
	data, err := system.Governance.Pack("cancel", id)
	if err != nil {
		return err
	}
	s, err := sf.dialAndSend(system.GovernanceAddress, nil, data)
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	if len(govLogs(s.receipt, "ProposalCancelled")) == 0 {
		return fmt.Errorf("transaction %s succeeded in block %s but made no ProposalCancelled event", s.tx.Hash().Hex(), s.receipt.BlockNumber)
	}
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "proposal": id, "status": "cancelled"})
	}
	_, err = fmt.Fprintf(stdout, "proposal %d cancelled\n", id)
	return err
}

// ---- show, list, history, policy ----

func govShow(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter gov show ID [--rpc URL] [--block N] [--json]"
	fs := newFlagSet("gov show", stderr)
	nf := addNodeFlags(fs)
	block := fs.String("block", "latest", "show the proposal as of this block height")
	jsonOut := fs.Bool("json", false, "print the charter_proposal answer as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return err
	}
	id, err := parseID(pos[0])
	if err != nil {
		return err
	}
	bargs, err := blockArg(*block)
	if err != nil {
		return err
	}
	var p rpc.ProposalInfo
	raw, err := nf.query(&p, "charter_proposal", append([]any{id}, bargs...)...)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	tw := newTable(stdout)
	fmt.Fprintf(tw, "Proposal\t%d\n", p.ID)
	fmt.Fprintf(tw, "Action\t%s (class %s)\n", actionLabel(p.Action), p.Class)
	fmt.Fprintf(tw, "Status\t%s\n", p.Status)
	fmt.Fprintf(tw, "Organization\t%s\n", p.Org)
	fmt.Fprintf(tw, "Proposer\t%s\n", p.Proposer.Hex())
	fmt.Fprintf(tw, "Memo\t%s\n", strings.Join(strings.Fields(p.Memo), " "))
	fmt.Fprintf(tw, "Created\theight %d\n", p.Created)
	fmt.Fprintf(tw, "Expires\theight %d\n", p.Expires)
	if p.Decided != 0 {
		fmt.Fprintf(tw, "Decided\theight %d\n", p.Decided)
	}
	if p.ActivatesAt != 0 {
		fmt.Fprintf(tw, "Executes\theight %d\n", p.ActivatesAt)
	}
	if p.Result != "" {
		fmt.Fprintf(tw, "Result\t%s\n", p.Result)
	}
	fmt.Fprintf(tw, "Tally\tyes %d, no %d of total weight %d; %s of the weight needed\n", p.Yes, p.No, p.Total, pct(p.Threshold))
	if rows := argRows(p.Action, p.Args); len(rows) > 0 {
		fmt.Fprintln(tw, "Arguments\t")
		for _, kv := range rows {
			fmt.Fprintf(tw, "  %s\t%s\n", kv[0], kv[1])
		}
	}
	tw.Flush()
	if len(p.Votes) > 0 {
		fmt.Fprintln(stdout)
		tw = newTable(stdout)
		fmt.Fprintln(tw, "ORGANIZATION\tVOTER\tVOTE\tWEIGHT\tHEIGHT")
		for _, v := range p.Votes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", v.Org, v.Voter.Hex(), yesNo(v.Support), v.Weight, v.Height)
		}
		tw.Flush()
	}
	return nil
}

// argRows shows a proposal's arguments (charter_proposal's args) in ABI
// order, as name and text.
func argRows(action string, raw json.RawMessage) [][2]string {
	args := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if len(raw) == 0 || dec.Decode(&args) != nil {
		return nil
	}
	var names []string
	if a, err := system.ParseAction(action); err == nil {
		for _, f := range a.Fields() {
			names = append(names, f.Name)
		}
	}
	for _, k := range sortedKeys(args) {
		if !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	var rows [][2]string
	for _, n := range names {
		if v, ok := args[n]; ok {
			rows = append(rows, [2]string{n, argText(n, v)})
		}
	}
	return rows
}

func argText(name string, v any) string {
	switch x := v.(type) {
	case string:
		if name == "rootsPem" {
			n := strings.Count(x, "-----BEGIN CERTIFICATE-----")
			return fmt.Sprintf("%d PEM certificate(s), %d bytes", n, len(x))
		}
		if len(x) == 42 && common.IsHexAddress(x) {
			return common.HexToAddress(x).Hex()
		}
		if s, ok := privacyKeyText(x); ok {
			return s
		}
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = argText(name, e)
		}
		if len(parts) == 0 {
			return "(none)"
		}
		return strings.Join(parts, ", ")
	case json.Number:
		return x.String()
	case bool:
		return yesNo(x)
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

var proposalStatuses = []string{"open", "passed", "executed", "rejected", "expired", "cancelled", "failed"}

func govList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gov list", stderr)
	nf := addNodeFlags(fs)
	status := fs.String("status", "", "only proposals of this status: "+strings.Join(proposalStatuses, ", "))
	limit := fs.Uint64("limit", 100, "at most this many, newest first (1 to 1000)")
	jsonOut := fs.Bool("json", false, "print the charter_proposals answer as JSON")
	setUsage(fs, stderr, "charter gov list [--status STATUS] [--limit N] [--rpc URL] [--json]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *status != "" && !slices.Contains(proposalStatuses, *status) {
		return fmt.Errorf("--status %q: want one of %s", *status, strings.Join(proposalStatuses, ", "))
	}
	if *limit == 0 || *limit > 1000 {
		return fmt.Errorf("--limit %d is outside [1, 1000]", *limit)
	}
	var ps []rpc.ProposalInfo
	raw, err := nf.query(&ps, "charter_proposals", *status, *limit)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	if len(ps) == 0 {
		if *status != "" {
			_, err = fmt.Fprintf(stdout, "no %s proposals\n", *status)
		} else {
			_, err = fmt.Fprintln(stdout, "no proposals")
		}
		return err
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tACTION\tSTATUS\tORGANIZATION\tCREATED\tEXPIRES\tYES/TOTAL\tNEEDED\tMEMO")
	for _, p := range ps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%d/%d\t%s\t%s\n", p.ID, actionLabel(p.Action), p.Status, p.Org, p.Created, p.Expires,
			p.Yes, p.Total, pct(p.Threshold), shorten(strings.Join(strings.Fields(p.Memo), " "), 60))
	}
	return tw.Flush()
}

func govHistory(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gov history", stderr)
	nf := addNodeFlags(fs)
	from := fs.Uint64("from", 0, "first entry (0-based index)")
	limit := fs.Uint64("limit", 1000, "at most this many entries (1 to 10000)")
	jsonOut := fs.Bool("json", false, "print the charter_history answer as JSON")
	setUsage(fs, stderr, "charter gov history [--from I] [--limit N] [--rpc URL] [--json]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *limit == 0 || *limit > 10000 {
		return fmt.Errorf("--limit %d is outside [1, 10000]", *limit)
	}
	var evs []rpc.HistoryEvent
	raw, err := nf.query(&evs, "charter_history", *from, *limit)
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	if len(evs) == 0 {
		_, err = fmt.Fprintln(stdout, "no governance events")
		return err
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "#\tHEIGHT\tPROPOSAL\tEVENT\tORGANIZATION\tACTOR\tDETAIL")
	for _, e := range evs {
		prop, actor := "", ""
		if e.Proposal != 0 {
			prop = strconv.FormatUint(e.Proposal, 10)
		}
		if e.Actor != (common.Address{}) {
			actor = e.Actor.Hex()
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\n", e.Index, e.Height, prop, e.Kind, e.Org, actor, shorten(strings.Join(strings.Fields(e.Detail), " "), 80))
	}
	return tw.Flush()
}

func govPolicy(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gov policy", stderr)
	nf := addNodeFlags(fs)
	jsonOut := fs.Bool("json", false, "print the charter_policy answer as JSON")
	setUsage(fs, stderr, "charter gov policy [--rpc URL] [--json]")
	if err := parse(fs, args); err != nil {
		return err
	}
	var p rpc.PolicyInfo
	raw, err := nf.query(&p, "charter_policy")
	if err != nil {
		return err
	}
	if *jsonOut {
		return printJSON(stdout, raw)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "CLASS\tTHRESHOLD\tQUORUM\tEXPIRY (BLOCKS)\tTIMELOCK (BLOCKS)\tMIN APPROVALS")
	var classes []string
	for c := system.Class(0); c < system.NumClasses; c++ {
		classes = append(classes, c.String())
	}
	for k := range p.Rules {
		if !slices.Contains(classes, k) {
			classes = append(classes, k)
		}
	}
	for _, name := range classes {
		r, ok := p.Rules[name]
		if !ok {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\n", name, pct(r.Threshold), pct(r.Quorum), r.ExpiryBlocks, r.Timelock, r.MinApprovals)
	}
	tw.Flush()
	roles := strings.Join(p.DefaultRoles, ",")
	if roles == "" {
		roles = "none"
	}
	fmt.Fprintf(stdout, "\nThresholds and quorums are shares of the total weight of the active organizations.\nValidator set changes take effect every %d blocks. Accounts the registry does not list hold: %s.\nAn organization may have %d proposals open at once.\n\n", p.EpochLength, roles, p.MaxOpenProposals)
	tw = newTable(stdout)
	fmt.Fprintln(tw, "PARAMETER\tVALUE\tRANGE\tWHAT")
	for _, spec := range system.Params {
		v, ok := p.Parameters[spec.Name]
		value := "the chain spec's"
		if ok {
			value = strconv.FormatUint(v, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d to %d\t%s\n", spec.Name, value, spec.Min, spec.Max, spec.Doc)
	}
	return tw.Flush()
}
