package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// restAPI is one of the node's REST resources (under /api/v1) reached
// with the access flags.
type restAPI struct {
	base string // http(s)://host:port/api/v1/...
	a    *apiAccess
	// hints follow the node's detail for a status (what to do next).
	hints map[int]string
	// absent completes "the node at URL ..." when it answers 404 with no
	// problem document (a node without the resource).
	absent string
}

// rest is the resource at path of the node --rpc names.
func (nf *nodeFlags) rest(path string) (*restAPI, error) {
	a, err := nf.access()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(*nf.rpc)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("--rpc %q is not a URL; give the node's API URL, e.g. %s", *nf.rpc, defaultRPC)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("--rpc %q: want http://, https://, ws:// or wss://", *nf.rpc)
	}
	u.Path, u.RawQuery, u.Fragment = path, "", ""
	return &restAPI{base: u.String(), a: a, absent: "does not serve " + path}, nil
}

// do sends one request (body nil: none) and returns the answer's body for
// a 2xx status; any other status is an error with the node's detail.
func (s *restAPI) do(method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if s.a.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.a.token)
	}
	resp, err := s.a.http.Do(req)
	if err != nil {
		if e := s.a.runError(err); isAccessError(e) {
			return nil, e
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the node at %s: %s; is it running, and is --rpc right?", redactURL(s.base), s.a.scrub(err.Error()))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, s.a.runError(err)
	}
	if resp.StatusCode/100 == 2 {
		return raw, nil
	}
	var p struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(raw, &p) == nil && p.Detail != "" {
		detail := s.a.scrub(p.Detail)
		if hint, ok := s.hints[resp.StatusCode]; ok {
			return nil, fmt.Errorf("%s; %s", detail, hint)
		}
		return nil, fmt.Errorf("the node refused (%d): %s", resp.StatusCode, detail)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("the node at %s %s (%s): is it a Charter node of this version?", redactURL(s.base), s.absent, resp.Status)
	}
	return nil, fmt.Errorf("the node answered %s: %s", resp.Status, shorten(strings.TrimSpace(s.a.scrub(string(raw))), 300))
}
