package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
)

// ErrNoServer is a failure to reach the admin API at all, as opposed to an
// answer refusing the request.
var ErrNoServer = errors.New("no admin API answers")

// Client calls the admin API of a running dirgate; the CLI uses it while
// the server holds the cache. It decodes the very types the API serves.
type Client struct {
	base  string // scheme://host
	host  string // for messages
	token string
	hc    *http.Client
}

// NewClient returns a client of the admin API listening at base (scheme and
// host, e.g. https://127.0.0.1:8443) that sends token. hc carries the
// requests (timeouts, TLS); nil means http.DefaultClient.
func NewClient(base *url.URL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: (&url.URL{Scheme: base.Scheme, Host: base.Host}).String(), host: base.Host, token: token, hc: hc}
}

// connectorPath is the API path of connector name, plus op.
func connectorPath(name, op string) string {
	return "/api/v1/connectors/" + url.PathEscape(name) + "/" + op
}

// errorAnswer is the error field every failing answer carries.
type errorAnswer struct {
	Error string `json:"error"`
}

// call sends one request (body as JSON, if any) and returns the answer's
// HTTP status and body.
func (c *Client) call(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&rd).Encode(body); err != nil {
			return 0, nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, &rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w at %s: %w", ErrNoServer, c.host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return resp.StatusCode, nil, fmt.Errorf("the admin API at %s refused the token", c.host)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("admin API answer: %w", err)
	}
	return resp.StatusCode, b, nil
}

// decode reads an answer's body into out.
func decode(b []byte, out any) error {
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin API answer: %w", err)
	}
	return nil
}

// Status returns the status of every connector.
func (c *Client) Status(ctx context.Context) ([]dirsync.ConnectorStatus, error) {
	code, b, err := c.call(ctx, http.MethodGet, "/api/v1/connectors", nil)
	if err != nil {
		return nil, err
	}
	var ans connectorsAnswer
	if err := decode(b, &ans); err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("admin API answered %d", code)
	}
	return ans.Connectors, nil
}

// Sync runs a sync of connector name on the server and waits for it. Like
// dirsync.Scheduler.SyncNow, it returns a *dirsync.BlockedError (and the
// blocked plan) when the safety rules stop the run.
func (c *Client) Sync(ctx context.Context, name string, o dirsync.Options) (*dirsync.Result, error) {
	body := syncOptions{DryRun: o.DryRun, Mode: o.Mode, Force: o.Force}
	code, b, err := c.call(ctx, http.MethodPost, connectorPath(name, "sync"), body)
	if err != nil {
		return nil, err
	}
	var ans syncResponse
	if err := decode(b, &ans); err != nil {
		return nil, err
	}
	res := ans.Result.result()
	switch {
	case ans.Blocked != "":
		return res, &dirsync.BlockedError{Connector: name, Reason: ans.Blocked}
	case code >= 300 || ans.Error != "":
		return res, fmt.Errorf("sync %s: %s (admin API %d)", name, ans.Error, code)
	}
	return res, nil
}

// TestConnection runs Test Connection of connector name on the server.
func (c *Client) TestConnection(ctx context.Context, name string) (*testconn.Report, error) {
	code, b, err := c.call(ctx, http.MethodPost, connectorPath(name, "test"), nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		var ans errorAnswer
		if err := decode(b, &ans); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("test connection %s: %s (admin API %d)", name, ans.Error, code)
	}
	var rep testconn.Report
	if err := decode(b, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
