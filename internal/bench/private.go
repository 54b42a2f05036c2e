package bench

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/charter-ledger/charter/internal/bench/token"
	"github.com/charter-ledger/charter/internal/privacy/privtx"
)

// Private ERC-20 transfers (KindPrivateERC20).
//
// The token is deployed privately in a privacy group of the organizations
// of Config.Group by the first organization's first sender, which then
// hands every sender of the group a share. Each organization's senders
// sign private transactions (privtx) for the group with their private
// nonces and submit them with eea_sendRawTransaction to a node of their
// own organization, which seals the payload, pushes it to the group's
// nodes and orders it with a public marker transaction; the answer is the
// marker's hash. Latency runs from submission to the private receipt on a
// node of another member organization: the payload reached it and its
// private state applied it. That node is watched with a private log filter
// (priv_newFilter, priv_getFilterChanges: one request a round, answering
// the logs of the blocks applied since the last), and a transfer counts
// when its Transfer log appears there, which is when its receipt does (a
// block's private receipts and logs are applied together). What has no
// log (a failed transfer), what is left when the watch goes quiet after
// the submissions, and every transfer on a node without private filters
// are asked for by priv_getTransactionReceipt (by marker hash), as
// web3js-quorum's clients wait for them.
// Private gas is free, so nothing is funded; the senders need role write
// in their organization (the token's deployer also deploy), which the
// organization's admin grants when given.

// Bounds of the private kind.
const (
	// MaxGroupOrgs bounds Config.Group.
	MaxGroupOrgs = 16
	// pollBatch bounds the receipts asked for in one JSON-RPC batch (the
	// node's default batch limit is 1,000 requests).
	pollBatch = 500
	// pollInterval is how long the receipt poller waits after a round that
	// found nothing new.
	pollInterval = 10 * time.Millisecond
	// privateTransferGas and privateDeployGas are the gas limits of the
	// private transactions (private gas costs nothing).
	privateTransferGas = 60_000
	privateDeployGas   = 3_000_000
)

// GroupOrg is one organization of the privacy group of a KindPrivateERC20
// run.
type GroupOrg struct {
	// Name of the organization; "": the organization of Admin (or of the
	// first sender) in the registry.
	Name string
	// Endpoints are JSON-RPC URLs of nodes of this organization: its
	// senders' transactions go to them, and the other organizations'
	// private receipts are read on the first.
	Endpoints []string
	// Keys of its senders; nil: keys derived from the organization's name
	// (PrivateSenderKey), the same in every run.
	Keys []*ecdsa.PrivateKey
	// Admin is an admin account of the organization: it adds senders that
	// lack role write (the deployer also deploy) to the organization;
	// nil: senders must hold them.
	Admin *ecdsa.PrivateKey
}

func (c *Config) validateGroup() error {
	if len(c.Group) < 2 || len(c.Group) > MaxGroupOrgs {
		return fmt.Errorf("--kind %s needs a privacy group of 2 to %d organizations, each with a node endpoint (--net DIR, or --group-rpc URL,URL); %d given",
			KindPrivateERC20, MaxGroupOrgs, len(c.Group))
	}
	if c.Senders < len(c.Group) {
		return fmt.Errorf("--senders %d: at least one per organization of the group (%d)", c.Senders, len(c.Group))
	}
	seen := map[string]bool{}
	for k, g := range c.Group {
		if len(g.Endpoints) == 0 {
			return fmt.Errorf("organization %d of the group (%q) has no node endpoint", k, g.Name)
		}
		if err := checkURLs(g.Endpoints); err != nil {
			return err
		}
		if g.Name != "" {
			if seen[g.Name] {
				return fmt.Errorf("organization %s is twice in the group", g.Name)
			}
			seen[g.Name] = true
		}
		if g.Name == "" && g.Admin == nil && len(g.Keys) == 0 {
			return fmt.Errorf("organization %d of the group: give its name, its admin key or its senders' keys", k)
		}
		if n := sendersOf(c.Senders, len(c.Group), k); g.Keys != nil && len(g.Keys) < n {
			return fmt.Errorf("organization %d of the group (%q): %d sender keys for %d senders", k, g.Name, len(g.Keys), n)
		}
	}
	if c.PrivacyGroup != "" {
		if id, err := base64.StdEncoding.DecodeString(c.PrivacyGroup); err != nil || len(id) != privtx.KeySize {
			return fmt.Errorf("--privacy-group %q is not a privacy group id (base64 of 32 bytes)", c.PrivacyGroup)
		}
	}
	return nil
}

// sendersOf is how many of total senders organization k of n has: sender
// s belongs to organization s mod n.
func sendersOf(total, n, k int) int {
	return total/n + btoi(k < total%n)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PrivateSenderKey is the key of sender i of organization org when none
// is given: keccak256 of a fixed label, the name and i. Anyone can derive
// it: it is for load tests only, as the development accounts are.
func PrivateSenderKey(org string, i int) *ecdsa.PrivateKey {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	for salt := byte(0); ; salt++ {
		seed := crypto.Keccak256([]byte("charter bench private sender"), []byte(org), n[:], []byte{salt})
		if k, err := crypto.ToECDSA(seed); err == nil {
			return k
		}
	}
}

// privOrg is an organization of the group during a run.
type privOrg struct {
	GroupOrg
	clients  []*gethrpc.Client
	identity []byte // 32-byte privacy identity (privateFrom)
	keys     []*ecdsa.PrivateKey
	senders  []common.Address
	nonces   []uint64 // next private nonce of each sender
}

// privTx is one measured private transaction.
type privTx struct {
	raw    []byte
	org    int   // the sending organization
	sent   int64 // unix nanos of submission; -1 refused; written by its submitter before it reports
	marker common.Hash
}

// privRunner runs KindPrivateERC20.
type privRunner struct {
	cfg     Config
	chainID *big.Int
	orgs    []*privOrg
	group   []byte // 32 bytes
	token   common.Address
	txs     []*privTx

	errMu sync.Mutex
	errs  map[string]bool
}

func runPrivate(ctx context.Context, cfg Config) (*Result, error) {
	r := &privRunner{cfg: cfg}
	dialer := cfg.dialer()
	for _, g := range cfg.Group {
		o := &privOrg{GroupOrg: g}
		for _, url := range g.Endpoints {
			c, err := dialer.Dial(ctx, url)
			if err != nil {
				return nil, fmt.Errorf("connect %s: %w", url, err)
			}
			defer c.Close()
			o.clients = append(o.clients, c)
		}
		r.orgs = append(r.orgs, o)
	}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	return r.run(ctx)
}

// progress prints a line if the run reports progress.
func (r *privRunner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", args...)
	}
}

// prepare names the organizations, gives their senders the roles they
// need, finds or creates the group, deploys and hands out the token, and
// signs every measured transaction.
func (r *privRunner) prepare(ctx context.Context) error {
	first := r.orgs[0].clients[0]
	var id hexutil.Big
	if err := first.CallContext(ctx, &id, "eth_chainId"); err != nil {
		return fmt.Errorf("eth_chainId: %w", err)
	}
	r.chainID = id.ToInt()
	var members struct {
		Organizations []struct {
			Name       string `json:"name"`
			PrivacyKey string `json:"privacyKey"`
		} `json:"organizations"`
	}
	if err := first.CallContext(ctx, &members, "charter_members"); err != nil {
		return fmt.Errorf("read the organizations' privacy keys (charter_members): %w", err)
	}
	keyOf := map[string]string{}
	for _, o := range members.Organizations {
		keyOf[o.Name] = o.PrivacyKey
	}
	seen := map[string]bool{}
	for k, o := range r.orgs {
		if err := r.nameOrg(ctx, o); err != nil {
			return err
		}
		if seen[o.Name] {
			return fmt.Errorf("organization %s is twice in the group", o.Name)
		}
		seen[o.Name] = true
		b64, ok := keyOf[o.Name]
		if !ok {
			return fmt.Errorf("organization %s is not in the registry (charter_members)", o.Name)
		}
		var err error
		if o.identity, err = base64.StdEncoding.DecodeString(b64); err != nil || len(o.identity) != privtx.KeySize {
			return fmt.Errorf("organization %s has no privacy key in the registry (privacyKey %q); set one first", o.Name, b64)
		}
		n := sendersOf(r.cfg.Senders, len(r.orgs), k)
		o.keys = o.Keys
		if o.keys == nil {
			for i := 0; i < n; i++ {
				o.keys = append(o.keys, PrivateSenderKey(o.Name, i))
			}
		}
		o.keys = o.keys[:n]
		for _, key := range o.keys {
			o.senders = append(o.senders, crypto.PubkeyToAddress(key.PublicKey))
		}
		if err := r.grantRoles(ctx, k, o); err != nil {
			return err
		}
	}
	if err := r.findGroup(ctx); err != nil {
		return err
	}
	r.progress("privacy group %s of %s", base64.StdEncoding.EncodeToString(r.group), r.orgNames())
	for _, o := range r.orgs {
		if err := r.readNonces(ctx, o); err != nil {
			return err
		}
	}
	if err := r.deployToken(ctx); err != nil {
		return err
	}
	r.sign()
	return nil
}

func (r *privRunner) orgNames() string {
	s := ""
	for k, o := range r.orgs {
		if k > 0 {
			s += ", "
		}
		s += o.Name
	}
	return s
}

// nameOrg fills in an organization's name from the registry: the
// organization of its admin, else of its first sender.
func (r *privRunner) nameOrg(ctx context.Context, o *privOrg) error {
	if o.Name != "" {
		return nil
	}
	key := o.Admin
	if key == nil {
		key = o.Keys[0]
	}
	var a account
	addr := crypto.PubkeyToAddress(key.PublicKey)
	if err := o.clients[0].CallContext(ctx, &a, "charter_account", addr); err != nil {
		return fmt.Errorf("read the organization of %s (charter_account): %w", addr, err)
	}
	if a.Org == "" {
		return fmt.Errorf("account %s is in no organization: name the group's organizations", addr)
	}
	o.Name = a.Org
	return nil
}

// grantRoles checks organization o's senders as the public kinds do
// (runner.grantRoles), requiring them to be accounts of o.
func (r *privRunner) grantRoles(ctx context.Context, k int, o *privOrg) error {
	kind := KindTransfer // write only
	if k == 0 {
		kind = KindPrivateERC20 // the deployer: write and deploy
	}
	pub := &runner{cfg: Config{Endpoints: o.Endpoints[:1], Kind: kind, Admin: o.Admin, Progress: r.cfg.Progress, Timeout: r.cfg.Timeout},
		clients: o.clients[:1], senders: o.senders, needOrg: o.Name}
	if err := pub.readChain(ctx); err != nil {
		return err
	}
	return pub.grantRoles(ctx)
}

// privacyGroup is the part of a priv_findPrivacyGroup answer the bench reads.
type privacyGroup struct {
	ID      string   `json:"privacyGroupId"`
	Members []string `json:"members"`
}

// findGroup takes Config.PrivacyGroup, or a group of exactly the
// organizations (priv_findPrivacyGroup on the first's node), or creates
// one there (priv_createPrivacyGroup).
func (r *privRunner) findGroup(ctx context.Context) error {
	c := r.orgs[0].clients[0]
	if r.cfg.PrivacyGroup != "" {
		r.group, _ = base64.StdEncoding.DecodeString(r.cfg.PrivacyGroup)
		return nil
	}
	var ids []string
	for _, o := range r.orgs {
		ids = append(ids, base64.StdEncoding.EncodeToString(o.identity))
	}
	var found []privacyGroup
	if err := c.CallContext(ctx, &found, "priv_findPrivacyGroup", ids); err != nil {
		return fmt.Errorf("priv_findPrivacyGroup on %s: %w", r.orgs[0].Endpoints[0], err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].ID < found[j].ID })
	for _, g := range found {
		if id, err := base64.StdEncoding.DecodeString(g.ID); err == nil && len(id) == privtx.KeySize {
			r.group = id
			return nil
		}
	}
	var created string
	arg := map[string]any{"addresses": ids, "name": "bench", "description": "charter bench private-erc20"}
	if err := c.CallContext(ctx, &created, "priv_createPrivacyGroup", arg); err != nil {
		return fmt.Errorf("priv_createPrivacyGroup on %s: %w", r.orgs[0].Endpoints[0], err)
	}
	id, err := base64.StdEncoding.DecodeString(created)
	if err != nil || len(id) != privtx.KeySize {
		return fmt.Errorf("priv_createPrivacyGroup answered %q, not a group id", created)
	}
	r.group = id
	return nil
}

// readNonces reads the private nonces of o's senders in the group from
// o's node.
func (r *privRunner) readNonces(ctx context.Context, o *privOrg) error {
	gid := base64.StdEncoding.EncodeToString(r.group)
	res := make([]hexutil.Uint64, len(o.senders))
	batch := make([]gethrpc.BatchElem, len(o.senders))
	for i, a := range o.senders {
		batch[i] = gethrpc.BatchElem{Method: "priv_getTransactionCount", Args: []any{a, gid}, Result: &res[i]}
	}
	if err := batchCall(ctx, o.clients[0], batch); err != nil {
		return fmt.Errorf("read the private nonces (priv_getTransactionCount) on %s: %w", o.Endpoints[0], err)
	}
	o.nonces = make([]uint64, len(res))
	for i, n := range res {
		o.nonces[i] = uint64(n)
	}
	return nil
}

// signPrivate signs one private transaction of the group.
func (r *privRunner) signPrivate(o *privOrg, s int, to *common.Address, gas uint64, data []byte) ([]byte, error) {
	tx := &privtx.Tx{Nonce: o.nonces[s], GasPrice: new(big.Int), Gas: gas, To: to, Value: new(big.Int), Data: data,
		PrivateFrom: o.identity, PrivacyGroupID: r.group, Restriction: privtx.Restricted}
	if err := privtx.SignTx(tx, r.chainID, o.keys[s]); err != nil {
		return nil, err
	}
	o.nonces[s]++
	return tx.Encode()
}

// deployToken deploys the token privately from the first organization's
// first sender and gives every other sender of the group 2^100 units, and
// waits until every organization's node holds the receipts.
func (r *privRunner) deployToken(ctx context.Context) error {
	o := r.orgs[0]
	r.token = crypto.CreateAddress(o.senders[0], o.nonces[0])
	raw, err := r.signPrivate(o, 0, nil, privateDeployGas, token.DeployData(new(big.Int).Lsh(big.NewInt(1), 200)))
	if err != nil {
		return err
	}
	raws := [][]byte{raw}
	for _, to := range r.orgs {
		for i, a := range to.senders {
			if to == o && i == 0 {
				continue
			}
			raw, err := r.signPrivate(o, 0, &r.token, privateTransferGas, token.TransferData(a, new(big.Int).Lsh(big.NewInt(1), 100)))
			if err != nil {
				return err
			}
			raws = append(raws, raw)
		}
	}
	batch := make([]gethrpc.BatchElem, len(raws))
	markers := make([]common.Hash, len(raws))
	for i, raw := range raws {
		batch[i] = gethrpc.BatchElem{Method: "eea_sendRawTransaction", Args: []any{hexutil.Encode(raw)}, Result: &markers[i]}
	}
	if err := batchCall(ctx, o.clients[0], batch); err != nil {
		return fmt.Errorf("deploy and distribute the private token (eea_sendRawTransaction on %s): %w", o.Endpoints[0], err)
	}
	// Every organization's node applies them before the measurement, so
	// that no sender's first transfer finds it without tokens.
	deadline := time.Now().Add(r.cfg.Timeout)
	for _, m := range r.orgs {
		p := &poller{client: m.clients[0]}
		for i, h := range markers {
			p.add(i, h)
		}
		for p.pending() > 0 {
			got, err := p.round(ctx)
			if err != nil {
				return fmt.Errorf("deploy and distribute the private token: receipts on %s: %w", m.Endpoints[0], err)
			}
			for _, g := range got {
				if g.status != 1 {
					return fmt.Errorf("deploy and distribute the private token: private transaction of marker %s failed on %s", markers[g.index].Hex(), m.Endpoints[0])
				}
				if g.index == 0 && g.contract != nil && *g.contract != r.token {
					return fmt.Errorf("the private token was deployed at %s, not at %s", g.contract.Hex(), r.token.Hex())
				}
			}
			if len(got) == 0 {
				if time.Now().After(deadline) {
					return fmt.Errorf("deploy and distribute the private token: %d private receipts missing on %s after %s", p.pending(), m.Endpoints[0], r.cfg.Timeout)
				}
				if err := sleepCtx(ctx, pollInterval); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sign pre-signs the measured transfers, round robin over the senders of
// all organizations (sender s: organization s mod n).
func (r *privRunner) sign() {
	n := len(r.orgs)
	r.txs = make([]*privTx, r.cfg.Txs)
	for i := range r.txs {
		s := i % r.cfg.Senders
		o := r.orgs[s%n]
		recipient := common.BigToAddress(big.NewInt(int64(0x10000 + i%10_000)))
		raw, err := r.signPrivate(o, s/n, &r.token, privateTransferGas, token.TransferData(recipient, big.NewInt(1)))
		if err != nil {
			panic(err) // every field is in bounds
		}
		r.txs[i] = &privTx{raw: raw, org: s % n}
	}
}

func (r *privRunner) noteError(err error) {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.errs == nil {
		r.errs = make(map[string]bool)
	}
	if len(r.errs) < 5 {
		r.errs[err.Error()] = true
	}
}

// inbox hands the transactions the nodes took from the submitters to the
// receipt poller; it holds at most the run's transactions.
type inbox struct {
	mu    sync.Mutex
	items []int
}

func (b *inbox) put(i int) {
	b.mu.Lock()
	b.items = append(b.items, i)
	b.mu.Unlock()
}

func (b *inbox) take() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.items
	b.items = nil
	return out
}

// run submits the transfers, workersPerEndpoint connections per endpoint
// of each organization (a sender always through the same one, in nonce
// order), and polls their private receipts.
func (r *privRunner) run(ctx context.Context) (*Result, error) {
	n := len(r.orgs)
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout+time.Duration(float64(len(r.txs))/max(r.cfg.Rate, 1)*float64(time.Second)))
	defer cancel()
	// The watches start before the first submission: a filter reports the
	// blocks after the one it was installed at.
	watches := make([]*watch, n)
	for k := range watches {
		watches[k] = r.startWatch(ctx, r.orgs[(k+1)%n])
	}
	defer func() {
		for _, w := range watches {
			w.stop()
		}
	}()
	var took inbox
	var wg sync.WaitGroup
	for k, o := range r.orgs {
		senders := sendersOf(r.cfg.Senders, n, k)
		workers := min(senders, workersPerEndpoint*len(o.clients))
		for w := 0; w < workers; w++ {
			var mine []int
			for i := range r.txs {
				if s := i % r.cfg.Senders; s%n == k && (s/n)%workers == w {
					mine = append(mine, i)
				}
			}
			wg.Add(1)
			go func(client *gethrpc.Client, mine []int) {
				defer wg.Done()
				submitLoop(ctx, submitSpec{client: client, method: "eea_sendRawTransaction", rate: r.cfg.Rate, batch: r.cfg.Batch, start: start,
					raw:  func(i int) []byte { return r.txs[i].raw },
					sent: func(i int, at int64) { r.txs[i].sent = at },
					result: func(i int, marker common.Hash, err error) {
						if err != nil {
							r.txs[i].sent = -1
							r.noteError(err)
							return
						}
						r.txs[i].marker = marker
						took.put(i)
					},
				}, mine)
			}(o.clients[w%len(o.clients)], mine)
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	res, err := r.collect(ctx, start, done, &took, watches)
	cancel()
	<-done
	return res, err
}

// collect polls the private receipts of what the nodes took until every
// submitted transaction has one, or ctx ends (what has none then failed).
// The receipts of organization k's transactions are read on the node of
// organization k+1 (mod n): another member's.
func (r *privRunner) collect(ctx context.Context, start time.Time, submitted <-chan struct{}, took *inbox, watches []*watch) (*Result, error) {
	n := len(r.orgs)
	pollers := make([]*poller, n)
	for k := range pollers {
		pollers[k] = &poller{client: r.orgs[(k+1)%n].clients[0]}
	}
	var finishedAt time.Time
	res := &Result{Kind: r.cfg.Kind, Senders: r.cfg.Senders, Rate: r.cfg.Rate, Sent: len(r.txs)}
	for _, o := range r.orgs {
		res.Endpoints += len(o.Endpoints)
	}
	blocks := map[uint64]bool{}
	last := start
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	confirmedLastTick := 0
	var lats []float64
	for {
		finished := false
		select {
		case <-submitted:
			finished = true
			if finishedAt.IsZero() {
				finishedAt = time.Now()
			}
		default:
		}
		pending, found := 0, false
		confirm := func(g polled) {
			found = true
			blocks[g.block] = true
			res.Confirmed++
			sent := r.txs[g.index].sent
			r.pointsAdd(res, start, sent, g.at)
			lats = append(lats, float64(g.at.UnixNano()-sent)/1e6)
			last = g.at
		}
		for _, i := range took.take() {
			g, confirmed, watched := watches[r.txs[i].org].add(i, r.txs[i].marker)
			switch {
			case confirmed: // its log came before the node's answer
				confirm(g)
			case !watched:
				pollers[r.txs[i].org].add(i, r.txs[i].marker)
			}
		}
		for k, w := range watches {
			if w.pending() == 0 {
				continue
			}
			got, err := w.round(ctx)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				// A node that cannot answer the filter (it expired, or a
				// poll holds more logs than the node answers at once):
				// what the watch waits for is asked for by receipt.
				r.progress("private log filter on %s: %v; reading receipts instead", r.orgs[(k+1)%n].Endpoints[0], err)
				w.off(pollers[k], r.txs)
				continue
			}
			for _, g := range got {
				confirm(g)
			}
			// After the submissions, a watch that has had nothing new for
			// watchQuiet hands what it still waits for (transfers that
			// failed, and so have no log) to the receipts.
			quiet := w.lastNew
			if finishedAt.After(quiet) {
				quiet = finishedAt
			}
			if finished && time.Since(quiet) > watchQuiet {
				w.off(pollers[k], r.txs)
			}
			pending += w.pending()
		}
		for _, p := range pollers {
			if p.pending() == 0 {
				continue
			}
			got, err := p.round(ctx)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				return nil, fmt.Errorf("poll private receipts: %w", err)
			}
			for _, g := range got {
				if g.status != 1 {
					found = true
					blocks[g.block] = true
					r.noteError(fmt.Errorf("private transaction of marker %s failed (status %d)", r.txs[g.index].marker.Hex(), g.status))
					continue
				}
				confirm(g)
			}
			pending += p.pending()
		}
		// finished was read before the inbox was emptied: nothing comes after.
		if ctx.Err() != nil || (finished && pending == 0) {
			break
		}
		select {
		case <-tick.C:
			r.progress("%6.1fs  private receipts %d/%d  %d tx/s  pending %d", time.Since(start).Seconds(), res.Confirmed, len(r.txs),
				res.Confirmed-confirmedLastTick, pending)
			confirmedLastTick = res.Confirmed
		default:
		}
		if !found {
			if sleepCtx(ctx, pollInterval) != nil {
				break
			}
		}
	}
	res.Failed = res.Sent - res.Confirmed
	res.Blocks = len(blocks)
	res.Latency = summarize(lats)
	res.DurationS = last.Sub(start).Seconds()
	if res.DurationS > 0 {
		res.TPS = float64(res.Confirmed) / res.DurationS
	}
	r.errMu.Lock()
	for e := range r.errs {
		res.Errors = append(res.Errors, e)
	}
	r.errMu.Unlock()
	sort.Strings(res.Errors)
	return res, nil
}

func (r *privRunner) pointsAdd(res *Result, start time.Time, sent int64, at time.Time) {
	res.Points = append(res.Points, Point{SentMs: float64(sent-start.UnixNano()) / 1e6, LatencyMs: float64(at.UnixNano()-sent) / 1e6})
}

// poller reads private receipts by marker hash from one node, oldest
// first, pollBatch per JSON-RPC batch. Not safe for concurrent use.
type poller struct {
	client *gethrpc.Client
	queue  []pollItem // waiting for a receipt, in submission order
}

type pollItem struct {
	index  int
	marker common.Hash
}

// polled is a private receipt that arrived.
type polled struct {
	index    int
	status   uint64
	block    uint64
	contract *common.Address
	at       time.Time // when the answer arrived
}

// privateReceipt is the part of a priv_getTransactionReceipt answer the
// bench reads.
type privateReceipt struct {
	Status          hexutil.Uint64  `json:"status"`
	BlockNumber     hexutil.Uint64  `json:"blockNumber"`
	ContractAddress *common.Address `json:"contractAddress"`
}

func (p *poller) add(i int, marker common.Hash) { p.queue = append(p.queue, pollItem{i, marker}) }

func (p *poller) pending() int { return len(p.queue) }

// round asks for the receipts of the oldest pollBatch waiting markers and
// returns those that arrived, which stop waiting.
func (p *poller) round(ctx context.Context) ([]polled, error) {
	n := min(len(p.queue), pollBatch)
	if n == 0 {
		return nil, nil
	}
	rcs := make([]*privateReceipt, n)
	batch := make([]gethrpc.BatchElem, n)
	for k := 0; k < n; k++ {
		batch[k] = gethrpc.BatchElem{Method: "priv_getTransactionReceipt", Args: []any{p.queue[k].marker}, Result: &rcs[k]}
	}
	if err := p.client.BatchCallContext(ctx, batch); err != nil {
		return nil, err
	}
	at := time.Now()
	var got []polled
	keep := p.queue[:0]
	for k, it := range p.queue {
		if k >= n {
			keep = append(keep, it)
			continue
		}
		if batch[k].Error != nil {
			if notRun(batch[k].Error) {
				keep = append(keep, it) // asked again next round
				continue
			}
			return nil, fmt.Errorf("priv_getTransactionReceipt %s: %w", it.marker.Hex(), batch[k].Error)
		}
		if rc := rcs[k]; rc != nil {
			got = append(got, polled{index: it.index, status: uint64(rc.Status), block: uint64(rc.BlockNumber), contract: rc.ContractAddress, at: at})
			continue
		}
		keep = append(keep, it)
	}
	p.queue = keep
	return got, nil
}

// notRun reports a request of a batch that the node did not run because
// the batch's time budget was spent (-32005, "... request not run"): a
// node holds a receipt request for a marker whose block its applier has
// not applied yet, so that under load a batch of them can spend the
// budget. The receipt is asked for again; the run does not end on it.
func notRun(err error) bool {
	var rerr gethrpc.Error
	return errors.As(err, &rerr) && rerr.ErrorCode() == -32005 && strings.HasSuffix(err.Error(), "request not run")
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// batchCall runs a batch on c in chunks of at most 1,000 and reports the
// first error.
func batchCall(ctx context.Context, c *gethrpc.Client, batch []gethrpc.BatchElem) error {
	for start := 0; start < len(batch); start += 1000 {
		end := min(start+1000, len(batch))
		if err := c.BatchCallContext(ctx, batch[start:end]); err != nil {
			return err
		}
		for _, b := range batch[start:end] {
			if b.Error != nil {
				return b.Error
			}
		}
	}
	return nil
}

// watchQuiet is how long a watch may see no new transfer after the
// submissions end before what it still waits for is asked for by receipt.
const watchQuiet = 2 * time.Second

// watch confirms transfers by their Transfer logs on one node, read with
// a private log filter: one priv_getFilterChanges a round, whatever the
// number of transfers waiting. A private log names its marker as its
// transaction (as Besu's do), and a marker is known when the node answers
// the submission, which under load can be after its block was applied: a
// log that comes first is kept until then. A nil watch is none. Not safe
// for concurrent use.
type watch struct {
	client  *gethrpc.Client
	group   string                 // base64
	id      string                 // the filter
	waiting map[common.Hash]int    // by marker: taken by a node, no log yet
	early   map[common.Hash]polled // by marker: logged, not (yet) reported taken
	limit   int                    // bound of early: the run's transfers and as many more
	lastNew time.Time              // when the last waited-for log arrived
	disable bool
}

// privateLog is the part of a private log the watch reads.
type privateLog struct {
	Marker      common.Hash    `json:"transactionHash"`
	BlockNumber hexutil.Uint64 `json:"blockNumber"`
}

// startWatch installs a filter on the token's private logs on a node of
// organization o; nil when the node has none to give (the transfers are
// then read by receipt).
func (r *privRunner) startWatch(ctx context.Context, o *privOrg) *watch {
	w := &watch{client: o.clients[0], group: base64.StdEncoding.EncodeToString(r.group), waiting: make(map[common.Hash]int),
		early: make(map[common.Hash]polled), limit: 2 * len(r.txs), lastNew: time.Now()}
	if err := w.client.CallContext(ctx, &w.id, "priv_newFilter", w.group, map[string]any{"address": r.token}); err != nil || w.id == "" {
		r.progress("private log filter on %s: %v; reading receipts", o.Endpoints[0], err)
		return nil
	}
	return w
}

// add reports transfer i taken by its node with marker: confirmed (as g)
// if its log came first, else watched if the watch waits for it; neither
// if the watch is off (it is to be read by receipt).
func (w *watch) add(i int, marker common.Hash) (g polled, confirmed, watched bool) {
	if w == nil {
		return polled{}, false, false
	}
	if g, ok := w.early[marker]; ok {
		delete(w.early, marker)
		g.index = i
		return g, true, false
	}
	if w.disable {
		return polled{}, false, false
	}
	w.waiting[marker] = i
	return polled{}, false, true
}

func (w *watch) pending() int {
	if w == nil {
		return 0
	}
	return len(w.waiting)
}

// round reads the logs of the blocks the node applied since the last
// round; the transfers they name stop waiting.
func (w *watch) round(ctx context.Context) ([]polled, error) {
	if w == nil || w.disable {
		return nil, nil
	}
	var logs []privateLog
	if err := w.client.CallContext(ctx, &logs, "priv_getFilterChanges", w.group, w.id); err != nil {
		return nil, err
	}
	at := time.Now()
	var got []polled
	for _, l := range logs {
		g := polled{status: 1, block: uint64(l.BlockNumber), at: at}
		i, ok := w.waiting[l.Marker]
		if !ok {
			// Not reported taken yet, or another organization's
			// transfer (the node logs the whole group's).
			if len(w.early) < w.limit {
				w.early[l.Marker] = g
			}
			continue
		}
		delete(w.waiting, l.Marker)
		g.index = i
		got = append(got, g)
	}
	if len(got) > 0 {
		w.lastNew = at
	}
	return got, nil
}

// off stops the watch: what it waits for is asked for by receipt from p.
func (w *watch) off(p *poller, txs []*privTx) {
	if w == nil {
		return
	}
	for _, i := range w.waiting {
		p.add(i, txs[i].marker)
	}
	clear(w.waiting)
	w.disable = true
}

// stop removes the filter from the node (best effort: a node drops a
// filter nobody polls anyway).
func (w *watch) stop() {
	if w == nil || w.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ok bool
	_ = w.client.CallContext(ctx, &ok, "priv_uninstallFilter", w.group, w.id)
}
