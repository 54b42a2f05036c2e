package node

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/system"
)

// BackupPath is the node's backup resource on its API listener:
//
//	POST BackupPath {"dir": "/abs/folder"}  starts a backup (202, the status)
//	GET  BackupPath                         the backup under way or the last one
//
// The backup is written on the node's machine, so the resource answers
// only callers on that machine (a loopback peer address), and, when the
// API requires credentials, only the admin role of the node's own
// organization. A remote caller, whatever its roles, cannot make the node
// write files or fill its disk.
const BackupPath = "/api/v1/admin/backup"

// maxBackupRequestBytes bounds the body of POST BackupPath.
const maxBackupRequestBytes = 64 << 10

// BackupRequest is the body of POST BackupPath.
type BackupRequest struct {
	Dir string `json:"dir"`
}

func (n *Node) backupHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		what := r.Method + " " + BackupPath
		if e := auth.EntryOf(r.Context()); e != nil {
			e.What = what
		}
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || !IsLoopback(host) {
			streamsProblem(w, r, http.StatusForbidden, "forbidden", "Not permitted",
				"backups are made on the node's machine: run charter backup there (the API answers it from loopback only)")
			return
		}
		if id := auth.FromContext(r.Context()); id != nil {
			err := auth.Allow(id, what, system.RoleAdmin)
			if err == nil {
				err = auth.AllowOrg(id, what, n.cfg.Org)
			}
			if err != nil {
				streamsProblem(w, r, http.StatusForbidden, "forbidden", "Not permitted", err.Error())
				return
			}
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			writeJSON(w, http.StatusOK, n.BackupStatus())
		case http.MethodPost:
			var req BackupRequest
			body, err := io.ReadAll(io.LimitReader(r.Body, maxBackupRequestBytes+1))
			if err == nil && len(body) > maxBackupRequestBytes {
				err = errors.New("request body too large")
			}
			if err == nil {
				err = json.Unmarshal(body, &req)
			}
			if err != nil {
				streamsProblem(w, r, http.StatusBadRequest, "bad-request", "Bad request", "want {\"dir\": \"/absolute/folder\"}: "+err.Error())
				return
			}
			if err := n.StartBackup(req.Dir); err != nil {
				status := http.StatusBadRequest
				if errors.Is(err, ErrBackupRunning) {
					status = http.StatusConflict
				}
				streamsProblem(w, r, status, "backup", "Backup refused", err.Error())
				return
			}
			writeJSON(w, http.StatusAccepted, n.BackupStatus())
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			streamsProblem(w, r, http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", r.Method+" is not served here")
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
