package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/charter-ledger/charter/internal/system"
)

// charter privacy purge, disclose and log: a group's purge and auditor
// grants by its members' admins (one approval per member organization),
// and the log of grants and disclosures from the registry's events.

func privacyPurge(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy purge ID --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("privacy purge", stderr)
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
	s, err := sendRegistry(sf, "purgeGroup", [32]byte(id))
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	var ev struct{ Org string }
	if _, err := registryEvent(s, "GroupPurgeApproved", &ev); err != nil {
		return err
	}
	purged := len(eventLogs(s.receipt, system.RegistryAddress, system.Registry.Events["GroupPurged"].ID)) > 0
	if *sf.json {
		return printValue(stdout, map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "id": id,
			"org": ev.Org, "purged": purged})
	}
	line := fmt.Sprintf("group %s: %s approved its purge", id.Hex(), ev.Org)
	if purged {
		line += fmt.Sprintf("; every member approved: purged at height %d", s.receipt.BlockNumber.Uint64())
	} else {
		line += "; waiting for the other members' admins"
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}

func privacyDisclose(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy disclose ID --org AUDITOR (--from HEIGHT | --revoke) --key FILE [--rpc URL] [--json] [--no-wait]"
	fs := newFlagSet("privacy disclose", stderr)
	org := fs.String("org", "", "the auditor organization (one of its accounts holds the auditor role; not a member)")
	from := fs.String("from", "", "the first height of the markers whose payloads it may read")
	revoke := fs.Bool("revoke", false, "approve revoking the organization's grant instead")
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
	if strings.TrimSpace(*org) == "" {
		return errors.New("--org is required: the auditor organization")
	}
	var s *sentTx
	if *revoke {
		if *from != "" {
			return errors.New("--from and --revoke exclude each other")
		}
		s, err = sendRegistry(sf, "revokeAuditor", [32]byte(id), *org)
	} else {
		if *from == "" {
			return errors.New("--from is required: the first height the auditor may read (or --revoke)")
		}
		h, perr := strconv.ParseUint(strings.TrimSpace(*from), 0, 64)
		if perr != nil {
			return fmt.Errorf("--from %q: want a block height", *from)
		}
		s, err = sendRegistry(sf, "grantAuditor", [32]byte(id), *org, h)
	}
	if err != nil {
		return err
	}
	if s.receipt == nil {
		return printNoWait(stdout, sf, s)
	}
	var ev struct {
		Org        string
		Auditor    string
		FromHeight uint64
		Revoke     bool
	}
	if _, err := registryEvent(s, "AuditorChangeApproved", &ev); err != nil {
		return err
	}
	done := "AuditorGranted"
	if *revoke {
		done = "AuditorRevoked"
	}
	effective := len(eventLogs(s.receipt, system.RegistryAddress, system.Registry.Events[done].ID)) > 0
	if *sf.json {
		out := map[string]any{"tx": s.tx.Hash(), "block": s.receipt.BlockNumber.Uint64(), "id": id, "org": ev.Org,
			"auditor": ev.Auditor, "revoke": ev.Revoke, "effective": effective}
		if !ev.Revoke {
			out["from"] = ev.FromHeight
		}
		return printValue(stdout, out)
	}
	what := fmt.Sprintf("granting %s access from height %d", ev.Auditor, ev.FromHeight)
	if ev.Revoke {
		what = fmt.Sprintf("revoking %s's access", ev.Auditor)
	}
	line := fmt.Sprintf("group %s: %s approved %s", id.Hex(), ev.Org, what)
	if effective {
		line += "; every member approved: in effect"
	} else {
		line += "; waiting for the other members' admins"
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}

// auditEntry is one entry of a group's log of grants and disclosures.
type auditEntry struct {
	Block       uint64      `json:"block"`
	Tx          common.Hash `json:"tx"`
	Event       string      `json:"event"`
	Org         string      `json:"org,omitempty"`     // the member organization that acted
	Auditor     string      `json:"auditor,omitempty"` // the auditor organization
	From        *uint64     `json:"from,omitempty"`
	Revoke      bool        `json:"revoke,omitempty"`
	PayloadHash common.Hash `json:"payloadHash,omitzero"`
	Height      uint64      `json:"height,omitempty"`
}

// auditEvents are the registry events a group's log shows.
var auditEvents = []string{"AuditorChangeApproved", "AuditorGranted", "AuditorRevoked", "Disclosed", "GroupPurgeApproved", "GroupPurged"}

// rpcLog is a log as eth_getLogs answers it.
type rpcLog struct {
	Topics      []common.Hash  `json:"topics"`
	Data        hexutil.Bytes  `json:"data"`
	BlockNumber hexutil.Uint64 `json:"blockNumber"`
	TxHash      common.Hash    `json:"transactionHash"`
}

func privacyLog(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter privacy log ID [--from-block N] [--to-block N] [--rpc URL] [--json]"
	fs := newFlagSet("privacy log", stderr)
	nf := addNodeFlags(fs)
	fromBlock := fs.Uint64("from-block", 0, "the first block to search")
	toBlock := fs.String("to-block", "latest", "the last block to search")
	jsonOut := fs.Bool("json", false, "print the entries as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	id, _, err := groupChangeArgs(pos, 0, syntax)
	if err != nil {
		return err
	}
	to := *toBlock
	if to != "latest" {
		n, err := strconv.ParseUint(to, 0, 64)
		if err != nil {
			return fmt.Errorf("--to-block %q: want a block height or latest", to)
		}
		to = hexutil.EncodeUint64(n)
	}
	sigs := make([]common.Hash, len(auditEvents))
	for i, name := range auditEvents {
		sigs[i] = system.Registry.Events[name].ID
	}
	filter := map[string]any{"address": system.RegistryAddress, "fromBlock": hexutil.EncodeUint64(*fromBlock), "toBlock": to,
		"topics": []any{sigs, id}}
	var logs []rpcLog
	if _, err := nf.query(&logs, "eth_getLogs", filter); err != nil {
		return err
	}
	entries := make([]auditEntry, 0, len(logs))
	for _, l := range logs {
		e, err := decodeAuditLog(l)
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	if *jsonOut {
		return printValue(stdout, entries)
	}
	if len(entries) == 0 {
		_, err = fmt.Fprintf(stdout, "group %s: no grants, disclosures or purge approvals\n", id.Hex())
		return err
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "BLOCK\tEVENT\tBY\tAUDITOR\tDETAIL")
	for _, e := range entries {
		detail := ""
		switch {
		case e.Event == "Disclosed":
			detail = "payload " + e.PayloadHash.Hex()
		case e.From != nil:
			detail = fmt.Sprintf("from height %d", *e.From)
		case e.Revoke:
			detail = "revoke"
		case e.Event == "GroupPurged":
			detail = fmt.Sprintf("at height %d", e.Height)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.Block, e.Event, dash(e.Org), dash(e.Auditor), detail)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// decodeAuditLog reads one registry log of auditEvents.
func decodeAuditLog(l rpcLog) (auditEntry, error) {
	if len(l.Topics) == 0 {
		return auditEntry{}, errors.New("eth_getLogs answered a log without topics")
	}
	ev, err := system.Registry.EventByID(l.Topics[0])
	if err != nil {
		return auditEntry{}, fmt.Errorf("eth_getLogs answered a log of no registry event: %v", err)
	}
	e := auditEntry{Block: uint64(l.BlockNumber), Tx: l.TxHash, Event: ev.Name}
	var v struct {
		Org         string
		Auditor     string
		FromHeight  uint64
		From        uint64
		Revoke      bool
		PayloadHash [32]byte
		ServedBy    string
		Height      uint64
	}
	if err := system.Registry.UnpackIntoInterface(&v, ev.Name, l.Data); err != nil {
		return auditEntry{}, fmt.Errorf("%s event: %v", ev.Name, err)
	}
	switch ev.Name {
	case "AuditorChangeApproved":
		e.Org, e.Auditor, e.Revoke = v.Org, v.Auditor, v.Revoke
		if !v.Revoke {
			e.From = &v.FromHeight
		}
	case "AuditorGranted":
		e.Auditor, e.From = v.Org, &v.From
	case "AuditorRevoked":
		e.Auditor, e.Revoke = v.Org, true
	case "Disclosed":
		e.Org, e.Auditor, e.PayloadHash = v.ServedBy, v.Auditor, v.PayloadHash
	case "GroupPurgeApproved":
		e.Org = v.Org
	case "GroupPurged":
		e.Height = v.Height
	}
	return e, nil
}
