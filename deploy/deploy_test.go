// Package deploy holds the files that run Charter outside a developer's
// machine: a systemd unit, a container image and a compose file with
// Prometheus and Grafana. Containers cannot run where the tests run, so the
// tests check the files themselves: they parse, they name files that exist
// and metrics the node exports, the image builds the way the README does,
// systemd accepts the unit and Prometheus the alert rules.
package deploy

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the repository's root, relative to this package.
const root = ".."

// required reports a missing tool: a failure under CI (which installs it:
// test.sh), a skip elsewhere.
func required(t *testing.T, tool, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not installed: %s is not checked (Debian's package installs it; test.sh does)", tool, what)
	if os.Getenv("CI") == "true" || os.Getenv("CHARTER_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal(readFile(t, path), &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(v) == 0 {
		t.Fatalf("%s is empty", path)
	}
	return v
}

func TestYAMLAndJSONParse(t *testing.T) {
	for _, p := range []string{"deploy/compose.yaml", "deploy/prometheus.yml", "deploy/alerts_test.yml",
		"deploy/grafana/provisioning/datasources/prometheus.yml", "deploy/grafana/provisioning/dashboards/charter.yml",
		"docs/alerts.yml"} {
		readYAML(t, p)
	}
	dashboard(t)
}

// --- metrics ---

// exportedMetrics are the metric names the node's source registers: every
// "charter_..." string of the non-test Go files under internal/ (a few are
// not metrics, which only widens the set), plus the Go runtime and process
// collectors' (internal/metrics registers both).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	lit := regexp.MustCompile(`"(charter_[a-z0-9_]+)"`)
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(raw), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"charter_chain_height", "charter_finality_latency_seconds", "charter_index_lag_blocks"} {
		if !names[n] {
			t.Fatalf("the source scan found no %s: the scan is broken", n)
		}
	}
	return names
}

var metricRef = regexp.MustCompile(`\b((?:charter|process|go|node)_[a-z0-9_]+)\b`)

// checkMetrics reports the metrics expr names that nothing exports.
// node_* metrics come from node_exporter (deploy/compose.yaml); the
// process and Go collectors' names are taken as they are.
func checkMetrics(t *testing.T, where, expr string, have map[string]bool) {
	t.Helper()
	for _, m := range metricRef.FindAllStringSubmatch(expr, -1) {
		name := m[1]
		switch {
		case strings.HasPrefix(name, "charter_"):
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !have[name] && !have[base] {
				t.Errorf("%s: %s is not a metric the node exports (%s)", where, name, expr)
			}
		case strings.HasPrefix(name, "node_"):
			if !strings.HasPrefix(name, "node_filesystem_") {
				t.Errorf("%s: %s: only node_exporter's node_filesystem_* metrics are expected", where, name)
			}
		}
	}
}

type dashboardFile struct {
	Title  string `json:"title"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func dashboard(t *testing.T) dashboardFile {
	t.Helper()
	var d dashboardFile
	if err := json.Unmarshal(readFile(t, "docs/grafana-dashboard.json"), &d); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("docs/grafana-dashboard.json has no panels")
	}
	return d
}

func TestDashboardShowsWhatTheNodeExports(t *testing.T) {
	have := exportedMetrics(t)
	d := dashboard(t)
	ids := map[int]bool{}
	var all strings.Builder
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: empty query", p.Title)
			}
			checkMetrics(t, "dashboard panel "+p.Title, tg.Expr, have)
			all.WriteString(tg.Expr + "\n")
		}
	}
	// What an operator looks at first.
	for what, metric := range map[string]string{
		"height": "charter_chain_height", "finality latency": "charter_finality_latency_seconds_bucket",
		"throughput": "charter_transactions_committed_total", "pool size": "charter_txpool_transactions",
		"round changes": "charter_consensus_round_changes_total", "peers": "charter_p2p_peers",
		"index lag": "charter_index_lag_blocks",
	} {
		if !strings.Contains(all.String(), metric) {
			t.Errorf("no panel shows %s (%s)", what, metric)
		}
	}
}

// --- alerts ---

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRulesSayWhatToDo(t *testing.T) {
	have := exportedMetrics(t)
	var rf ruleFile
	if err := yaml.Unmarshal(readFile(t, "docs/alerts.yml"), &rf); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name (recording rules belong elsewhere)", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("%s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if r.For == "" {
				t.Errorf("%s: no 'for': one bad scrape would page", r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			if d := r.Annotations["description"]; !strings.Contains(d, "What to do") {
				t.Errorf("%s: the description must say what it means and what to do: %q", r.Alert, d)
			}
			checkMetrics(t, r.Alert, r.Expr, have)
		}
	}
	for _, want := range []string{"CharterNodeDown", "CharterHeightStalled", "CharterFinalityLatencyHigh", "CharterPeersLow",
		"CharterDiskFillingUp", "CharterIndexLagging"} {
		if !seen[want] {
			t.Errorf("no %s alert", want)
		}
	}
	// Every alert has a case in deploy/alerts_test.yml.
	raw := string(readFile(t, "deploy/alerts_test.yml"))
	for a := range seen {
		if !strings.Contains(raw, "alertname: "+a+"\n") {
			t.Errorf("%s has no case in deploy/alerts_test.yml", a)
		}
	}
}

// TestPromtool: Prometheus itself accepts the rules, and they fire as the
// cases of deploy/alerts_test.yml say. The cases run against a copy of the
// rules without annotations (promtool compares annotations too, and those
// are prose).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		required(t, "promtool", "the alert rules")
	}
	rules := filepath.Join(root, "docs/alerts.yml")
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules docs/alerts.yml: %v\n%s", err, out)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(readFile(t, "docs/alerts.yml"), &doc); err != nil {
		t.Fatal(err)
	}
	groups, _ := doc["groups"].([]any)
	for _, g := range groups {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			delete(r.(map[string]any), "annotations")
		}
	}
	stripped, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), stripped, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yml"), readFile(t, "deploy/alerts_test.yml"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "test", "rules", filepath.Join(dir, "alerts_test.yml")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules deploy/alerts_test.yml: %v\n%s", err, out)
	}
}

// --- systemd ---

func TestSystemdUnit(t *testing.T) {
	raw := string(readFile(t, "deploy/charter-node.service"))
	directives := map[string][]string{}
	for _, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			directives[k] = append(directives[k], v)
		}
	}
	for k, want := range map[string]string{"Restart": "on-failure", "User": "charter", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "KillSignal": "SIGTERM"} {
		if got := directives[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", k, got, want)
		}
	}
	if len(directives["LimitNOFILE"]) != 1 {
		t.Error("no LimitNOFILE")
	}
	exec0 := directives["ExecStart"]
	if len(exec0) != 1 || !strings.Contains(exec0[0], "charter node --home /var/lib/charter/node") {
		t.Fatalf("ExecStart=%v, want charter node --home /var/lib/charter/node", exec0)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		required(t, "systemd-analyze", "the systemd unit")
	}
	// verify wants ExecStart's program to exist: point it at one that does.
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no 'true' program to stand for charter")
	}
	unit := filepath.Join(t.TempDir(), "charter-node.service")
	if err := os.WriteFile(unit, []byte(strings.Replace(raw, "ExecStart=/usr/local/bin/charter", "ExecStart="+truePath, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	// systemd-analyze exits 0 on unknown keys and bad values, which it
	// ignores with a line naming the file: any such line fails.
	var complaints []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "charter-node.service") {
			complaints = append(complaints, line)
		}
	}
	if err != nil || len(complaints) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// --- image ---

// readmeBuild is the README's build command.
func readmeBuild(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`go build -o charter [^\s&;]+`).FindString(string(readFile(t, "README.md")))
	if m == "" {
		t.Fatal("README.md: no 'go build -o charter ...' command")
	}
	return m
}

func TestDockerfileBuildsLikeTheReadme(t *testing.T) {
	raw := string(readFile(t, "deploy/Dockerfile"))
	var runs, froms []string
	for _, line := range strings.Split(raw, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "RUN":
			runs = append(runs, strings.Join(f[1:], " "))
		case "FROM":
			froms = append(froms, f[1])
		}
	}
	want := readmeBuild(t)
	var builds []string
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			builds = append(builds, r)
		}
	}
	if len(builds) != 1 || builds[0] != want {
		t.Errorf("the Dockerfile builds with %q, the README with %q", builds, want)
	}
	if len(froms) < 2 {
		t.Fatalf("FROM %v: want a build stage and a runtime stage", froms)
	}
	// The build image's Go is go.mod's.
	gomod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(readFile(t, "go.mod")))
	if gomod == nil {
		t.Fatal("go.mod: no go line")
	}
	if !strings.HasPrefix(froms[0], "golang:"+gomod[1]) {
		t.Errorf("build stage FROM %s, go.mod wants Go %s", froms[0], gomod[1])
	}
	if !strings.Contains(raw, "COPY --from=build /src/charter /usr/local/bin/charter") || !strings.Contains(raw, "\nUSER charter") {
		t.Error("the runtime stage must take the built binary and run as the charter user")
	}
}

// --- compose ---

func TestComposeReferencesWhatExists(t *testing.T) {
	c := readYAML(t, "deploy/compose.yaml")
	services, _ := c["services"].(map[string]any)
	var names []string
	for name := range services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, want := range []string{"init", "node0", "node1", "node2", "node3", "prometheus", "grafana", "node-exporter"} {
		if services[want] == nil {
			t.Fatalf("compose.yaml: no service %s (has %v)", want, names)
		}
	}
	mounts := map[string]string{} // target in a container -> file in the repository
	for _, name := range names {
		svc := services[name].(map[string]any)
		if b, ok := svc["build"].(map[string]any); ok {
			ctx := filepath.Join("deploy", b["context"].(string))
			if _, err := os.Stat(filepath.Join(root, ctx, b["dockerfile"].(string))); err != nil {
				t.Errorf("%s: build: %v", name, err)
			}
		}
		vols, _ := svc["volumes"].([]any)
		for _, v := range vols {
			src, dst, _ := strings.Cut(v.(string), ":")
			dst, _, _ = strings.Cut(dst, ":")
			if !strings.HasPrefix(src, ".") {
				continue // a named volume or a host path
			}
			p := filepath.Join("deploy", src)
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s mounts %s: %v", name, src, err)
			}
			mounts[dst] = filepath.ToSlash(p)
		}
	}
	// Four organizations, one node each, from the init service's network.
	initCmd := fmt.Sprint(services["init"].(map[string]any)["command"])
	for _, want := range []string{"charter init", "--validators 4", "--orgs 4", "--out /net"} {
		if !strings.Contains(initCmd, want) {
			t.Errorf("init service: %q lacks %q", initCmd, want)
		}
	}
	for i := 0; i < 4; i++ {
		cmd := fmt.Sprint(services[fmt.Sprintf("node%d", i)].(map[string]any)["command"])
		if want := fmt.Sprintf("[node --home /net/node%d]", i); cmd != want {
			t.Errorf("node%d: command %s, want %s", i, cmd, want)
		}
	}
	if mounts["/etc/prometheus/alerts.yml"] != "docs/alerts.yml" {
		t.Errorf("Prometheus's rules are %q, want docs/alerts.yml", mounts["/etc/prometheus/alerts.yml"])
	}
	if mounts["/etc/prometheus/prometheus.yml"] != "deploy/prometheus.yml" {
		t.Errorf("Prometheus's config is %q, want deploy/prometheus.yml", mounts["/etc/prometheus/prometheus.yml"])
	}

	// Prometheus scrapes the four nodes' metrics ports and loads the rules where they are mounted.
	p := readYAML(t, "deploy/prometheus.yml")
	if rf := fmt.Sprint(p["rule_files"]); rf != "[/etc/prometheus/alerts.yml]" {
		t.Errorf("prometheus.yml rule_files %s", rf)
	}
	var targets []string
	for _, sc := range p["scrape_configs"].([]any) {
		sc := sc.(map[string]any)
		if sc["job_name"] != "charter" {
			continue
		}
		for _, st := range sc["static_configs"].([]any) {
			for _, tg := range st.(map[string]any)["targets"].([]any) {
				targets = append(targets, tg.(string))
			}
		}
	}
	// 'charter init' gives node i the metrics port 9545+i.
	if !regexp.MustCompile(`"metrics\.port", 9545,`).Match(readFile(t, "cmd/charter/init.go")) {
		t.Error("charter init's default metrics port is no longer 9545: update deploy/prometheus.yml")
	}
	if got := fmt.Sprint(targets); got != "[127.0.0.1:9545 127.0.0.1:9546 127.0.0.1:9547 127.0.0.1:9548]" {
		t.Errorf("the charter job scrapes %s, want the four nodes' metrics ports", got)
	}

	// Grafana: the dashboard is mounted where the provider looks for it, and
	// the datasource is Prometheus's address.
	dash := ""
	for dst, src := range mounts {
		if src == "docs/grafana-dashboard.json" {
			dash = dst
		}
	}
	if dash == "" {
		t.Fatal("compose.yaml does not mount docs/grafana-dashboard.json into Grafana")
	}
	prov := readYAML(t, "deploy/grafana/provisioning/dashboards/charter.yml")
	path := prov["providers"].([]any)[0].(map[string]any)["options"].(map[string]any)["path"]
	if filepath.Dir(dash) != path {
		t.Errorf("the dashboard is mounted at %s, the provider reads %v", dash, path)
	}
	if mounts["/etc/grafana/provisioning"] != "deploy/grafana/provisioning" {
		t.Errorf("Grafana's provisioning is %q", mounts["/etc/grafana/provisioning"])
	}
	ds := readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml")
	if u := ds["datasources"].([]any)[0].(map[string]any)["url"]; u != "http://127.0.0.1:9090" {
		t.Errorf("Grafana's datasource is %v, Prometheus listens on 127.0.0.1:9090", u)
	}
}
