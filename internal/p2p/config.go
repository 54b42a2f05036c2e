package p2p

import (
	"crypto/ecdsa"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/charter-ledger/charter/internal/identity"
)

// NodeID names a node: the address of its secp256k1 node key, the same
// type as consensus.NodeID.
type NodeID = common.Address

// PeerAddr is one entry of the static peer list.
type PeerAddr struct {
	// Addr is host:port of the peer's p2p listener.
	Addr string
	// ID, when not zero, is the NodeID the peer must prove; a peer at
	// Addr with another node key is refused.
	ID NodeID
}

// Defaults of Config.
const (
	DefaultSendQueueLen         = 1024
	DefaultRecvBytesPerSec      = 64 << 20
	DefaultRecvMsgsPerSec       = 50_000
	DefaultRefreshInterval      = 5 * time.Second
	DefaultHandshakeTimeout     = 5 * time.Second
	DefaultPingInterval         = 10 * time.Second
	DefaultIdleTimeout          = 30 * time.Second
	DefaultWriteTimeout         = 10 * time.Second
	DefaultDialTimeout          = 5 * time.Second
	DefaultDialBackoffMin       = 100 * time.Millisecond
	DefaultDialBackoffMax       = 30 * time.Second
	DefaultMaxPeers             = 64
	DefaultMaxPendingHandshakes = 32
	DefaultEventQueueLen        = 256
)

// Config configures a Transport. Zero fields take the defaults above
// (EnsureDefaults); Validate names the first field that is wrong.
type Config struct {
	// ListenAddr is host:port to accept peers on ("127.0.0.1:0" picks a
	// port, see Transport.Addr). Empty: dial only, accept nothing.
	ListenAddr string
	// ChainID and GenesisHash must equal the peer's, or the handshake
	// fails.
	ChainID     uint64
	GenesisHash common.Hash
	// NodeKey is this node's secp256k1 consensus key; its address is the
	// NodeID peers see.
	NodeKey *ecdsa.PrivateKey
	// Certificate is this node's TLS identity: a node certificate (chain,
	// leaf first) issued by its organization's CA, and its P-256 key.
	Certificate tls.Certificate
	// Trust decides which peer certificates are accepted; revocations and
	// organization status changes in it are enforced on live connections
	// within RefreshInterval (at once when the store signals a change).
	Trust *identity.TrustStore
	// StaticPeers are dialed, and redialed while the transport runs.
	StaticPeers []PeerAddr

	// MaxMessageBytes bounds one message's payload, in both directions.
	// A peer announcing a larger frame is disconnected.
	MaxMessageBytes int
	// SendQueueLen bounds each peer's outbound queue, in messages. Send
	// drops (and counts) what does not fit.
	SendQueueLen int
	// RecvBytesPerSec and RecvMsgsPerSec limit what one connection may
	// deliver (token buckets; bursts RecvBytesBurst, default
	// MaxMessageBytes plus one frame header, and RecvMsgsBurst, default
	// RecvMsgsPerSec/10). A peer sending faster is read more slowly:
	// TCP pushes back on it, other peers are not affected. Negative: no
	// limit.
	RecvBytesPerSec float64
	RecvBytesBurst  int
	RecvMsgsPerSec  float64
	RecvMsgsBurst   int
	// RefreshInterval is how often connected peers are checked against
	// the trust store (and Authorize).
	RefreshInterval time.Duration
	// HandshakeTimeout bounds TLS plus the hello exchange.
	HandshakeTimeout time.Duration
	// PingInterval: an idle connection sends a ping this often.
	// IdleTimeout: a connection that receives nothing for this long is
	// closed. IdleTimeout must exceed PingInterval.
	PingInterval time.Duration
	IdleTimeout  time.Duration
	// WriteTimeout bounds one write to a peer; a peer that does not read
	// is disconnected after it.
	WriteTimeout time.Duration
	// DialTimeout bounds one TCP connect.
	DialTimeout time.Duration
	// DialBackoffMin and DialBackoffMax bound the delay between dials of
	// one static peer: it doubles per failure from Min up to Max, with
	// jitter over its upper half.
	DialBackoffMin time.Duration
	DialBackoffMax time.Duration
	// MaxPeers bounds connected peers; MaxPendingHandshakes bounds
	// inbound connections still in their handshake (beyond it new ones are
	// closed at once).
	MaxPeers             int
	MaxPendingHandshakes int

	// OnPeerEvent, if set, is called for every peer up and down, in
	// order, from one goroutine of the transport. At most EventQueueLen
	// events wait for it; beyond that they are dropped and counted
	// (Stats.EventsDropped) and Peers() is the truth. Never called after
	// Close returns.
	OnPeerEvent   func(PeerEvent)
	EventQueueLen int
	// Authorize, if set, is asked about every peer after its handshake and
	// again every RefreshInterval; an error refuses or disconnects the
	// peer, naming the error. The node uses it to require that the
	// certificate and the NodeID belong to the same registered node of an
	// active organization. It must be goroutine-safe and fast.
	Authorize func(PeerInfo) error

	// RefusalLogInterval and RefusalLogSources bound the log lines of
	// refused inbound connections: per source (claimed node id, else
	// remote IP) and reason, one line per interval, the next one saying
	// how many were suppressed; at most RefusalLogSources sources and
	// reasons are remembered (beyond them, new ones share one line per
	// reason). Every refusal is counted regardless (Stats.Refused).
	RefusalLogInterval time.Duration
	RefusalLogSources  int

	// JitterSeed seeds the backoff jitter; 0 picks a random seed.
	JitterSeed uint64
}

// EnsureDefaults fills zero fields with the defaults.
func (c *Config) EnsureDefaults() {
	setDefault(&c.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&c.SendQueueLen, DefaultSendQueueLen)
	setDefault(&c.RecvBytesPerSec, DefaultRecvBytesPerSec)
	setDefault(&c.RecvBytesBurst, c.MaxMessageBytes+frameHeaderLen)
	setDefault(&c.RecvMsgsPerSec, DefaultRecvMsgsPerSec)
	setDefault(&c.RecvMsgsBurst, max(int(c.RecvMsgsPerSec/10), 1))
	setDefault(&c.RefreshInterval, DefaultRefreshInterval)
	setDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&c.PingInterval, DefaultPingInterval)
	setDefault(&c.IdleTimeout, max(DefaultIdleTimeout, 3*c.PingInterval))
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.DialTimeout, DefaultDialTimeout)
	setDefault(&c.DialBackoffMin, DefaultDialBackoffMin)
	setDefault(&c.DialBackoffMax, max(DefaultDialBackoffMax, c.DialBackoffMin))
	setDefault(&c.MaxPeers, DefaultMaxPeers)
	setDefault(&c.MaxPendingHandshakes, DefaultMaxPendingHandshakes)
	setDefault(&c.EventQueueLen, DefaultEventQueueLen)
	setDefault(&c.RefusalLogInterval, DefaultRefusalLogInterval)
	setDefault(&c.RefusalLogSources, DefaultRefusalLogSources)
}

func setDefault[T int | float64 | time.Duration](p *T, v T) {
	if *p == 0 {
		*p = v
	}
}

// Validate checks the configuration after EnsureDefaults.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("p2p config: %s: %s", field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.NodeKey == nil:
		return bad("NodeKey", "missing")
	case c.NodeKey.Curve != crypto.S256():
		return bad("NodeKey", "must be a secp256k1 key")
	case len(c.Certificate.Certificate) == 0 || c.Certificate.PrivateKey == nil:
		return bad("Certificate", "missing certificate or key")
	case c.Trust == nil:
		return bad("Trust", "missing trust store")
	case c.MaxMessageBytes < 1 || c.MaxMessageBytes > 1<<30:
		return bad("MaxMessageBytes", "%d out of range 1..%d", c.MaxMessageBytes, 1<<30)
	case c.SendQueueLen < 1:
		return bad("SendQueueLen", "must be positive")
	case c.RecvBytesPerSec > 0 && c.RecvBytesBurst < c.MaxMessageBytes+frameHeaderLen:
		return bad("RecvBytesBurst", "%d is below one maximal frame (%d)", c.RecvBytesBurst, c.MaxMessageBytes+frameHeaderLen)
	case c.RecvMsgsPerSec > 0 && c.RecvMsgsBurst < 1:
		return bad("RecvMsgsBurst", "must be positive")
	case c.RefreshInterval <= 0, c.HandshakeTimeout <= 0, c.PingInterval <= 0, c.WriteTimeout <= 0, c.DialTimeout <= 0:
		return bad("RefreshInterval, HandshakeTimeout, PingInterval, WriteTimeout, DialTimeout", "must be positive")
	case c.IdleTimeout <= c.PingInterval:
		return bad("IdleTimeout", "%s must exceed PingInterval %s", c.IdleTimeout, c.PingInterval)
	case c.DialBackoffMin <= 0 || c.DialBackoffMax < c.DialBackoffMin:
		return bad("DialBackoffMax", "need 0 < DialBackoffMin <= DialBackoffMax")
	case c.MaxPeers < 1:
		return bad("MaxPeers", "must be positive")
	case c.MaxPendingHandshakes < 1:
		return bad("MaxPendingHandshakes", "must be positive")
	case c.EventQueueLen < 1:
		return bad("EventQueueLen", "must be positive")
	case c.RefusalLogInterval <= 0:
		return bad("RefusalLogInterval", "must be positive")
	case c.RefusalLogSources < 1 || c.RefusalLogSources > 1<<20:
		return bad("RefusalLogSources", "%d out of range 1..%d", c.RefusalLogSources, 1<<20)
	}
	for i, p := range c.StaticPeers {
		if p.Addr == "" {
			return bad(fmt.Sprintf("StaticPeers[%d].Addr", i), "empty")
		}
	}
	return nil
}
