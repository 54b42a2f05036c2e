package gateway

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// fakeSQL answers "SELECT 1" and refuses anything else, the way the
// index refuses a statement.
type fakeSQL struct{}

func (fakeSQL) Query(_ context.Context, q string, args ...any) ([]string, [][]any, error) {
	if q != "SELECT 1" {
		return nil, nil, errors.New("sql: only one read-only statement is allowed: " + strings.Fields(q)[0] + " is not a SELECT")
	}
	return []string{"1"}, [][]any{{int64(1)}}, nil
}

func (fakeSQL) Indexed() uint64 { return 7 }

func TestSQLRoute(t *testing.T) {
	h := newHarness(t, nil)
	var res sqlResult
	h.do(request{method: "POST", path: "/api/v1/sql", body: map[string]any{"query": "SELECT 1"}}).want(t, http.StatusOK).decode(t, &res)
	if !reflect.DeepEqual(res.Columns, []string{"1"}) || len(res.Rows) != 1 || res.Indexed != 7 {
		t.Fatalf("answer %+v", res)
	}
	for body, field := range map[string]string{
		`{"query":"DELETE FROM blocks"}`: "query",
		`{"query":"  "}`:                 "query",
		`{"query":"SELECT 1","x":1}`:     "",
	} {
		p := h.do(request{method: "POST", path: "/api/v1/sql", body: body}).want(t, http.StatusBadRequest).problem(t)
		if field != "" && p.Field != field {
			t.Errorf("%s: problem %+v, want field %s", body, p, field)
		}
	}
	none := newHarness(t, func(c *Config) { c.SQL = nil })
	if p := none.do(request{method: "POST", path: "/api/v1/sql", body: map[string]any{"query": "SELECT 1"}}).want(t, http.StatusNotImplemented).problem(t); !strings.Contains(p.Detail, "--index") {
		t.Fatalf("501 without saying how to get an index: %+v", p)
	}
}
