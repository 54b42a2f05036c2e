package node

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/snapshot"
	"github.com/charter-ledger/charter/internal/system"
)

// SnapshotPath is the API listener's route that streams a snapshot
// (charter snapshot export): GET SnapshotPath?height=H (no height: the
// head), admin role, one export at a time.
const SnapshotPath = "/admin/v1/snapshot"

// snapshotWriteIdle bounds how long one write of the stream may take:
// the listener's write timeout is extended write by write, so a snapshot
// of any size streams while a stalled client is dropped.
const snapshotWriteIdle = time.Minute

// snapshotHandler serves SnapshotPath.
func (n *Node) snapshotHandler() http.Handler {
	busy := make(chan struct{}, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
		// No identity: a listener without authentication (charter dev),
		// where everything is allowed.
		if id := auth.FromContext(r.Context()); id != nil {
			if err := auth.Allow(id, "snapshot export", system.RoleAdmin); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
		}
		height, explicit := n.Ledger().Head().Number.Uint64(), false
		if h := r.URL.Query().Get("height"); h != "" && h != "latest" {
			v, err := strconv.ParseUint(h, 10, 64)
			if err != nil {
				http.Error(w, fmt.Sprintf("height %q is not a block number", h), http.StatusBadRequest)
				return
			}
			if v > height {
				http.Error(w, fmt.Sprintf("height %d is above the head %d", v, height), http.StatusBadRequest)
				return
			}
			height, explicit = v, true
		}
		select {
		case busy <- struct{}{}:
			defer func() { <-busy }()
		default:
			http.Error(w, "another snapshot export is running; retry when it ends", http.StatusTooManyRequests)
			return
		}
		// The head's state is pinned for as long as the export runs; an
		// older height is read live, inside the kept window.
		var src snapshot.Source = n.Ledger()
		if !explicit {
			view, err := n.Ledger().ViewHead()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer view.Release()
			src, height = view, view.Height()
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		sw := &deadlineWriter{w: w, rc: http.NewResponseController(w)}
		handovers, err := snapshot.LoadHandovers(n.cfg.DataDir)
		if err != nil {
			n.log.Warn("Snapshot export without the validator set handovers", "err", err)
		}
		_, err = snapshot.Export(sw, src, height, snapshot.ExportOptions{
			Context:   r.Context(),
			Attest:    n.attest,
			Handovers: handovers,
		})
		if err != nil {
			n.log.Warn("Snapshot export failed", "height", height, "err", err)
			if !sw.wrote {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
			// Otherwise the stream ends without its trailer: the client
			// refuses it.
			return
		}
		n.log.Info("Snapshot exported", "height", height)
	})
}

// attest signs a snapshot with the node key.
func (n *Node) attest(d common.Hash) ([]byte, error) { return crypto.Sign(d[:], n.cfg.NodeKey) }

type deadlineWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	wrote bool
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.rc.SetWriteDeadline(time.Now().Add(snapshotWriteIdle))
	d.wrote = true
	return d.w.Write(p)
}
