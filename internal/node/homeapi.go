package node

import (
	"fmt"
	"net/url"
	"time"

	"github.com/charter-ledger/charter/internal/system"
)

// HomeAPI is the "api" section of a node's config.json: how clients reach
// the node's API listener (JSON-RPC, REST, the token endpoint).
//
// A config without the section serves the API open over plain HTTP, as
// charter dev does: `charter init` writes the section, with
// authentication required unless the network is a playground whose
// genesis empowers the development accounts.
type HomeAPI struct {
	// TLS serves https:// and wss:// with the node's certificate (tlsCert,
	// issued by its organization's CA), and asks for (never requires) a
	// client certificate.
	TLS bool `json:"tls,omitempty"`
	// Auth is "open" (served as charter dev serves it: no credentials,
	// rate limits or access log, and the signer's roles still bound
	// transactions) or "required" (a caller
	// needs a bearer token or a client certificate, except for what
	// AnonymousRoles grants).
	Auth string `json:"auth"`
	// AnonymousRoles are the roles of a caller without credentials when
	// Auth is required (default none; "read" makes queries public).
	AnonymousRoles []string `json:"anonymousRoles,omitempty"`
	// Issuer configures the node's built-in OAuth2 client-credentials
	// issuer (clients managed by `charter client`). Nil: on, with the
	// defaults.
	Issuer *HomeIssuer `json:"issuer,omitempty"`
	// OIDC are organizations' own OpenID Connect issuers whose tokens the
	// node accepts.
	OIDC []HomeOIDC `json:"oidc,omitempty"`
	// ClientCertRoles are the roles of a caller with a client certificate
	// of an active organization (default read).
	ClientCertRoles []string `json:"clientCertRoles,omitempty"`
	// RateLimit bounds each caller; nil: the defaults.
	RateLimit *HomeRateLimit `json:"rateLimit,omitempty"`
	// AccessLog is the access log's file ("" : logs/access.log in the
	// data directory; "off": none).
	AccessLog string `json:"accessLog,omitempty"`
	// KeystorePasswordFile opens the node-held signing keys of
	// DATA/keystore (charter keys); $CHARTER_KEYSTORE_PASSWORD otherwise.
	KeystorePasswordFile string `json:"keystorePasswordFile,omitempty"`
}

// HomeIssuer configures the built-in token issuer.
type HomeIssuer struct {
	// Disabled turns the issuer off (an organization that uses its own
	// identity provider only).
	Disabled bool `json:"disabled,omitempty"`
	// URL is the issuer's iss claim and the base of its endpoints
	// ("": https://rpcAddr or http://rpcAddr).
	URL string `json:"url,omitempty"`
	// Audience is the aud claim of its tokens (default "charter").
	Audience string `json:"audience,omitempty"`
	// TokenLifetime (default 10m, 1m to 24h).
	TokenLifetime string `json:"tokenLifetime,omitempty"`
	// KeyRotation is how often the signing key changes (default 24h).
	KeyRotation string `json:"keyRotation,omitempty"`
}

// HomeOIDC is one organization's OpenID Connect issuer.
type HomeOIDC struct {
	Org      string `json:"org"`
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// RolesClaim names the claim with the caller's roles (default
	// "roles"); a space-separated "scope" of role names is read too.
	RolesClaim string `json:"rolesClaim,omitempty"`
	// MaxRoles caps what its tokens may grant (default read).
	MaxRoles []string `json:"maxRoles,omitempty"`
}

// HomeRateLimit is the token bucket of each caller.
type HomeRateLimit struct {
	PerSecond  float64 `json:"perSecond,omitempty"`
	Burst      int     `json:"burst,omitempty"`
	DailyQuota int64   `json:"dailyQuota,omitempty"` // requests per caller per UTC day; 0: none
}

// API auth modes.
const (
	APIOpen     = "open"
	APIRequired = "required"
)

func (a *HomeAPI) validate() error {
	switch a.Auth {
	case APIOpen, APIRequired:
	default:
		return fmt.Errorf("api.auth: %q is not open or required", a.Auth)
	}
	if _, err := system.ParseRoles(a.AnonymousRoles); err != nil {
		return fmt.Errorf("api.anonymousRoles: %w", err)
	}
	if _, err := system.ParseRoles(a.ClientCertRoles); err != nil {
		return fmt.Errorf("api.clientCertRoles: %w", err)
	}
	if is := a.Issuer; is != nil {
		if is.URL != "" {
			if u, err := url.Parse(is.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("api.issuer.url: %q is not an http(s) URL", is.URL)
			}
		}
		if _, err := parseDurationIn("api.issuer.tokenLifetime", is.TokenLifetime, time.Minute, 24*time.Hour); err != nil {
			return err
		}
		if _, err := parseDurationIn("api.issuer.keyRotation", is.KeyRotation, time.Hour, 365*24*time.Hour); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for i, o := range a.OIDC {
		f := fmt.Sprintf("api.oidc[%d]", i)
		if o.Org == "" {
			return fmt.Errorf("%s.org: required (the organization whose issuer this is)", f)
		}
		u, err := url.Parse(o.Issuer)
		if err != nil || u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Host)) || u.Host == "" {
			return fmt.Errorf("%s.issuer: %q is not an https URL (http only on loopback)", f, o.Issuer)
		}
		if seen[o.Issuer] {
			return fmt.Errorf("%s.issuer: %s is configured twice", f, o.Issuer)
		}
		seen[o.Issuer] = true
		if o.Audience == "" {
			return fmt.Errorf("%s.audience: required (the aud claim the node's tokens carry)", f)
		}
		if _, err := system.ParseRoles(o.MaxRoles); err != nil {
			return fmt.Errorf("%s.maxRoles: %w", f, err)
		}
	}
	if rl := a.RateLimit; rl != nil {
		if rl.PerSecond < 0 || rl.Burst < 0 || rl.DailyQuota < 0 {
			return fmt.Errorf("api.rateLimit: perSecond, burst and dailyQuota must not be negative")
		}
	}
	return nil
}

// parseDurationIn parses s ("" gives 0) and checks it lies in [lo, hi].
func parseDurationIn(field, s string, lo, hi time.Duration) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration such as 10m", field, s)
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s: %s is outside %s to %s", field, d, lo, hi)
	}
	return d, nil
}
