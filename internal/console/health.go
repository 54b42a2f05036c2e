package console

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// MaxPeers bounds the peers the health answer lists.
const MaxPeers = 256

// Peer is a connected peer as the console lists it: who it is (from the
// certificate it proved on the link), where, and what it last reported
// of its own readiness over the link.
type Peer struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Org      string    `json:"org"`
	Addr     string    `json:"addr"`
	Outbound bool      `json:"outbound"`
	Since    time.Time `json:"since"`
	// CertExpires is when the certificate the peer proved expires.
	CertExpires *time.Time `json:"certExpires,omitempty"`
	// Status is the peer's last report of itself; nil: none yet (a node
	// of an older version, or one just connected).
	Status *PeerStatus `json:"status,omitempty"`
}

// PeerStatus is what a node reports of itself to its peers: its
// readiness as its /readyz answers, and its head.
type PeerStatus struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
	Head   uint64 `json:"head"`
	// Age is how long ago the report arrived, in seconds.
	Age float64 `json:"ageSeconds"`
}

// HistorySize and HistoryInterval: the node samples its counters every
// HistoryInterval into a ring of HistorySize (one hour), so that the
// page's charts start with the last hour, not with the page's opening.
const (
	HistorySize     = 360
	HistoryInterval = 10 * time.Second
)

// History is a bounded ring of counter readings, oldest first.
// Goroutine-safe.
type History struct {
	mu struct {
		sync.Mutex
		ring []Counters
		next int // where the next reading goes once the ring is full
	}
	size int
}

// NewHistory returns a ring of at most size readings (HistorySize if
// size <= 0).
func NewHistory(size int) *History {
	if size <= 0 {
		size = HistorySize
	}
	return &History{size: size}
}

// Add appends a reading, dropping the oldest when the ring is full.
func (h *History) Add(c Counters) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.mu.ring) < h.size {
		h.mu.ring = append(h.mu.ring, c)
		return
	}
	h.mu.ring[h.mu.next] = c
	h.mu.next = (h.mu.next + 1) % h.size
}

// All returns a copy of the readings, oldest first.
func (h *History) All() []Counters {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Counters, 0, len(h.mu.ring))
	out = append(out, h.mu.ring[h.mu.next:]...)
	return append(out, h.mu.ring[:h.mu.next]...)
}

func (a *api) history(*http.Request) (any, error) {
	if a.cfg.History == nil {
		return []Counters{}, nil
	}
	return a.cfg.History.All(), nil
}

// ValidatorWindow is how many of the newest blocks GET
// /api/console/validators reads.
const ValidatorWindow = 64

// Activity is what GET /api/console/validators answers: each validator's
// part in the newest blocks.
type Activity struct {
	Engine string `json:"engine"`
	// From and To are the blocks read (none at the genesis: From > To).
	From       uint64          `json:"from"`
	To         uint64          `json:"to"`
	Validators []ValidatorStat `json:"validators"`
	// Certificates tells whether the blocks carry commit certificates
	// (bft): then signing and missed blocks and rounds are known.
	Certificates bool   `json:"certificates"`
	Note         string `json:"note,omitempty"`
}

// ValidatorStat is one validator's part in the blocks From to To.
type ValidatorStat struct {
	ID string `json:"id"`
	// Current: in the validator set of the newest block read.
	Current bool `json:"current"`
	// LastProposed and LastSigned are the newest blocks it proposed and
	// whose commit certificate carries its signature (nil: none read).
	LastProposed *uint64 `json:"lastProposed"`
	LastSigned   *uint64 `json:"lastSigned"`
	Proposed     int     `json:"proposed"`
	Signed       int     `json:"signed"`
	// MissedBlocks counts the blocks, while it was a validator, whose
	// certificate lacks its signature (a certificate holds a quorum, so a
	// slow validator misses some); MissedRounds the rounds it was to
	// propose that passed without a decision.
	MissedBlocks int `json:"missedBlocks"`
	MissedRounds int `json:"missedRounds"`
}

func (a *api) validators(*http.Request) (any, error) {
	head := a.cfg.Chain.CurrentHeader().Number.Uint64()
	out := &Activity{Engine: a.cfg.Node.Consensus, To: head, Validators: []ValidatorStat{}}
	out.From = 1
	if head >= ValidatorWindow {
		out.From = head - ValidatorWindow + 1
	}
	byID := map[string]*ValidatorStat{}
	var order []string
	stat := func(id string) *ValidatorStat {
		id = strings.ToLower(id)
		v := byID[id]
		if v == nil {
			v = &ValidatorStat{ID: common.HexToAddress(id).Hex()}
			byID[id] = v
			order = append(order, id)
		}
		return v
	}
	var current []string
	for n := out.From; n <= head && n >= 1; n++ {
		h := a.cfg.Chain.HeaderByNumber(n)
		if h == nil {
			continue
		}
		p := stat(h.Coinbase.Hex())
		p.Proposed++
		p.LastProposed = ptr(n)
		if a.cfg.Seal == nil {
			continue
		}
		s, err := a.cfg.Seal(n, h.Hash())
		if err != nil {
			return nil, err
		}
		if len(s.Validators) == 0 {
			if s.Note != "" {
				out.Note = s.Note
			}
			continue
		}
		out.Certificates = true
		current = s.Validators
		signed := map[string]bool{}
		for _, id := range s.Signers {
			signed[strings.ToLower(id)] = true
			v := stat(id)
			v.Signed++
			v.LastSigned = ptr(n)
		}
		for _, id := range s.Validators {
			if !signed[strings.ToLower(id)] {
				stat(id).MissedBlocks++
			}
		}
		for _, id := range s.MissedRounds {
			stat(id).MissedRounds++
		}
	}
	for _, id := range current {
		stat(id).Current = true
	}
	for _, id := range order {
		out.Validators = append(out.Validators, *byID[id])
	}
	return out, nil
}

func ptr[T any](v T) *T { return &v }
