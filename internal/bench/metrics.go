package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The node metrics the bench reads (internal/metrics).
const (
	metricRoundChanges = "charter_consensus_round_changes_total"
	metricHeight       = "charter_chain_height"
)

// Scrape bounds.
const (
	scrapeTimeout  = 2 * time.Second
	scrapeMaxBytes = 8 << 20
	maxMetricsURLs = 64
)

// NodeConsensus is what one node's metrics say about consensus during a
// run: the heights it advanced and the round changes it went through.
type NodeConsensus struct {
	URL          string  `json:"url"`
	Heights      float64 `json:"heights"`
	RoundChanges float64 `json:"round_changes"`
	PerHeight    float64 `json:"round_changes_per_height"`
	Error        string  `json:"error,omitempty"` // the last scrape error, if the node never answered
}

// Consensus summarizes the scraped nodes: the most heights any advanced,
// the most round changes any counted, and their ratio.
type Consensus struct {
	Nodes        []NodeConsensus `json:"nodes"`
	Heights      float64         `json:"heights"`
	RoundChanges float64         `json:"round_changes"`
	PerHeight    float64         `json:"round_changes_per_height"`
}

// nodeSample is one scrape of one node.
type nodeSample struct {
	rounds, height float64
	ok             bool
}

// scraper reads the round changes and height of every node of
// Config.Metrics once a second, from one goroutine; the watcher reads the
// total at each tick.
type scraper struct {
	urls   []string
	client *http.Client

	mu struct {
		sync.Mutex
		first, last []nodeSample
		errs        []string
	}
}

func newScraper(urls []string) *scraper {
	s := &scraper{urls: urls, client: &http.Client{Timeout: scrapeTimeout}}
	s.mu.first = make([]nodeSample, len(urls))
	s.mu.last = make([]nodeSample, len(urls))
	s.mu.errs = make([]string, len(urls))
	return s
}

// run scrapes every node now and then once a second until ctx ends.
func (s *scraper) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.scrapeAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *scraper) scrapeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for i, u := range s.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			smp, err := s.scrape(ctx, u)
			s.mu.Lock()
			defer s.mu.Unlock()
			if err != nil {
				s.mu.errs[i] = err.Error()
				return
			}
			if !s.mu.first[i].ok {
				s.mu.first[i] = smp
			}
			s.mu.last[i] = smp
		}()
	}
	wg.Wait()
}

// scrape reads one node's metrics page.
func (s *scraper) scrape(ctx context.Context, url string) (nodeSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nodeSample{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nodeSample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nodeSample{}, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseNodeMetrics(io.LimitReader(resp.Body, scrapeMaxBytes))
}

// parseNodeMetrics reads the round changes and the height from a
// Prometheus text page; a page without them is an error (not a Charter
// node, or the wrong URL).
func parseNodeMetrics(r io.Reader) (nodeSample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nodeSample{}, fmt.Errorf("metrics: %w", err)
	}
	var smp nodeSample
	rc, h := fams[metricRoundChanges], fams[metricHeight]
	if rc == nil || h == nil || len(rc.GetMetric()) == 0 || len(h.GetMetric()) == 0 {
		return smp, fmt.Errorf("metrics: no %s or %s (not a Charter node's /metrics?)", metricRoundChanges, metricHeight)
	}
	for _, m := range rc.GetMetric() {
		smp.rounds += m.GetCounter().GetValue()
	}
	smp.height = h.GetMetric()[0].GetGauge().GetValue()
	smp.ok = true
	return smp, nil
}

// rounds is the sum over the nodes of the round changes since each was
// first scraped.
func (s *scraper) rounds() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0.0
	for i := range s.urls {
		if s.mu.first[i].ok {
			total += s.mu.last[i].rounds - s.mu.first[i].rounds
		}
	}
	return int(total)
}

// summary is the consensus summary from the first to the last scrape.
func (s *scraper) summary() *Consensus {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &Consensus{}
	for i, u := range s.urls {
		n := NodeConsensus{URL: u}
		if f, l := s.mu.first[i], s.mu.last[i]; f.ok {
			n.Heights, n.RoundChanges = l.height-f.height, l.rounds-f.rounds
			n.PerHeight = ratio(n.RoundChanges, n.Heights)
		} else {
			n.Error = s.mu.errs[i]
		}
		c.Heights, c.RoundChanges = max(c.Heights, n.Heights), max(c.RoundChanges, n.RoundChanges)
		c.Nodes = append(c.Nodes, n)
	}
	c.PerHeight = ratio(c.RoundChanges, c.Heights)
	return c
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
