package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/dirgate/dirgate/internal/pending"
	"github.com/dirgate/dirgate/state"
)

// authRequest is an authorization request waiting for the user to sign in.
type authRequest struct {
	ClientID      string
	RedirectURI   string
	State         string
	Nonce         string
	Scope         []string
	Challenge     string // PKCE S256 code_challenge, "" when none
	CSRF          string
	Expires       time.Time
	FailedLogins  int
	ClientName    string
	LoginHint     string
	ResponseMode  string
	RequestedAuth time.Time
}

// codeGrant is an issued authorization code.
type codeGrant = state.Code

// refreshGrant is a stored refresh token (see state.Refresh).
type refreshGrant = state.Refresh

// refreshUse is the outcome of presenting a refresh token.
type refreshUse = state.RefreshOutcome

const (
	refreshInvalid     = state.RefreshInvalid     // unknown, expired or revoked
	refreshOtherClient = state.RefreshOtherClient // issued to another client; left alone
	refreshLive        = state.RefreshLive        // spent now: the caller issues its successor
	refreshReused      = state.RefreshReused      // spent before: its family is now revoked
)

// grants keeps pending authorization requests in memory (they live for
// minutes and belong to one browser's round trip) and everything it issues
// in the grants store: codes, refresh tokens with their families, revoked
// access tokens. Access tokens are signed JWTs.
type grants struct {
	store state.Grants
	now   func() time.Time

	// requests are swept in bulk (internal/pending), so a flood of
	// unfinished sign-ins costs a refusal each, not a walk of the table.
	requests *pending.Table[*authRequest]
}

func newGrants(store state.Grants, now func() time.Time) *grants {
	return &grants{store: store, now: now, requests: pending.New[*authRequest](maxPending, 0)}
}

// token returns n random bytes, URL-safe encoded.
func token(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("oidc: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	s := sha256.Sum256([]byte(t))
	return hex.EncodeToString(s[:])
}

// maxPending bounds the pending requests against floods of unfinished
// sign-ins.
const maxPending = state.MaxPending

func (g *grants) putRequest(r *authRequest) (string, bool) {
	id := token(18)
	return id, g.requests.Put(g.now(), id, "", r, r.Expires)
}

func (g *grants) request(id string) (*authRequest, bool) { return g.requests.Get(g.now(), id) }

func (g *grants) dropRequest(id string) { g.requests.Delete(id) }

// putCode stores c and returns its code; state.ErrFull when too many are
// pending.
func (g *grants) putCode(ctx context.Context, c *codeGrant) (string, error) {
	code := token(32)
	return code, g.store.PutCode(ctx, hashToken(code), *c, g.now())
}

// redeem spends a code and returns its grant, nil when it is unknown or
// expired; a second redemption returns the grant with replay=true so the
// caller can revoke what the first one issued (RFC 6749 4.1.2).
func (g *grants) redeem(ctx context.Context, code string) (c *codeGrant, replay bool, err error) {
	got, err := g.store.RedeemCode(ctx, hashToken(code), g.now())
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil, false, nil
	case errors.Is(err, state.ErrReplayed):
		return &got, true, nil
	case err != nil:
		return nil, false, err
	}
	return &got, false, nil
}

// issued records the access token the exchange of code issued, for a
// replay to revoke.
func (g *grants) issued(ctx context.Context, code, jti string, exp time.Time) error {
	return g.store.SetCodeAccess(ctx, hashToken(code), jti, exp)
}

func (g *grants) revokeAccess(ctx context.Context, jti string, exp time.Time) error {
	if jti == "" {
		return nil
	}
	return g.store.RevokeAccess(ctx, jti, exp)
}

// accessRevoked tells whether jti was revoked; a store failure counts as
// revoked, since the token cannot be shown to be good.
func (g *grants) accessRevoked(ctx context.Context, jti string) bool {
	revoked, err := g.store.AccessRevoked(ctx, jti)
	return revoked || err != nil
}

// putRefresh stores a new refresh token of r.Family.
func (g *grants) putRefresh(ctx context.Context, r refreshGrant) (string, error) {
	t := token(32)
	return t, g.store.PutRefresh(ctx, hashToken(t), r)
}

// refresh returns the live refresh grant of t, nil when t is unknown,
// expired, rotated or revoked.
func (g *grants) refresh(ctx context.Context, t string) (*refreshGrant, error) {
	r, err := g.store.Refresh(ctx, hashToken(t), g.now())
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil, nil
	case err != nil || r.Rotated:
		return nil, err
	}
	return &r, nil
}

// use spends the refresh token t presented by client: a live token is
// marked rotated and returned for the caller to issue its successor in the
// same family; a rotated one revokes its family, the successor included.
func (g *grants) use(ctx context.Context, t, client string) (*refreshGrant, refreshUse, error) {
	r, use, err := g.store.RotateRefresh(ctx, hashToken(t), client, g.now())
	if err != nil || (use != refreshLive && use != refreshReused) {
		return nil, use, err
	}
	return &r, use, nil
}

// revokeFamily revokes every refresh token of family, including the ones
// not yet issued.
func (g *grants) revokeFamily(ctx context.Context, family string) error {
	return g.store.RevokeFamily(ctx, family, g.now())
}

// sweepEvery is how often expired grants are removed.
const sweepEvery = time.Hour

// sweep removes expired grants every interval until ctx ends. A family
// revocation is kept for familyTTL, the longest a token of the family can
// still be issued and live after it.
func (g *grants) sweep(ctx context.Context, every, familyTTL time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := g.store.SweepExpired(ctx, g.now(), familyTTL); err != nil {
				log.Error("oidc sweep expired grants", "err", err)
			} else if n > 0 {
				log.Debug("oidc swept expired grants", "count", n)
			}
		}
	}
}
