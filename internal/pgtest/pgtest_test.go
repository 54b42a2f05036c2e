package pgtest

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStartServesQueries starts a cluster and asks it, through psql, for
// the database it made.
func TestStartServesQueries(t *testing.T) {
	s := Start(t)
	bin, _ := BinDir()
	psql := filepath.Join(bin, "psql")
	out, err := exec.Command(psql, "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "charter", "-d", "charter", "-Atc", "select current_database()").CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v: %s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "charter" {
		t.Fatalf("current_database() = %q, want charter", got)
	}
}
