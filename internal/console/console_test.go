package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The page's script, every module together, stays within the issue's
// budget of 500 KB, and every module is served as JavaScript with the
// page's security headers.
func TestScriptBudgetAndHeaders(t *testing.T) {
	total := 0
	h := Assets(Site{})
	err := fs.WalkDir(files, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		b, _ := fs.ReadFile(files, p)
		total += len(b)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, Path+strings.TrimPrefix(p, "ui/"), nil))
		if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Type"), "javascript") ||
			rec.Header().Get("X-Content-Type-Options") != "nosniff" || rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d, headers %v", p, rec.Code, rec.Header())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 || total > MaxScriptBytes {
		t.Fatalf("the page's script is %d bytes, want 1 to %d", total, MaxScriptBytes)
	}
	t.Logf("script: %d bytes", total)
}
