package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
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
	a, err := nf.access()
	if err != nil {
		return err
	}
	u, err := url.Parse(*nf.rpc)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--rpc %q is not a URL", *nf.rpc)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	u.Path, u.RawQuery = "/api/v1/sql", ""
	body, _ := json.Marshal(map[string]string{"query": pos[0]})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return a.runError(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Detail string `json:"detail"`
		}
		if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
			return fmt.Errorf("the node refused the query (%d): %s", resp.StatusCode, p.Detail)
		}
		return fmt.Errorf("the node answered %s: %s", resp.Status, strings.TrimSpace(string(raw)))
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
