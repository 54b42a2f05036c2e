package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/node"
)

// The README's SQL walkthrough against a charter dev node with --index:
// deploy examples/erc20, register it, transfer, and read the balances
// from the decoded Transfer table with charter sql.
func TestSQLWalkthroughOnDev(t *testing.T) {
	abiFile := filepath.Join("..", "..", "examples", "erc20", "Token.abi.json")
	raw, err := os.ReadFile(abiFile)
	if err != nil {
		t.Fatal(err)
	}
	var onDisk, gen any
	if json.Unmarshal(raw, &onDisk) != nil || json.Unmarshal([]byte(token.ABI), &gen) != nil || !reflect.DeepEqual(onDisk, gen) {
		t.Fatalf("%s is not the ABI of internal/bench/token (token_gen.go)", abiFile)
	}
	bin := filepath.Join("..", "..", "examples", "erc20", "Token.bin")
	d := startPrivateDevNode(t, func(c *node.Config) { c.Index = &node.IndexConfig{} })

	var dep struct {
		Contract string `json:"contract"`
		Block    uint64 `json:"block"`
	}
	decodeJSON(t, mustRun(t, "send", "--deploy", bin, "--call", "constructor(uint256)", "1000000", "--key", d.key, "--rpc", d.url, "--json"), &dep)
	if dep.Contract == "" {
		t.Fatal("send --deploy printed no contract address")
	}
	mustRun(t, "contract", "register", "--name", "coin", "--address", dep.Contract, "--abi", abiFile, "--key", d.key, "--rpc", d.url)
	bob, carol := d.accts[1].Address.Hex(), d.accts[2].Address.Hex()
	mustRun(t, "send", "--to", dep.Contract, "--call", "transfer(address,uint256)", bob, "250", "--key", d.key, "--rpc", d.url)
	var last struct {
		Block uint64 `json:"block"`
	}
	decodeJSON(t, mustRun(t, "send", "--to", dep.Contract, "--call", "transfer(address,uint256)", carol, "100", "--key", d.key, "--rpc", d.url, "--json"), &last)

	balances := `SELECT holder, SUM(delta) AS balance FROM (
		SELECT "to" AS holder, CAST(value AS INTEGER) AS delta FROM coin_transfer
		UNION ALL SELECT "from", -CAST(value AS INTEGER) FROM coin_transfer WHERE "from" <> '0x0000000000000000000000000000000000000000')
		GROUP BY holder ORDER BY balance DESC`
	var ans struct {
		Rows    [][]any `json:"rows"`
		Indexed uint64  `json:"indexed"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		decodeJSON(t, mustRun(t, "sql", balances, "--rpc", d.url, "--json"), &ans)
		if ans.Indexed >= last.Block {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the index stayed at block %d, the last transfer is in block %d", ans.Indexed, last.Block)
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := [][]any{{strings.ToLower(d.accts[0].Address.Hex()), 999650.0}, {strings.ToLower(bob), 250.0}, {strings.ToLower(carol), 100.0}}
	if !reflect.DeepEqual(ans.Rows, want) {
		t.Fatalf("balances by SQL %v, want %v", ans.Rows, want)
	}
	table := mustRun(t, "sql", "SELECT count(*) AS transfers FROM coin_transfer", "--rpc", d.url)
	if !strings.Contains(table, "TRANSFERS") || !strings.Contains(table, "\n3\n") || !strings.Contains(table, "(1 row)") {
		t.Fatalf("table output:\n%s", table)
	}
	mustFail(t, "DELETE is not a SELECT", "sql", "DELETE FROM coin_transfer", "--rpc", d.url)
	mustFail(t, "one statement", "sql", "--rpc", d.url)
}
