package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// expect sends one request and decodes an answer with status want into
// out; any other answer is an error carrying the API's message.
func (c *Client) expect(ctx context.Context, what, method, path string, body any, want int, out any) error {
	code, b, err := c.call(ctx, method, path, body)
	if err != nil {
		return err
	}
	if code != want {
		var ans errorAnswer
		if err := decode(b, &ans); err != nil {
			return fmt.Errorf("%s: admin API answered %d", what, code)
		}
		return fmt.Errorf("%s: %s (admin API %d)", what, ans.Error, code)
	}
	return decode(b, out)
}

// Agents lists the enrolled sync agents, revoked ones included, with
// their connections to the server that answers.
func (c *Client) Agents(ctx context.Context) ([]AgentStatus, error) {
	var ans agentsAnswer
	if err := c.expect(ctx, "list agents", http.MethodGet, "/api/v1/agents", nil, http.StatusOK, &ans); err != nil {
		return nil, err
	}
	return ans.Agents, nil
}

// CreateEnrollToken makes a one-time enrollment token for an agent of
// connector, valid for ttl (zero: the hub's default, 1h).
func (c *Client) CreateEnrollToken(ctx context.Context, connector string, ttl time.Duration) (*EnrollToken, error) {
	req := tokenRequest{Connector: connector}
	if ttl != 0 {
		req.TTL = ttl.String()
	}
	var tok EnrollToken
	if err := c.expect(ctx, "create enrollment token", http.MethodPost, "/api/v1/agents/tokens", req, http.StatusCreated, &tok); err != nil {
		return nil, err
	}
	return &tok, nil
}

// RevokeAgent revokes agent id: its connections are cut and it can no
// longer connect.
func (c *Client) RevokeAgent(ctx context.Context, id string) error {
	var ans revokeAnswer
	return c.expect(ctx, "revoke agent "+id, http.MethodPost, "/api/v1/agents/"+url.PathEscape(id)+"/revoke", nil, http.StatusOK, &ans)
}
