package streams

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/charter-ledger/charter/internal/chaindata"
)

// WebhookConfig is the "webhook" sink's settings.
type WebhookConfig struct {
	// URL receives the POSTs: https, or http to a loopback address.
	URL string `json:"url"`
	// Secret keys the HMAC-SHA256 signature of every body; 16 to 256
	// bytes.
	Secret string `json:"secret"`
	// TimeoutMs bounds one POST, answer included; 0 means 10,000.
	TimeoutMs int `json:"timeoutMs,omitempty"`
}

// Headers of a webhook POST.
const (
	SignatureHeader = "X-Charter-Signature"
	EventIDsHeader  = "X-Charter-Event-Ids"
)

// WebhookBody is the JSON a webhook POST carries.
type WebhookBody struct {
	Stream string            `json:"stream"`
	Events []chaindata.Event `json:"events"`
}

func init() {
	RegisterSink("webhook", func(cfg json.RawMessage) (chaindata.Sink, error) {
		var c WebhookConfig
		dec := json.NewDecoder(bytes.NewReader(cfg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("webhook settings: %v", err)
		}
		return NewWebhook(c)
	})
}

// Webhook is the "webhook" sink: one signed POST per batch, accepted on
// a 2xx answer. Safe for concurrent use.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// NewWebhook checks c and builds the sink.
func NewWebhook(c WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("url %q: not an absolute URL", c.URL)
	}
	switch u.Scheme {
	case "https":
	case "http":
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("url %q: http only to a loopback address; use https", c.URL)
		}
	default:
		return nil, fmt.Errorf("url %q: scheme must be https", c.URL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("url %q: credentials in the URL are not allowed", c.URL)
	}
	if len(c.Secret) < 16 || len(c.Secret) > 256 {
		return nil, fmt.Errorf("secret: %d bytes, want 16 to 256", len(c.Secret))
	}
	if c.TimeoutMs < 0 || c.TimeoutMs > 300_000 {
		return nil, fmt.Errorf("timeoutMs %d: want 0 (10,000) to 300,000", c.TimeoutMs)
	}
	timeout := 10 * time.Second
	if c.TimeoutMs > 0 {
		timeout = time.Duration(c.TimeoutMs) * time.Millisecond
	}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  timeout,
		MaxIdleConns:           2,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
	}
	return &Webhook{
		url:    u.String(),
		secret: []byte(c.Secret),
		client: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			// A redirect would send the signed body elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now: time.Now,
	}, nil
}

// Deliver POSTs events as one WebhookBody.
func (w *Webhook) Deliver(ctx context.Context, events []chaindata.Event) error {
	if len(events) == 0 {
		return nil
	}
	body, err := json.Marshal(WebhookBody{Stream: events[0].Stream, Events: events})
	if err != nil {
		return fmt.Errorf("webhook: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	ids := make([]string, len(events))
	for i := range events {
		ids[i] = events[i].ID
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "charter-streams")
	req.Header.Set(SignatureHeader, Sign(w.secret, w.now(), body))
	req.Header.Set(EventIDsHeader, strings.Join(ids, ","))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: %s answered %s", w.url, resp.Status)
	}
	return nil
}

// Close releases idle connections.
func (w *Webhook) Close() error {
	w.client.CloseIdleConnections()
	return nil
}

// Sign is the X-Charter-Signature value of body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Errors of VerifySignature.
var (
	ErrSignatureFormat = errors.New("malformed signature header")
	ErrSignatureStale  = errors.New("signature too old or in the future")
	ErrSignatureBad    = errors.New("signature does not match")
)

// VerifySignature checks a webhook POST's X-Charter-Signature header
// against its raw body, for receivers: the HMAC must match (compared in
// constant time; any of several v1 values may) and the timestamp be
// within maxAge of now either way (maxAge 0 skips that check; receivers
// should use one, e.g. 5 minutes, and remember event IDs to drop
// replays and redeliveries).
func VerifySignature(secret []byte, header string, body []byte, maxAge time.Duration) error {
	return verifyAt(secret, header, body, maxAge, time.Now())
}

func verifyAt(secret []byte, header string, body []byte, maxAge time.Duration, now time.Time) error {
	if len(header) > 4096 {
		return ErrSignatureFormat
	}
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureFormat
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return ErrSignatureFormat
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignatureFormat
	}
	if maxAge > 0 {
		d := now.Sub(time.Unix(sec, 0))
		if d > maxAge || d < -maxAge {
			return ErrSignatureStale
		}
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrSignatureBad
}
