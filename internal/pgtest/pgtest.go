// Package pgtest starts a throwaway PostgreSQL cluster for tests: initdb
// into a temporary folder, a server on 127.0.0.1 at a free port, removed
// when the test ends. It uses the PostgreSQL binaries of Debian's
// postgresql package (test.sh installs it); run as root, it runs them as
// the postgres user, since PostgreSQL refuses to run as root.
package pgtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/charter-ledger/charter/internal/freeport"
)

// Required reports whether a test that needs PostgreSQL must fail, rather
// than skip, when no PostgreSQL is installed: under CI, or with
// CHARTER_REQUIRE_POSTGRES=1.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("CHARTER_REQUIRE_POSTGRES") == "1"
}

// BinDir finds the folder of initdb and pg_ctl: $CHARTER_PG_BIN, or the
// newest /usr/lib/postgresql/N/bin.
func BinDir() (string, error) {
	if d := os.Getenv("CHARTER_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server found (install Debian's postgresql package, or set CHARTER_PG_BIN)")
}

func version(dir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return v
}

// Server is one running cluster.
type Server struct {
	URL  string // postgres://charter@127.0.0.1:PORT/charter?sslmode=disable
	Port int
	dir  string
	bin  string
	asPG bool
	once sync.Once
}

// Start starts a cluster with a database and superuser both named
// charter, and stops it when t ends. Without PostgreSQL it skips t, or
// fails it when Required.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		if Required() {
			t.Fatalf("pgtest: %v", err)
		}
		t.Skipf("pgtest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func start() (*Server, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "charter-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin, asPG: os.Geteuid() == 0}
	if s.asPG {
		pg, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres user to run the server as: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	if err := s.run("initdb", "-D", data, "-U", "charter", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freeport.Base(1)
		if err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
		if lastErr = s.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start"); lastErr == nil {
			s.Port = port
			break
		}
	}
	if lastErr != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%v\n%s", lastErr, log)
	}
	if err := s.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "charter", "charter"); err != nil {
		s.Stop()
		return nil, err
	}
	s.URL = fmt.Sprintf("postgres://charter@127.0.0.1:%d/charter?sslmode=disable", s.Port)
	return s, nil
}

// CreateDB makes another empty database on the server and returns its URL.
func (s *Server) CreateDB(name string) (string, error) {
	if err := s.run("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-U", "charter", name); err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://charter@127.0.0.1:%d/%s?sslmode=disable", s.Port, name), nil
}

// Stop stops the server and removes its files; later calls do nothing.
func (s *Server) Stop() {
	s.once.Do(func() {
		_ = s.run("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
		os.RemoveAll(s.dir)
	})
}

func (s *Server) run(name string, args ...string) error {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.asPG {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
