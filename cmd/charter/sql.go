package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// runSQL is `charter sql "SELECT …"`: one read-only statement over the
// node's SQL index, through POST /api/v1/sql.
func runSQL(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sql", stderr)
	nf := addNodeFlags(fs)
	jsonOut := fs.Bool("json", false, "print the answer as JSON (columns, rows, indexed height)")
	setUsage(fs, stderr, `charter sql "SELECT …" [--rpc URL] [--json]: one read-only statement over the node's SQL index (the node runs with --index or --index.postgres)`)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New(`give one statement in quotes: charter sql "SELECT number, tx_count FROM blocks ORDER BY number DESC LIMIT 5"`)
	}
	api, err := nf.rest("/api/v1/sql")
	if err != nil {
		return err
	}
	raw, err := api.do(http.MethodPost, "", map[string]string{"query": pos[0]})
	if err != nil {
		return err
	}
	if *jsonOut {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var ans struct {
		Columns []string `json:"columns"`
		Rows    [][]any  `json:"rows"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("the node's answer does not decode: %v", err)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(ans.Columns, "\t")))
	for _, row := range ans.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			if v == nil {
				cells[i] = "NULL"
			} else {
				cells[i] = fmt.Sprint(v)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	if len(ans.Rows) == 1 {
		fmt.Fprintln(stdout, "(1 row)")
		return nil
	}
	fmt.Fprintf(stdout, "(%d rows)\n", len(ans.Rows))
	return nil
}
