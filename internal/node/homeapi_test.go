package node

import (
	"strings"
	"testing"
)

func TestHomeAPIValidate(t *testing.T) {
	good := HomeAPI{Auth: APIRequired, AnonymousRoles: []string{"read"}, ClientCertRoles: []string{"read", "write"},
		Issuer: &HomeIssuer{URL: "https://node0.org1.example:8545", TokenLifetime: "5m", KeyRotation: "12h"},
		OIDC:   []HomeOIDC{{Org: "org1", Issuer: "https://login.example.org/realms/org1", Audience: "charter"}, {Org: "org2", Issuer: "http://127.0.0.1:9000", Audience: "x"}}}
	if err := good.validate(); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(a *HomeAPI)
		want string
	}{
		{"auth", func(a *HomeAPI) { a.Auth = "maybe" }, "api.auth"},
		{"auth empty", func(a *HomeAPI) { a.Auth = "" }, "api.auth"},
		{"anonymous role", func(a *HomeAPI) { a.AnonymousRoles = []string{"reader"} }, "api.anonymousRoles"},
		{"cert role", func(a *HomeAPI) { a.ClientCertRoles = []string{"root"} }, "api.clientCertRoles"},
		{"issuer url", func(a *HomeAPI) { a.Issuer.URL = "ftp://x" }, "api.issuer.url"},
		{"lifetime", func(a *HomeAPI) { a.Issuer.TokenLifetime = "10s" }, "api.issuer.tokenLifetime"},
		{"lifetime syntax", func(a *HomeAPI) { a.Issuer.TokenLifetime = "ten" }, "api.issuer.tokenLifetime"},
		{"rotation", func(a *HomeAPI) { a.Issuer.KeyRotation = "1m" }, "api.issuer.keyRotation"},
		{"oidc org", func(a *HomeAPI) { a.OIDC[0].Org = "" }, "api.oidc[0].org"},
		{"oidc plain http", func(a *HomeAPI) { a.OIDC[0].Issuer = "http://login.example.org" }, "api.oidc[0].issuer"},
		{"oidc twice", func(a *HomeAPI) { a.OIDC[1].Issuer = a.OIDC[0].Issuer }, "api.oidc[1].issuer"},
		{"oidc audience", func(a *HomeAPI) { a.OIDC[1].Audience = "" }, "api.oidc[1].audience"},
		{"oidc roles", func(a *HomeAPI) { a.OIDC[1].MaxRoles = []string{"god"} }, "api.oidc[1].maxRoles"},
		{"rate", func(a *HomeAPI) { a.RateLimit = &HomeRateLimit{PerSecond: -1} }, "api.rateLimit"},
	} {
		a := good
		a.Issuer = &HomeIssuer{}
		*a.Issuer = *good.Issuer
		a.OIDC = append([]HomeOIDC(nil), good.OIDC...)
		tc.edit(&a)
		err := a.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

func TestInitAPIDefaults(t *testing.T) {
	on, off := true, false
	for _, tc := range []struct {
		opts     InitOptions
		auth     string
		tls      bool
		wantFail bool
	}{
		{InitOptions{}, APIRequired, true, false},
		{InitOptions{DevAccounts: true}, APIOpen, false, false},
		{InitOptions{DevAccounts: true, APIAuth: APIRequired}, APIRequired, true, false},
		{InitOptions{APITLS: &off}, APIRequired, false, false},
		{InitOptions{APIAuth: APIOpen, APITLS: &on}, APIOpen, true, false},
		{InitOptions{APIAuth: "closed"}, "", false, true},
	} {
		a, err := tc.opts.api()
		if tc.wantFail {
			if err == nil || !strings.Contains(err.Error(), "--api-auth") {
				t.Errorf("%+v: got %v, want an error naming --api-auth", tc.opts, err)
			}
			continue
		}
		if err != nil || a.Auth != tc.auth || a.TLS != tc.tls {
			t.Errorf("%+v: got %+v, %v; want auth %s tls %v", tc.opts, a, err, tc.auth, tc.tls)
		}
	}
}
