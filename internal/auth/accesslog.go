package auth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// AccessRecord is one line of the access log: who asked what, and how it
// went. It never holds a credential: no header, no token, no query
// parameter that may carry one (see RedactQuery).
type AccessRecord struct {
	Time     time.Time // when the request arrived
	Who      string    // Identity.Name: "org/subject" or "anonymous"
	Org      string
	Kind     Kind
	Remote   string // the client's host:port
	Method   string // HTTP method
	Path     string // URL path, with the query RedactQuery keeps
	What     string // Entry.What: JSON-RPC methods or the REST route
	Result   string // Entry.Result, or what the status says (ok, unauthenticated, denied, limited, "status 500")
	Status   int    // HTTP status (101 for a WebSocket, whose record is written when it closes)
	BytesIn  int64  // request body bytes read
	BytesOut int64  // response bytes written (a WebSocket's messages are not counted)
	Duration time.Duration
	Private  bool // Entry.Private: the request read private data
}

// AccessLogConfig says where the access log goes.
type AccessLogConfig struct {
	// Path is the log file (DATA/logs/access.log); its directory is
	// created. Rotated when it reaches MaxSizeMB megabytes (default 100),
	// MaxBackups old files kept (default 10). Files are created 0600.
	Path       string
	MaxSizeMB  int
	MaxBackups int
	// Writer, when set, receives the lines instead of a file (Path is
	// then ignored); the log does not close it.
	Writer io.Writer
	// Private, when set, also receives every record of a request that read
	// private data (Entry.Private): the node's disclosure log. It is
	// called on the request's goroutine after the line is written, and
	// must not hold it up.
	Private func(AccessRecord)
}

// Default rotation of the access log.
const (
	DefaultAccessLogMB      = 100
	DefaultAccessLogBackups = 10
)

// AccessLog writes AccessRecords as JSON lines (log/slog's JSON handler),
// one per request. It is safe for concurrent use.
type AccessLog struct {
	log     *slog.Logger
	file    *lumberjack.Logger // nil with a Writer
	private func(AccessRecord)
}

// OpenAccessLog opens (creating if needed) the log cfg describes.
func OpenAccessLog(cfg AccessLogConfig) (*AccessLog, error) {
	switch {
	case cfg.MaxSizeMB < 0:
		return nil, errors.New("access log: MaxSizeMB must not be negative")
	case cfg.MaxBackups < 0:
		return nil, errors.New("access log: MaxBackups must not be negative")
	case cfg.Writer == nil && cfg.Path == "":
		return nil, errors.New("access log: no Path (DATA/logs/access.log) and no Writer")
	}
	l := &AccessLog{private: cfg.Private}
	w := cfg.Writer
	if w == nil {
		l.file = &lumberjack.Logger{Filename: cfg.Path, MaxSize: cfg.MaxSizeMB, MaxBackups: cfg.MaxBackups}
		if l.file.MaxSize == 0 {
			l.file.MaxSize = DefaultAccessLogMB
		}
		if l.file.MaxBackups == 0 {
			l.file.MaxBackups = DefaultAccessLogBackups
		}
		// Open now, so that a directory the node may not write is
		// reported at start rather than lost with the first request.
		if err := l.file.Rotate(); err != nil {
			return nil, err
		}
		w = l.file
	}
	l.log = slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.LevelKey {
				return slog.Attr{} // every line is a request
			}
			return a
		},
	}))
	return l, nil
}

// Write writes one record, and gives it to the Private sink when it read
// private data.
func (l *AccessLog) Write(rec AccessRecord) {
	if l == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("who", rec.Who),
		slog.String("org", rec.Org),
		slog.String("kind", string(rec.Kind)),
		slog.String("remote", rec.Remote),
		slog.String("method", rec.Method),
		slog.String("path", rec.Path),
		slog.String("what", rec.What),
		slog.String("result", rec.Result),
		slog.Int("status", rec.Status),
		slog.Int64("bytes_in", rec.BytesIn),
		slog.Int64("bytes_out", rec.BytesOut),
		slog.Float64("duration_ms", float64(rec.Duration.Microseconds())/1000),
	}
	if rec.Private {
		attrs = append(attrs, slog.Bool("private", true))
	}
	r := slog.NewRecord(rec.Time, slog.LevelInfo, "request", 0)
	r.AddAttrs(attrs...)
	_ = l.log.Handler().Handle(context.Background(), r)
	if rec.Private && l.private != nil {
		l.private(rec)
	}
}

// Close closes the file (not a Writer).
func (l *AccessLog) Close() error {
	if l == nil || l.file == nil {
		return nil
	}
	return l.file.Close()
}

// RedactQuery returns a URL query without the parameters that may carry a
// credential (access_token, and any whose name speaks of a token, secret,
// password, key, code or signature), as it is to be logged; a query it
// cannot read is dropped whole.
func RedactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	kept := make([]string, 0, 4)
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		name, _, _ := strings.Cut(part, "=")
		n, err := url.QueryUnescape(name)
		if err != nil {
			return ""
		}
		if sensitiveParam(n) {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}

func sensitiveParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "secret", "passw", "credential", "signature", "assertion"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	switch n {
	case "key", "apikey", "api_key", "code", "auth", "authorization", "sig":
		return true
	}
	return false
}

// logPath is the path of u as it is logged.
func logPath(u *url.URL) string {
	p := u.EscapedPath()
	if q := RedactQuery(u.RawQuery); q != "" {
		p += "?" + q
	}
	return p
}
