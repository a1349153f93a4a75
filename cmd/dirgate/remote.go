package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/dirgate/dirgate/admin"
	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
)

// The CLI talks to a running server through its admin API: the server
// holds the cache, which one process at a time may open.

// errNoServer is a failure to reach the admin API at all, as opposed to an
// answer refusing the request.
var errNoServer = errors.New("no admin API answers")

func adminURL(cfg *config.Config, path string) string {
	scheme := "http"
	if cfg.Admin.TLS != nil {
		scheme = "https"
	}
	return (&url.URL{Scheme: scheme, Host: cfg.Admin.Listen, Path: path}).String()
}

// adminCall sends one API request and decodes the JSON answer into out.
// It returns the HTTP status.
func adminCall(ctx context.Context, cfg *config.Config, method, path string, body, out any) (int, error) {
	var rd bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&rd).Encode(body); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, adminURL(cfg, path), &rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Admin.Token.Reveal())
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Minute}
	if cfg.Admin.TLS != nil {
		// The CLI runs on the server's host; the admin certificate is the
		// server's own, often without a name for the loopback address.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w at %s: %w", errNoServer, cfg.Admin.Listen, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return resp.StatusCode, fmt.Errorf("the admin API at %s refused the token", cfg.Admin.Listen)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("admin API answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func remoteStatus(ctx context.Context, cfg *config.Config) ([]dirsync.ConnectorStatus, error) {
	var ans struct {
		Connectors []admin.StatusJSON `json:"connectors"`
	}
	code, err := adminCall(ctx, cfg, http.MethodGet, "/api/v1/connectors", nil, &ans)
	rc := ans.Connectors
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("admin API answered %d", code)
	}
	out := make([]dirsync.ConnectorStatus, len(rc))
	for i, c := range rc {
		out[i] = dirsync.ConnectorStatus{Name: c.Name, Type: c.Type, Description: c.Description, Host: c.Host, AlternateHost: c.AlternateHost,
			Schedule: c.Schedule, Running: c.Running, State: c.State, LastRun: c.LastRun, Users: c.Users, Groups: c.Groups}
		if c.NextRun != nil {
			out[i].NextRun = *c.NextRun
		}
		if c.LastSuccess != nil {
			out[i].LastSuccess = *c.LastSuccess
		}
	}
	return out, nil
}

type remoteItem struct {
	ID, DN, Kind string
}

type remoteSyncAnswer struct {
	Error   string `json:"error"`
	Blocked string `json:"blocked"`
	Result  *struct {
		cache.Run
		Plan struct {
			Adds    []remoteItem `json:"adds"`
			Updates []remoteItem `json:"updates"`
			Deletes []remoteItem `json:"deletes"`
		} `json:"plan"`
	} `json:"result"`
}

// remoteSync asks the running server to sync name.
func remoteSync(ctx context.Context, cfg *config.Config, name string, o dirsync.Options) (*dirsync.Result, error) {
	body := map[string]any{"dry_run": o.DryRun, "force": o.Force, "mode": o.Mode}
	var ans remoteSyncAnswer
	code, err := adminCall(ctx, cfg, http.MethodPost, "/api/v1/connectors/"+url.PathEscape(name)+"/sync", body, &ans)
	if err != nil {
		return nil, err
	}
	var res *dirsync.Result
	if ans.Result != nil {
		res = &dirsync.Result{Run: ans.Result.Run}
		conv := func(in []remoteItem) []dirsync.PlanItem {
			out := make([]dirsync.PlanItem, len(in))
			for i, it := range in {
				out[i] = dirsync.PlanItem{ID: it.ID, DN: it.DN, Kind: kindFromName(it.Kind)}
			}
			return out
		}
		res.Plan = dirsync.Plan{Adds: conv(ans.Result.Plan.Adds), Updates: conv(ans.Result.Plan.Updates), Deletes: conv(ans.Result.Plan.Deletes)}
	}
	switch {
	case ans.Blocked != "":
		return res, &dirsync.BlockedError{Connector: name, Reason: ans.Blocked}
	case code >= 300 || ans.Error != "":
		return res, fmt.Errorf("sync %s: %s (admin API %d)", name, ans.Error, code)
	}
	return res, nil
}

func kindFromName(s string) cache.Kind {
	switch s {
	case "user":
		return cache.KindUser
	case "group":
		return cache.KindGroup
	}
	return 0
}

// remoteTest asks the running server to test the connector name.
func remoteTest(ctx context.Context, cfg *config.Config, name string) (*testconn.Report, error) {
	var ans struct {
		admin.ReportJSON
		Error string `json:"error"`
	}
	code, err := adminCall(ctx, cfg, http.MethodPost, "/api/v1/connectors/"+url.PathEscape(name)+"/test", nil, &ans)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("test connection %s: %s (admin API %d)", name, ans.Error, code)
	}
	r := &testconn.Report{Connector: ans.Connector, OK: ans.OK, Steps: make([]testconn.Step, len(ans.Steps))}
	for i, s := range ans.Steps {
		r.Steps[i] = testconn.Step{Host: s.Host, Name: s.Name, OK: s.OK, Skipped: s.Skipped,
			Duration: time.Duration(s.DurationMS * float64(time.Millisecond)), Detail: s.Detail, Fix: s.Fix}
	}
	return r, nil
}
