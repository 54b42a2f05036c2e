package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/charter-ledger/charter/internal/system"
)

// MaxUsageDays bounds the days one usage answer covers (a quarter).
const MaxUsageDays = 92

// UsageDays is what GET /api/console/usage/FROM/TO answers: per UTC day
// and organization, what the chain metered (system.State.Usage, read at
// the head), for the page's chart and CSV.
type UsageDays struct {
	From string `json:"from"` // YYYY-MM-DD
	To   string `json:"to"`
	// Orgs are the registry's organizations, and "" (accounts of no
	// organization) when it used anything in the range.
	Orgs []string   `json:"orgs"`
	Rows []UsageDay `json:"rows"`
}

// UsageDay is one organization's usage of one day; days without any use
// are left out.
type UsageDay struct {
	Date       string `json:"date"`
	Org        string `json:"org"`
	Nodes      int    `json:"nodes"` // its active nodes now
	Txs        uint64 `json:"txs"`
	Gas        uint64 `json:"gas"`
	StateBytes uint64 `json:"stateBytes"`
	// Share is the organization's share of the day's gas, in basis
	// points.
	Share uint64 `json:"gasShareBps"`
}

func parseDay(what, s string) (uint64, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Unix() < 0 {
		return 0, fail(http.StatusBadRequest, "%s: want a date YYYY-MM-DD, got %q", what, truncate(s, 40))
	}
	return uint64(t.Unix()) / 86400, nil
}

func (a *api) usage(r *http.Request) (any, error) {
	from, err := parseDay("from", r.PathValue("from"))
	if err != nil {
		return nil, err
	}
	to, err := parseDay("to", r.PathValue("to"))
	if err != nil {
		return nil, err
	}
	if to < from || to-from >= MaxUsageDays {
		return nil, fail(http.StatusBadRequest, "from %s to %s: want from <= to, at most %d days", r.PathValue("from"), r.PathValue("to"), MaxUsageDays)
	}
	head := a.cfg.Chain.CurrentHeader()
	st, err := a.cfg.Chain.StateAt(head.Root)
	if err != nil {
		return nil, fmt.Errorf("state of the head: %w", err)
	}
	s := system.Read(st)
	nodes := map[string]int{}
	for _, n := range s.Nodes() {
		if !n.Revoked {
			nodes[n.Org]++
		}
	}
	orgs := s.OrgNames()
	out := &UsageDays{From: r.PathValue("from"), To: r.PathValue("to"), Orgs: append([]string{}, orgs...), Rows: []UsageDay{}}
	all := append(orgs, "")
	none := true
	for d := from; d <= to; d++ {
		date := time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
		first := len(out.Rows)
		var total uint64
		for _, o := range all {
			u := s.Usage(o, d)
			if u.Txs == 0 && u.Gas == 0 && u.StateBytes == 0 {
				continue
			}
			if o == "" {
				none = false
			}
			n := 0
			if o != "" {
				n = nodes[o]
			}
			out.Rows = append(out.Rows, UsageDay{Date: date, Org: o, Nodes: n, Txs: u.Txs, Gas: u.Gas, StateBytes: u.StateBytes})
			total += u.Gas
		}
		for i := first; i < len(out.Rows) && total > 0; i++ {
			out.Rows[i].Share = out.Rows[i].Gas * 10000 / total
		}
	}
	if !none {
		out.Orgs = append(out.Orgs, "")
	}
	return out, nil
}
