// Package console is the node's web console: a page of plain ES modules
// and CSS embedded in the binary (no build step, no CDN, works offline),
// served on the API listener under Path, and the few read-only endpoints
// under APIPath that the page needs and the other APIs do not answer
// (a transaction decoded by the contract registry's ABIs, the registry's
// list, the node's readiness).
//
// The page itself holds no data: it is code, the same for every caller,
// so a node serves it without a credential (a browser cannot put a bearer
// token on a navigation). Everything the page shows it reads with the
// caller's token through the node's APIs (JSON-RPC over HTTP and
// WebSocket, the REST gateway, APIPath), where the node's authentication,
// roles and rate limits apply as to any client.
package console

import (
	"embed"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// Path is where the page is served; APIPath its read-only endpoints.
const (
	Path    = "/console/"
	APIPath = "/api/console/"
)

//go:embed ui
var files embed.FS

// MaxScriptBytes bounds the page's script, all modules together: the
// issue's budget is 500 KB a page (console_test.go checks it).
const MaxScriptBytes = 500_000

// contentSecurityPolicy lets the page load only its own files and talk
// only to its own origin (HTTP and WebSocket); no inline script, no
// frames (nor being framed).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Site is what the page learns from config.json before it reads anything:
// whether the node wants a credential (then the page asks for one first,
// rather than meeting a 401).
type Site struct {
	AuthRequired bool `json:"authRequired"`
}

// Assets serves the embedded page under Path: GET and HEAD only, index.html
// for Path itself and for every path without a file extension (the
// page's own routes), config.json from site, 404 for a missing file.
func Assets(site Site) http.Handler {
	siteJSON, _ := json.Marshal(site)
	sub, err := fs.Sub(files, "ui")
	if err != nil {
		panic(err) // the embed pattern names ui
	}
	fsrv := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the console's files are read with GET", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path+"/" == Path {
			http.Redirect(w, r, Path, http.StatusMovedPermanently)
			return
		}
		rel, ok := strings.CutPrefix(r.URL.Path, Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if rel == "config.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.Write(siteJSON)
			return
		}
		if rel == "" || path.Ext(rel) == "" {
			rel = "index.html"
		}
		if _, err := fs.Stat(sub, rel); err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary only; revalidated each load
		// (no ETag on embedded files, so short-lived).
		h.Set("Cache-Control", "no-cache")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rel
		if rel == "index.html" {
			// FileServer redirects /index.html to ./; serve the file.
			f, err := sub.Open(rel)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			defer f.Close()
			st, _ := f.Stat()
			h.Set("Content-Type", "text/html; charset=utf-8")
			http.ServeContent(w, r, "index.html", st.ModTime(), f.(io.ReadSeeker))
			return
		}
		fsrv.ServeHTTP(w, r2)
	})
}
