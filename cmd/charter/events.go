package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const eventsUsage = `Usage: charter events SUBCOMMAND [arguments] [flags]

Event streams: the logs of the node's final blocks delivered to a webhook,
a NATS JetStream subject or a Kafka topic, at least once and in order, each
stream from a cursor the node keeps (/api/v1/streams). Reading streams needs
the read role; changing them the admin role of the node's organization.

  charter events list [--rpc URL] [--json]
        every stream with its cursor, lag and figures
  charter events create NAME --webhook URL --secret-file FILE [--timeout-ms N] [filters] [--rpc URL] [--json]
  charter events create NAME --sink nats|kafka|webhook --config FILE [filters] [--rpc URL] [--json]
  charter events create --file DEFINITION.json [--rpc URL] [--json]
        add a stream (also: charter events add); filters:
        [--contract NAME]... [--address 0x…]... [--event NAME|SIGNATURE|0xTOPIC]...
        [--from-block N] [--max-attempts N]
  charter events show NAME [--rpc URL] [--json]
        one stream: definition (secrets redacted), cursor and figures
  charter events delete NAME [--rpc URL]
        stop a stream and remove its cursor and dead-letter queue
  charter events pause NAME | resume NAME [--rpc URL]
  charter events replay NAME --from-block N [--rpc URL]
        move the cursor: events from block N are delivered again, same IDs
  charter events dlq NAME [--replay] [--rpc URL] [--json]
        the events the sink refused too often; --replay offers them again

The webhook's POSTs carry X-Charter-Signature: t=<unix>,v1=<hex HMAC-SHA256
of "<t>.<body>" keyed by the secret>. See docs/streams.md.
`

func runEvents(args []string, stdout, stderr io.Writer) error {
	return runSubcommand(eventsUsage, args, stdout, stderr,
		subcommand{"list", eventsList}, subcommand{"create", eventsCreate}, subcommand{"add", eventsCreate},
		subcommand{"show", eventsShow}, subcommand{"delete", eventsDelete},
		subcommand{"pause", eventsPause}, subcommand{"resume", eventsResume},
		subcommand{"replay", eventsReplay}, subcommand{"dlq", eventsDLQ})
}

// streamNameRE is the node's rule for stream names, checked here to say
// so before anything is sent.
var streamNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkStreamName(name string) error {
	if !streamNameRE.MatchString(name) {
		return fmt.Errorf("stream name %q: want 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit", name)
	}
	return nil
}

// maxEventsFile bounds a file of settings or of a definition, as the
// node bounds a request body.
const maxEventsFile = 1 << 20

// streamsAPI is the node's /api/v1/streams reached with the access flags.
func (nf *nodeFlags) streams() (*restAPI, error) {
	api, err := nf.rest("/api/v1/streams")
	if err != nil {
		return nil, err
	}
	api.hints = map[int]string{
		http.StatusNotFound: "'charter events list' shows the streams",
		http.StatusConflict: "choose another name or delete it first",
	}
	api.absent = "serves no event streams"
	return api, nil
}

// streamView is what the node answers for a stream.
type streamView struct {
	Name string `json:"name"`
	Sink struct {
		Kind   string          `json:"kind"`
		Config json.RawMessage `json:"config"`
	} `json:"sink"`
	Filter struct {
		Addresses []string   `json:"addresses"`
		Contracts []string   `json:"contracts"`
		Events    []string   `json:"events"`
		Topics    [][]string `json:"topics"`
	} `json:"filter"`
	StartHeight uint64 `json:"startHeight"`
	MaxAttempts int    `json:"maxAttempts"`
	Cursor      struct {
		Block    uint64 `json:"block"`
		LogIndex uint   `json:"logIndex"`
	} `json:"cursor"`
	Paused bool   `json:"paused"`
	Error  string `json:"error"`
	Stats  struct {
		Lag        uint64 `json:"lagBlocks"`
		Delivered  uint64 `json:"delivered"`
		Failures   uint64 `json:"failures"`
		DLQEvents  int    `json:"dlqEvents"`
		DLQDropped uint64 `json:"dlqDropped"`
	} `json:"stats"`
}

func (v *streamView) state() string {
	switch {
	case v.Error != "":
		return "broken"
	case v.Paused:
		return "paused"
	}
	return "running"
}

// target is where a stream's sink sends: the webhook's URL, the NATS
// subject, the Kafka topic.
func (v *streamView) target() string {
	var c map[string]any
	_ = json.Unmarshal(v.Sink.Config, &c)
	for _, k := range []string{"url", "subject", "topic"} {
		if s, ok := c[k].(string); ok && s != "" && !(k == "url" && v.Sink.Kind == "nats") {
			return s
		}
	}
	return "-"
}

func (v *streamView) cursor() string {
	if v.Cursor.LogIndex == 0 {
		return strconv.FormatUint(v.Cursor.Block, 10)
	}
	return fmt.Sprintf("%d/%d", v.Cursor.Block, v.Cursor.LogIndex)
}

// nameArg parses flags around one positional NAME.
func nameArg(fs *flag.FlagSet, args []string, syntax string) (string, error) {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if err := wantArgs(pos, 1, syntax); err != nil {
		return "", err
	}
	return pos[0], checkStreamName(pos[0])
}

func eventsList(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter events list [--rpc URL] [--json]"
	fs := newFlagSet("events list", stderr)
	nf := addNodeFlags(fs)
	jsonOut := fs.Bool("json", false, "print the node's answer as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, syntax); err != nil {
		return err
	}
	api, err := nf.streams()
	if err != nil {
		return err
	}
	raw, err := api.do(http.MethodGet, "", nil)
	if err != nil {
		return err
	}
	if *jsonOut {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var ans struct {
		Streams []streamView `json:"streams"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("the node's answer does not decode: %v", err)
	}
	if len(ans.Streams) == 0 {
		fmt.Fprintln(stdout, "no event streams; add one with 'charter events create'")
		return nil
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "NAME\tSINK\tTARGET\tCURSOR\tLAG\tDELIVERED\tFAILURES\tDLQ\tSTATE")
	for _, v := range ans.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", v.Name, v.Sink.Kind, shorten(v.target(), 48), v.cursor(),
			v.Stats.Lag, v.Stats.Delivered, v.Stats.Failures, v.Stats.DLQEvents, v.state())
	}
	return tw.Flush()
}

func eventsShow(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter events show NAME [--rpc URL] [--json]"
	fs := newFlagSet("events show", stderr)
	nf := addNodeFlags(fs)
	jsonOut := fs.Bool("json", false, "print the node's answer as JSON")
	setUsage(fs, stderr, syntax)
	name, err := nameArg(fs, args, syntax)
	if err != nil {
		return err
	}
	api, err := nf.streams()
	if err != nil {
		return err
	}
	raw, err := api.do(http.MethodGet, "/"+url.PathEscape(name), nil)
	if err != nil {
		return err
	}
	if *jsonOut {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var v streamView
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("the node's answer does not decode: %v", err)
	}
	printStream(stdout, &v)
	return nil
}

func printStream(w io.Writer, v *streamView) {
	tw := newTable(w)
	fmt.Fprintf(tw, "Stream\t%s (%s)\n", v.Name, v.state())
	fmt.Fprintf(tw, "Sink\t%s %s\n", v.Sink.Kind, string(v.Sink.Config))
	filter := []string{}
	if len(v.Filter.Contracts) > 0 {
		filter = append(filter, "contracts "+strings.Join(v.Filter.Contracts, ","))
	}
	if len(v.Filter.Addresses) > 0 {
		filter = append(filter, "addresses "+strings.Join(v.Filter.Addresses, ","))
	}
	if len(v.Filter.Events) > 0 {
		filter = append(filter, "events "+strings.Join(v.Filter.Events, ","))
	}
	if len(v.Filter.Topics) > 0 {
		filter = append(filter, fmt.Sprintf("topics %v", v.Filter.Topics))
	}
	if len(filter) == 0 {
		filter = append(filter, "every log")
	}
	fmt.Fprintf(tw, "Filter\t%s\n", strings.Join(filter, "; "))
	attempts := v.MaxAttempts
	if attempts == 0 {
		attempts = 8
	}
	fmt.Fprintf(tw, "From block\t%d\n", v.StartHeight)
	fmt.Fprintf(tw, "Cursor\tblock %d, log %d\n", v.Cursor.Block, v.Cursor.LogIndex)
	fmt.Fprintf(tw, "Lag\t%d blocks\n", v.Stats.Lag)
	fmt.Fprintf(tw, "Delivered\t%d events (since the node started)\n", v.Stats.Delivered)
	fmt.Fprintf(tw, "Failures\t%d refused deliveries; %d attempts before the dead-letter queue\n", v.Stats.Failures, attempts)
	fmt.Fprintf(tw, "Dead letters\t%d events (%d dropped from a full queue)\n", v.Stats.DLQEvents, v.Stats.DLQDropped)
	if v.Error != "" {
		fmt.Fprintf(tw, "Error\t%s\n", v.Error)
	}
	tw.Flush()
}

func eventsCreate(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter events create NAME (--webhook URL --secret-file FILE | --sink KIND --config FILE | --file DEFINITION.json) " +
		"[--contract NAME]... [--address 0x…]... [--event E]... [--from-block N] [--max-attempts N] [--rpc URL] [--json]"
	fs := newFlagSet("events create", stderr)
	nf := addNodeFlags(fs)
	webhook := fs.String("webhook", "", "the webhook's URL (https://, or http:// to a loopback address)")
	secretFile := fs.String("secret-file", "", "file holding the webhook's signing secret (16 to 256 bytes; surrounding whitespace is dropped)")
	timeoutMs := fs.Int("timeout-ms", 0, "bound of one webhook POST in milliseconds (default 10000)")
	kind := fs.String("sink", "", "sink kind: webhook, nats or kafka, with --config")
	configFile := fs.String("config", "", "file holding the sink's settings as a JSON object (docs/streams.md)")
	defFile := fs.String("file", "", "file holding a whole stream definition as JSON (name, sink, filter, startHeight, maxAttempts)")
	var contracts, addresses, events listFlag
	fs.Var(&contracts, "contract", "deliver only logs of this registered contract (any version); repeatable or comma separated")
	fs.Var(&addresses, "address", "deliver only logs emitted by this address; repeatable or comma separated")
	fs.Var(&events, "event", "deliver only this event: a name (Transfer), a signature (Transfer(address,address,uint256)) or a 0x topic; repeatable")
	fromBlock := fs.Uint64("from-block", 0, "the first block read (default 0: from genesis)")
	maxAttempts := fs.Int("max-attempts", 0, "deliveries of a batch before its events go to the dead-letter queue (default 8, at most 100)")
	jsonOut := fs.Bool("json", false, "print the created stream as JSON")
	setUsage(fs, stderr, syntax)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("unexpected argument %q; usage: %s", pos[1], syntax)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	def := map[string]any{}
	if *defFile != "" {
		for _, f := range []string{"webhook", "secret-file", "timeout-ms", "sink", "config", "contract", "address", "event", "from-block", "max-attempts"} {
			if set[f] {
				return fmt.Errorf("--file holds the whole definition; drop --%s (or put it in the file)", f)
			}
		}
		raw, err := readEventsFile("--file", *defFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &def); err != nil {
			return fmt.Errorf("--file %s: not a JSON object: %v", *defFile, err)
		}
		if len(pos) == 1 {
			def["name"] = pos[0]
		}
		name, _ := def["name"].(string)
		if err := checkStreamName(name); err != nil {
			return fmt.Errorf("--file %s: %w", *defFile, err)
		}
	} else {
		if len(pos) == 0 {
			return fmt.Errorf("missing the stream's name; usage: %s", syntax)
		}
		if err := checkStreamName(pos[0]); err != nil {
			return err
		}
		sink, err := sinkArg(*webhook, *secretFile, *timeoutMs, set["timeout-ms"], *kind, *configFile)
		if err != nil {
			return err
		}
		filter := map[string]any{}
		for _, a := range addresses {
			if _, err := parseAddr("--address", a); err != nil {
				return err
			}
		}
		if len(addresses) > 0 {
			filter["addresses"] = []string(addresses)
		}
		if len(contracts) > 0 {
			filter["contracts"] = []string(contracts)
		}
		if len(events) > 0 {
			filter["events"] = []string(events)
		}
		if *maxAttempts < 0 || *maxAttempts > 100 {
			return fmt.Errorf("--max-attempts %d: want 1 to 100 (or 0 for the default 8)", *maxAttempts)
		}
		def = map[string]any{"name": pos[0], "sink": sink, "filter": filter, "startHeight": *fromBlock}
		if *maxAttempts > 0 {
			def["maxAttempts"] = *maxAttempts
		}
	}
	api, err := nf.streams()
	if err != nil {
		return err
	}
	raw, err := api.do(http.MethodPost, "", def)
	if err != nil {
		return err
	}
	if *jsonOut {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var v streamView
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("the node's answer does not decode: %v", err)
	}
	fmt.Fprintf(stdout, "stream %s created: %s to %s, from block %d\n", v.Name, v.Sink.Kind, v.target(), v.StartHeight)
	return nil
}

// sinkArg builds the sink member of a definition from --webhook and
// --secret-file, or --sink and --config.
func sinkArg(webhook, secretFile string, timeoutMs int, timeoutSet bool, kind, configFile string) (map[string]any, error) {
	switch {
	case webhook != "" && (kind != "" || configFile != ""):
		return nil, errors.New("give either --webhook URL --secret-file FILE, or --sink KIND --config FILE, not both")
	case webhook != "":
		if secretFile == "" {
			return nil, errors.New("--webhook needs --secret-file FILE: the secret the node signs every POST with (16 to 256 bytes)")
		}
		raw, err := readEventsFile("--secret-file", secretFile)
		if err != nil {
			return nil, err
		}
		secret := strings.TrimSpace(string(raw))
		if n := len(secret); n < 16 || n > 256 {
			return nil, fmt.Errorf("--secret-file %s: the secret is %d bytes, want 16 to 256", secretFile, n)
		}
		if timeoutMs < 0 || timeoutMs > 300_000 {
			return nil, fmt.Errorf("--timeout-ms %d: want 1 to 300000 (or 0 for the default 10000)", timeoutMs)
		}
		cfg := map[string]any{"url": webhook, "secret": secret}
		if timeoutMs > 0 {
			cfg["timeoutMs"] = timeoutMs
		}
		return map[string]any{"kind": "webhook", "config": cfg}, nil
	case secretFile != "" || timeoutSet:
		return nil, errors.New("--secret-file and --timeout-ms go with --webhook URL; with --sink put the settings in --config FILE")
	case kind == "" && configFile == "":
		return nil, errors.New("say where the events go: --webhook URL --secret-file FILE, or --sink nats|kafka --config FILE")
	case kind == "":
		return nil, errors.New("--config needs --sink KIND: webhook, nats or kafka")
	case configFile == "":
		return nil, fmt.Errorf("--sink %s needs --config FILE: the sink's settings as a JSON object (docs/streams.md)", kind)
	}
	raw, err := readEventsFile("--config", configFile)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("--config %s: not a JSON object: %v", configFile, err)
	}
	return map[string]any{"kind": kind, "config": json.RawMessage(raw)}, nil
}

func readEventsFile(flagName, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxEventsFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	if len(raw) > maxEventsFile {
		return nil, fmt.Errorf("%s %s: over %d bytes", flagName, path, maxEventsFile)
	}
	return raw, nil
}

// eventsAction is a subcommand that posts or deletes one stream's
// resource and prints done.
func eventsAction(sub, method, suffix, done string) func([]string, io.Writer, io.Writer) error {
	return func(args []string, stdout, stderr io.Writer) error {
		syntax := "charter events " + sub + " NAME [--rpc URL]"
		fs := newFlagSet("events "+sub, stderr)
		nf := addNodeFlags(fs)
		setUsage(fs, stderr, syntax)
		name, err := nameArg(fs, args, syntax)
		if err != nil {
			return err
		}
		api, err := nf.streams()
		if err != nil {
			return err
		}
		if _, err := api.do(method, "/"+url.PathEscape(name)+suffix, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "stream %s %s\n", name, done)
		return nil
	}
}

var (
	eventsDelete = eventsAction("delete", http.MethodDelete, "", "deleted")
	eventsPause  = eventsAction("pause", http.MethodPost, "/pause", "paused")
	eventsResume = eventsAction("resume", http.MethodPost, "/resume", "resumed from its cursor")
)

func eventsReplay(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter events replay NAME --from-block N [--rpc URL]"
	fs := newFlagSet("events replay", stderr)
	nf := addNodeFlags(fs)
	from := fs.String("from-block", "", "the block to deliver again from (its first log)")
	setUsage(fs, stderr, syntax)
	name, err := nameArg(fs, args, syntax)
	if err != nil {
		return err
	}
	if *from == "" {
		return fmt.Errorf("--from-block N is required: the block whose events are delivered again first; usage: %s", syntax)
	}
	height, err := strconv.ParseUint(*from, 10, 64)
	if err != nil {
		return fmt.Errorf("--from-block %q: want a block height", *from)
	}
	api, err := nf.streams()
	if err != nil {
		return err
	}
	if _, err := api.do(http.MethodPost, "/"+url.PathEscape(name)+"/replay", map[string]uint64{"fromBlock": height}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "stream %s delivers again from block %d (same event IDs)\n", name, height)
	return nil
}

func eventsDLQ(args []string, stdout, stderr io.Writer) error {
	const syntax = "charter events dlq NAME [--replay] [--rpc URL] [--json]"
	fs := newFlagSet("events dlq", stderr)
	nf := addNodeFlags(fs)
	replay := fs.Bool("replay", false, "offer the queued events to the sink again; those it accepts leave the queue")
	jsonOut := fs.Bool("json", false, "print the node's answer as JSON")
	setUsage(fs, stderr, syntax)
	name, err := nameArg(fs, args, syntax)
	if err != nil {
		return err
	}
	api, err := nf.streams()
	if err != nil {
		return err
	}
	path := "/" + url.PathEscape(name) + "/dlq"
	if *replay {
		raw, err := api.do(http.MethodPost, path+"/replay", nil)
		if err != nil {
			return err
		}
		if *jsonOut {
			_, err := stdout.Write(append(raw, '\n'))
			return err
		}
		var ans struct {
			Delivered int `json:"delivered"`
		}
		if err := json.Unmarshal(raw, &ans); err != nil {
			return fmt.Errorf("the node's answer does not decode: %v", err)
		}
		fmt.Fprintf(stdout, "%d dead-letter events of stream %s delivered\n", ans.Delivered, name)
		return nil
	}
	raw, err := api.do(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if *jsonOut {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var ans struct {
		Events []struct {
			Event struct {
				ID      string `json:"id"`
				Block   uint64 `json:"blockNumber"`
				Address string `json:"address"`
				Event   string `json:"event"`
			} `json:"event"`
			Error    string    `json:"error"`
			Attempts int       `json:"attempts"`
			FailedAt time.Time `json:"failedAt"`
		} `json:"events"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return fmt.Errorf("the node's answer does not decode: %v", err)
	}
	if len(ans.Events) == 0 {
		fmt.Fprintf(stdout, "the dead-letter queue of stream %s is empty\n", name)
		return nil
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, "ID\tBLOCK\tADDRESS\tEVENT\tATTEMPTS\tFAILED AT\tERROR")
	for _, e := range ans.Events {
		ev := e.Event.Event
		if ev == "" {
			ev = "-"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\n", e.Event.ID, e.Event.Block, e.Event.Address, ev, e.Attempts,
			e.FailedAt.UTC().Format(time.RFC3339), shorten(e.Error, 80))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "(%d events; 'charter events dlq %s --replay' offers them again)\n", len(ans.Events), name)
	return nil
}
