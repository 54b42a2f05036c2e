package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/sinks/kafkasink"
	"github.com/charter-ledger/charter/internal/sinks/natssink"
	"github.com/charter-ledger/charter/internal/streams"
	"github.com/charter-ledger/charter/internal/system"
)

// StreamsPath is where the event streams' REST API is served.
const StreamsPath = "/api/v1/streams"

var registerSinks sync.Once

// registerSinkKinds makes the sink kinds a node offers available to
// stream definitions: "webhook" (built into the streams), "nats" and
// "kafka". Once per process, before the first Manager loads its streams.
func registerSinkKinds() {
	registerSinks.Do(func() {
		streams.RegisterSink(natssink.Kind, natssink.Factory)
		streams.RegisterSink(kafkasink.Kind, kafkasink.Factory)
	})
}

// openStreams loads the event streams kept in DATA/streams; they run
// from Start. Every node has them: a node without streams costs nothing.
// The figures (lag, deliveries, failures, dead letters) go to /metrics.
func (n *Node) openStreams() error {
	registerSinkKinds()
	m, err := streams.NewManager(streams.Config{
		Dir:       filepath.Join(n.cfg.DataDir, "streams"),
		Source:    n.ledger,
		Heads:     &n.heads,
		Contracts: n.contracts,
		ChainID:   n.cfg.Spec.ChainID(),
		Log:       n.log.With("part", "streams"),
	})
	if err != nil {
		return fmt.Errorf("event streams: %w (a stream's file under %s that cannot be read can be moved away; the node then starts without that stream)",
			err, filepath.Join(n.cfg.DataDir, "streams"))
	}
	if err := n.ins.reg.Register(m); err != nil {
		return fmt.Errorf("event streams: metrics: %w", err)
	}
	n.streams = m
	return nil
}

// Streams is the node's event streams.
func (n *Node) Streams() *streams.Manager { return n.streams }

// streamsHandler serves the event streams' REST API (StreamsPath and
// below) behind the node's access check: reading streams needs the read
// role, changing them (create, delete, pause, resume, replay, dead-letter
// replay) the admin role; with credentials, both only for the node's own
// organization, whose integrations the streams are. Without the access
// middleware (charter dev) everything is allowed, as on the rest of the
// API.
func (n *Node) streamsHandler() http.Handler {
	h := n.streams.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		what := r.Method + " " + streamsRoute(r.URL.Path)
		if e := auth.EntryOf(r.Context()); e != nil {
			e.What = what
		}
		if id := auth.FromContext(r.Context()); id != nil {
			need := system.RoleAdmin
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				need = system.RoleRead
			}
			err := auth.Allow(id, what, need)
			if err == nil {
				err = auth.AllowOrg(id, what, n.cfg.Org)
			}
			if err != nil {
				streamsProblem(w, r, http.StatusForbidden, "forbidden", "Not permitted", err.Error())
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// streamsRoute names the route of path for the access log, without the
// stream's name: /api/v1/streams/{name}/dlq.
func streamsRoute(path string) string {
	rest, ok := strings.CutPrefix(path, StreamsPath+"/")
	if !ok || rest == "" {
		return StreamsPath
	}
	parts := strings.Split(rest, "/")
	if len(parts) > 3 {
		parts = parts[:3]
	}
	parts[0] = "{name}"
	return StreamsPath + "/" + strings.Join(parts, "/")
}

// streamsProblem answers a problem document shaped as the streams'
// handler answers its own.
func streamsProblem(w http.ResponseWriter, r *http.Request, status int, kind, title, detail string) {
	w.Header().Set("Content-Type", streams.ProblemContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(streams.Problem{Type: "urn:charter:problem:" + kind, Title: title, Status: status,
		Detail: detail, Instance: r.URL.Path})
}
