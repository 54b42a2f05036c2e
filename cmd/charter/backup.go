package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/charter-ledger/charter/internal/node"
)

// runBackup is `charter backup --to DIR`: the running node writes a
// backup of itself into DIR on its machine (POST /api/v1/admin/backup),
// and the command waits until it is whole.
func runBackup(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", stderr)
	to := fs.String("to", "", "the folder to write the backup into, on the node's machine (missing or empty; one folder per backup)")
	nf := addNodeFlags(fs)
	timeout := fs.Duration("timeout", 24*time.Hour, "give up waiting for the backup after this long (it goes on in the node)")
	setUsage(fs, stderr, "charter backup --to DIR [--rpc URL] [--token-file FILE]: back up the running node (ledger, private state, keys, config) into DIR on its machine")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("--to is required: the folder to write the backup into")
	}
	dir, err := filepath.Abs(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	api, err := nf.rest(node.BackupPath)
	if err != nil {
		return err
	}
	api.hints = map[int]string{http.StatusForbidden: "backups need the admin role of the node's organization, from the node's machine (--rpc on loopback)"}
	api.absent = "does not serve backups"
	if _, err := api.do(http.MethodPost, "", node.BackupRequest{Dir: dir}); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		raw, err := api.do(http.MethodGet, "", nil)
		if err != nil {
			return err
		}
		var st node.BackupStatus
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("the node's answer does not decode: %v", err)
		}
		if st.Dir != dir {
			return fmt.Errorf("another backup (into %s) was started meanwhile; look at %s yourself", st.Dir, dir)
		}
		switch st.State {
		case "done":
			m := st.Manifest
			var bytes int64
			for _, f := range m.Files {
				bytes += f.Size
			}
			fmt.Fprintf(stdout, "Backup of node %s %s at height %d (block %s, state root %s): %d files, %.1f MiB in %s\n",
				nameOf(m), m.Node.Hex(), m.Height, m.HeadHash.Hex(), m.StateRoot.Hex(), len(m.Files), float64(bytes)/(1<<20), dir)
			return nil
		case "failed":
			return fmt.Errorf("the backup failed: %s", st.Error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the backup into %s has not finished after %s; it goes on in the node: its manifest.json appears when it is whole", dir, *timeout)
		}
		time.Sleep(wait)
	}
}

func nameOf(m *node.BackupManifest) string {
	switch {
	case m.Name != "" && m.Org != "":
		return m.Name + " (" + m.Org + ")"
	case m.Name != "":
		return m.Name
	}
	return "(charter dev)"
}

// runRestore is `charter restore --from DIR --home HOME`: the stopped
// node's home becomes the backup's node at the backup's height.
func runRestore(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", stderr)
	from := fs.String("from", "", "the backup folder (written by charter backup)")
	home := fs.String("home", "", "the node's home folder to restore into: the node's own home (stopped), or a missing or empty folder")
	pwFile := fs.String("password-file", "", "password of the home's encrypted node key, to compare node ids (else the node names are compared)")
	verifyOnly := fs.Bool("verify", false, "only check the backup's checksums; change nothing")
	setUsage(fs, stderr, "charter restore --from DIR --home HOME: restore a stopped node's home from a backup (charter backup)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from == "" {
		return errors.New("--from is required: the backup folder written by charter backup")
	}
	if *verifyOnly {
		m, err := node.VerifyBackup(*from)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Backup %s is whole: node %s %s, chain %d, height %d, %d files\n", *from, nameOf(m), m.Node.Hex(), m.ChainID, m.Height, len(m.Files))
		return nil
	}
	if *home == "" {
		return errors.New("--home is required: the node's home folder (the node stopped), or a new folder")
	}
	pw, err := readPassword("password-file", *pwFile)
	if err != nil {
		return err
	}
	m, err := node.Restore(*from, *home, node.RestoreOptions{Password: pw})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Restored %s: node %s %s, chain %d, height %d (block %s, state root %s)\n",
		*home, nameOf(m), m.Node.Hex(), m.ChainID, m.Height, m.HeadHash.Hex(), m.StateRoot.Hex())
	fmt.Fprintf(stdout, "Start it with: charter node --home %s  (it catches up from its peers)\n", *home)
	if m.Engine == "raft" {
		fmt.Fprintln(stdout, "raft: the node's raft log is the backup's; start it only while the other validators have a leader, and restore one validator at a time")
	}
	return nil
}
