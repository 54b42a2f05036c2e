package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/charter-ledger/charter/internal/system"
)

// maxDraftBytes bounds a draft's request (root certificates are the
// largest arguments).
const maxDraftBytes = 256 << 10

// DraftRequest is a proposal drafted in the page: the action by its CLI
// name, each argument by its flag's name as text (a list: comma or
// newline separated; a file flag: the file's content), and the memo.
type DraftRequest struct {
	Action string            `json:"action"`
	Args   map[string]string `json:"args"`
	Memo   string            `json:"memo"`
}

// Draft is the unsigned transaction that makes the proposal: what a
// member's admin signs (with `charter send`, a wallet, a hardware key).
// The node signs nothing and keeps nothing.
type Draft struct {
	To    string `json:"to,omitempty"`
	Data  string `json:"data,omitempty"`
	Value string `json:"value,omitempty"`
	// ChainID is the chain the transaction is for (hex).
	ChainID string `json:"chainId,omitempty"`
	// Problem says why the draft is not yet a transaction (the chain's
	// own first check, in its words); the other fields are then empty.
	Problem string `json:"problem,omitempty"`
}

// draft answers POST /api/console/draft: the calldata of
// Governance.propose for the drafted action, after the arguments' own
// checks (Validate, the chain's first), or the problem those find (200:
// the page asks as the user types; 400 only for a body that is not a
// draft). It reads no state and changes nothing; a draft needs the role
// read, as the page does.
func (a *api) draft(w http.ResponseWriter, r *http.Request) {
	if !admit(w, r, "POST /api/console/draft") {
		return
	}
	var req DraftRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxDraftBytes+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, "the draft: want JSON {action, args, memo} under 256 KiB: "+err.Error())
		return
	}
	out, err := buildDraft(req, a.cfg.Chain.ChainSpec().ChainID())
	if err != nil {
		// A draft being filled in is not yet a transaction: that is the
		// answer, not a failed request (the page asks as the user types).
		out = &Draft{Problem: err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(out)
}

func buildDraft(req DraftRequest, chainID uint64) (*Draft, error) {
	var action system.Action
	found := false
	for _, ac := range system.Actions() {
		if ac.CLIName() == req.Action {
			action, found = ac, true
		}
	}
	if !found {
		return nil, fmt.Errorf("unknown action %q", truncate(req.Action, 60))
	}
	args, ok := system.NewArgs(action)
	if !ok {
		return nil, fmt.Errorf("unknown action %q", req.Action)
	}
	known := map[string]bool{}
	for i, f := range action.Fields() {
		known[f.Flag] = true
		text, given := req.Args[f.Flag]
		given = given && strings.TrimSpace(text) != ""
		var v any
		switch {
		case f.Type.Kind() == reflect.Bool:
			t := strings.ToLower(strings.TrimSpace(text))
			on := given && (t == "true" || t == "yes" || t == "on" || t == "1")
			v = on != f.Invert
		case !given && f.Current:
			return nil, fmt.Errorf("--%s: give its value (the page does not read the value in force)", f.Flag)
		case !given && f.Default == "" && f.Opt:
			continue
		case !given && f.Default == "":
			return nil, fmt.Errorf("--%s is required for this action", f.Flag)
		default:
			if !given {
				text = f.Default
			}
			var err error
			if v, err = parseDraftArg(f, text); err != nil {
				return nil, err
			}
		}
		if err := system.SetArg(args, i, v); err != nil {
			return nil, err
		}
	}
	for k := range req.Args {
		if !known[k] {
			return nil, fmt.Errorf("%s takes no --%s", action.CLIName(), truncate(k, 40))
		}
	}
	if err := args.Validate(); err != nil {
		return nil, err
	}
	encoded, err := system.Encode(args)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Memo) == "" {
		return nil, errors.New("memo: say why; it is kept with the proposal")
	}
	if err := system.CheckMemo(req.Memo); err != nil {
		return nil, fmt.Errorf("memo: %v", err)
	}
	data, err := system.Governance.Pack("propose", uint8(action), encoded, req.Memo)
	if err != nil {
		return nil, err
	}
	return &Draft{To: system.GovernanceAddress.Hex(), Data: hexutil.Encode(data), Value: "0x0",
		ChainID: hexutil.EncodeUint64(chainID)}, nil
}

// parseDraftArg reads an argument's text: a list's elements separated by
// commas or newlines.
func parseDraftArg(f system.Field, text string) (any, error) {
	if f.Type.Kind() != reflect.Slice || f.ABIType == "bytes" {
		return system.ParseArgText(f, f.Type, text)
	}
	list := reflect.MakeSlice(f.Type, 0, 4)
	for _, s := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' }) {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		e, err := system.ParseArgText(f, f.Type.Elem(), s)
		if err != nil {
			return nil, err
		}
		list = reflect.Append(list, reflect.ValueOf(e))
	}
	return list.Interface(), nil
}
