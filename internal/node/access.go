package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/holiman/uint256"

	"github.com/charter-ledger/charter/internal/auth"
	"github.com/charter-ledger/charter/internal/auth/issuer"
	"github.com/charter-ledger/charter/internal/consensus/bft"
	"github.com/charter-ledger/charter/internal/console"
	"github.com/charter-ledger/charter/internal/gateway"
	"github.com/charter-ledger/charter/internal/keystore"
	"github.com/charter-ledger/charter/internal/rpc"
	"github.com/charter-ledger/charter/internal/system"
)

// orgStatus answers, for the API's access check of every request,
// whether an organization is an active member at the head. It reads the
// registry once per organization and head: a request costs a map lookup.
// Safe for concurrent use.
type orgStatus struct {
	n *Node

	mu     sync.Mutex
	head   *types.Header // compared by pointer: the ledger shares its head, and hashing it per request would cost more than the lookup
	active map[string]bool
}

// maxOrgStatus bounds the organizations remembered for one head; beyond
// it the map starts over.
const maxOrgStatus = 4096

func (s *orgStatus) Active(org string) bool {
	head := s.n.Ledger().Head()
	s.mu.Lock()
	if s.head == head {
		if a, ok := s.active[org]; ok {
			s.mu.Unlock()
			return a
		}
	} else {
		s.head, s.active = head, map[string]bool{}
	}
	s.mu.Unlock()

	reg, h, err := s.n.registry()
	if err != nil {
		return false
	}
	o, ok := reg.Org(org)
	active := ok && o.Status == system.StatusActive
	s.mu.Lock()
	if s.head == h {
		if len(s.active) >= maxOrgStatus {
			s.active = map[string]bool{}
		}
		s.active[org] = active
	}
	s.mu.Unlock()
	return active
}

// apiHandler builds what the API listener serves in front of JSON-RPC:
// the REST gateway under /api/v1, the built-in token issuer under /oauth/
// and /.well-known/, and, when the node's config has an api section, the
// access check of every request (credentials, roles, rate limits, access
// log). It returns a closer for what it opened.
func (a *apiServer) apiHandler(srv *rpc.Server) (http.Handler, func(), error) {
	n := a.n
	closers := []func(){}
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	gwCfg := gateway.DefaultConfig()
	gwCfg.Backend = rpcBackend{n}
	gwCfg.Log = n.log
	gwCfg.Contracts = n.contracts
	if n.index != nil {
		gwCfg.SQL = n.index
	}
	signer, err := a.openKeystore()
	if err != nil {
		return nil, closeAll, err
	}
	if signer != nil {
		gwCfg.Sender = keySender{signer}
	}
	gw, err := gateway.New(gwCfg)
	if err != nil {
		return nil, closeAll, fmt.Errorf("REST gateway: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(gateway.Prefix, srv.CORS(gw))
	// The event streams, under the same origin policy as the gateway.
	mux.Handle(StreamsPath, srv.CORS(n.streamsHandler()))
	mux.Handle(StreamsPath+"/", srv.CORS(n.streamsHandler()))
	mux.Handle(BackupPath, n.backupHandler())
	mux.Handle(SnapshotPath, n.snapshotHandler())
	// The web console: its page (code only, open like the token
	// endpoint) and its read-only endpoints (behind authentication).
	capi, err := console.NewAPI(console.APIConfig{
		Chain: rpcBackend{n}, Contracts: n.contracts, Ready: n.readiness, Peers: n.consolePeers, Log: n.log,
		SQLIndex: n.index != nil, Seal: n.consoleSeal, Roots: n.orgRoots, Gatherer: n.ins.reg, History: n.history,
		Node: n.consoleNodeInfo(),
	})
	if err != nil {
		return nil, closeAll, err
	}
	mux.Handle(console.Path, console.Assets(console.Site{AuthRequired: consoleNeedsCredential(n.cfg.API)}))
	mux.Handle(console.APIPath, srv.CORS(capi))
	mux.Handle("/", srv.Handler())

	api := n.cfg.API
	if api == nil || api.Auth == APIOpen {
		// Open, as charter dev: every caller may do what the API allows
		// (the signer's roles still bound transactions).
		return consoleRedirect(mux), closeAll, nil
	}
	var iss *issuer.Issuer
	if api.Issuer == nil || !api.Issuer.Disabled {
		ic := issuer.Config{URL: a.issuerURL(), DataDir: n.cfg.DataDir, Logger: n.log}
		if c := api.Issuer; c != nil {
			ic.Audience = c.Audience
			// Validated with the config: "" gives 0, the issuer's default.
			ic.Lifetime, _ = parseDurationIn("", c.TokenLifetime, 0, 1<<62)
			ic.Rotate, _ = parseDurationIn("", c.KeyRotation, 0, 1<<62)
		}
		if iss, err = issuer.New(ic); err != nil {
			return nil, closeAll, fmt.Errorf("api.issuer: %w", err)
		}
		h := iss.Handler()
		mux.Handle("/oauth/", h)
		mux.Handle("/.well-known/", h)
	}
	vc := auth.VerifierConfig{Logger: n.log}
	if iss != nil {
		vc.Local = iss
	}
	for _, o := range api.OIDC {
		max, _ := system.ParseRoles(o.MaxRoles)
		vc.OIDC = append(vc.OIDC, auth.OIDCConfig{Org: o.Org, Issuer: o.Issuer, Audience: o.Audience, RolesClaim: o.RolesClaim, MaxRoles: max})
	}
	ver, err := auth.NewVerifier(vc)
	if err != nil {
		return nil, closeAll, fmt.Errorf("api.oidc: %w", err)
	}
	go ver.Warm(context.Background())

	anon, _ := system.ParseRoles(api.AnonymousRoles)
	mc := auth.MiddlewareConfig{
		Bearer:    ver.Verify,
		Anonymous: anon,
		Required:  true,
		OrgActive: (&orgStatus{n: n}).Active,
		Metrics:   n.ins.reg,
		Open:      []string{"/oauth/", "/.well-known/", gateway.Prefix + "openapi.json", console.Path},
	}
	if n.net != nil {
		certRoles := system.RoleRead
		if len(api.ClientCertRoles) > 0 {
			certRoles, _ = system.ParseRoles(api.ClientCertRoles)
		}
		// The trust store follows governance: organizations admitted,
		// suspended or exited, and certificates revoked (syncTrust).
		ca, err := auth.NewCertAuthenticator(auth.CertConfig{Trust: n.net.trust,
			Roles: map[string]system.Role{"*": certRoles}})
		if err != nil {
			return nil, closeAll, fmt.Errorf("api.clientCertRoles: %w", err)
		}
		mc.Certs = ca
	}
	lim := auth.Limit{Rate: 1000, Burst: 2000}
	if rl := api.RateLimit; rl != nil {
		lim = auth.Limit{Rate: rl.PerSecond, Burst: rl.Burst, Quota: rl.DailyQuota}
	}
	if mc.Limits, err = auth.NewLimiter(auth.LimitConfig{Default: lim}); err != nil {
		return nil, closeAll, fmt.Errorf("api.rateLimit: %w", err)
	}
	if api.AccessLog != "off" {
		path := api.AccessLog
		if path == "" {
			path = filepath.Join(n.cfg.DataDir, "logs", "access.log")
		}
		// Reads of private data (priv_ and eea_ answers) are also kept in
		// a log of their own beside it, for the organization's auditors.
		pl, err := auth.OpenAccessLog(auth.AccessLogConfig{Path: filepath.Join(filepath.Dir(path), "private-reads.log")})
		if err != nil {
			return nil, closeAll, fmt.Errorf("api.accessLog: %w", err)
		}
		closers = append(closers, func() { pl.Close() })
		al, err := auth.OpenAccessLog(auth.AccessLogConfig{Path: path, Private: func(r auth.AccessRecord) { pl.Write(r) }})
		if err != nil {
			return nil, closeAll, fmt.Errorf("api.accessLog: %w", err)
		}
		closers = append(closers, func() { al.Close() })
		mc.Log = al
	}
	return consoleRedirect(auth.Middleware(mux, mc)), closeAll, nil
}

// issuerURL is the built-in issuer's iss claim: the configured URL, else
// the API listener's own.
func (a *apiServer) issuerURL() string {
	api := a.n.cfg.API
	if api.Issuer != nil && api.Issuer.URL != "" {
		return api.Issuer.URL
	}
	scheme := "http://"
	if api.TLS {
		scheme = "https://"
	}
	return scheme + a.n.cfg.HTTPAddr
}

// openKeystore opens the node-held signing keys of DATA/keystore, if any,
// with the password of $CHARTER_KEYSTORE_PASSWORD or the api section's
// keystorePasswordFile. No keystore: nil.
func (a *apiServer) openKeystore() (*keystore.Signer, error) {
	n := a.n
	dir := keystore.Dir(n.cfg.DataDir)
	infos, err := keystore.ListDir(dir)
	if err != nil || len(infos) == 0 {
		return nil, nil
	}
	file := ""
	if n.cfg.API != nil {
		file = n.cfg.API.KeystorePasswordFile
	}
	pw, err := keystore.ReadPassword("api.keystorePasswordFile", file, os.Getenv)
	if err != nil {
		return nil, err
	}
	ks, err := keystore.Open(dir, pw, keystore.Options{})
	if err != nil {
		return nil, fmt.Errorf("node-held keys: %w", err)
	}
	return keystore.NewSigner(ks, n.cfg.Spec, keyPool{n}, keystore.SignerConfig{Org: n.cfg.Org}), nil
}

// keySender is the gateway's view of the node-held keys.
type keySender struct{ s *keystore.Signer }

func (k keySender) Send(ctx context.Context, id string, caller *auth.Identity, tx gateway.TxRequest) (common.Hash, error) {
	to := tx.To
	h, err := k.s.Send(ctx, id, caller, keystore.TxRequest{To: &to, Data: tx.Data, Value: tx.Value, Gas: tx.Gas})
	switch {
	case errors.Is(err, keystore.ErrUnknownKey):
		return h, fmt.Errorf("%w: %v", gateway.ErrUnknownKey, err)
	case errors.Is(err, keystore.ErrDenied):
		return h, fmt.Errorf("%w: %v", gateway.ErrKeyDenied, err)
	}
	return h, err
}

// keyPool is the pool and gas estimation the node-held keys send through.
type keyPool struct{ n *Node }

func (p keyPool) PoolNonce(addr common.Address) uint64 { return p.n.Pool().Nonce(addr) }
func (p keyPool) SendTx(tx *types.Transaction) error   { return p.n.Pool().Add(tx) }
func (p keyPool) EstimateGas(ctx context.Context, m ethereum.CallMsg) (uint64, error) {
	head := p.n.Ledger().Head()
	st, err := p.n.Ledger().StateAt(head.Root)
	if err != nil {
		return 0, err
	}
	msg := &core.Message{From: m.From, To: m.To, Data: m.Data, Value: new(uint256.Int), GasLimit: head.GasLimit,
		GasPrice: new(uint256.Int), GasFeeCap: new(uint256.Int), GasTipCap: new(uint256.Int)}
	msg.Nonce = st.GetNonce(m.From)
	if m.Value != nil {
		msg.Value, _ = uint256.FromBig(m.Value)
	}
	gas, failed, err := p.n.Executor().EstimateGas(ctx, head, st, msg, head.GasLimit)
	if err != nil {
		return 0, err
	}
	if failed != nil && failed.Err != nil {
		return 0, failed.Err
	}
	return gas, nil
}

// consoleRedirect sends /console to the console's page at /console/
// before authentication, so that the address a user types works (the
// middleware's open paths are prefixes, and "/console" would open
// "/consoleX" too).
func consoleRedirect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path+"/" == console.Path && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			http.Redirect(w, r, console.Path, http.StatusMovedPermanently)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// consoleNeedsCredential tells the console's page to ask for a credential
// before it reads: the node requires one and a caller without one may not
// read.
func consoleNeedsCredential(api *HomeAPI) bool {
	if api == nil || api.Auth != APIRequired {
		return false
	}
	anon, _ := system.ParseRoles(api.AnonymousRoles)
	return anon&system.RoleRead == 0
}

// consoleSeal tells the console how block number (of the given hash) was
// decided: on bft the signers of its commit certificate, verified against
// the validator set of its height.
func (n *Node) consoleSeal(number uint64, hash common.Hash) (*console.Seal, error) {
	out := &console.Seal{Engine: n.cfg.Spec.Consensus.Engine, Signers: []string{}}
	if out.Engine != "bft" {
		out.Note = "the " + out.Engine + " engine keeps no commit certificate in its blocks"
		return out, nil
	}
	seal := n.ledger.Seal(number)
	if len(seal) == 0 {
		out.Note = "no commit certificate stored with this block"
		return out, nil
	}
	st, _, err := n.chain.System()
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	signers, err := bft.VerifyCertificate(n.cfg.Spec.ChainID(), st.ValidatorsAt(number), number, hash, seal)
	if err != nil {
		out.Note = err.Error()
		return out, nil
	}
	set := st.ValidatorsAt(number)
	vs, err := bft.NewValidatorSet(set)
	if err != nil {
		out.Note = err.Error()
		return out, nil
	}
	for _, v := range vs.IDs() {
		out.Validators = append(out.Validators, v.Hex())
	}
	if c, err := bft.DecodeCertificate(seal); err == nil {
		out.Round = &c.Round
		// The proposers of the rounds before the deciding one let their
		// round pass.
		for r := int64(0); r < c.Round && r < console.MaxMissedRounds; r++ {
			out.MissedRounds = append(out.MissedRounds, vs.Proposer(number, r).Hex())
		}
	}
	for _, s := range signers {
		out.Signers = append(out.Signers, s.Hex())
	}
	return out, nil
}

// orgRoots are the root certificates of the registry's organizations at
// the head.
func (n *Node) orgRoots() (map[string]string, error) {
	st, _, err := n.chain.System()
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	out := map[string]string{}
	for _, o := range st.Orgs() {
		if r := st.Roots(o.Name); r != "" {
			out[o.Name] = r
		}
	}
	return out, nil
}
