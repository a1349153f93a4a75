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

	"github.com/dirgate/dirgate/state"
)

// authRequest is an authorization request waiting for the user to sign in.
type authRequest = state.SignInRequest

// upstreamLogin is a round trip through an upstream, keyed by its state.
type upstreamLogin = state.UpstreamLogin

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

// grants keeps the sign-ins in progress (pending authorization requests,
// round trips through an upstream) in the sign-ins store, and everything it
// issues in the grants store: codes, refresh tokens with their families,
// revoked access tokens. Access tokens are signed JWTs. The stores are
// shared by a cluster's replicas, so each step of a sign-in may reach
// another replica than the one before. The browser holds the tokens; the
// stores are keyed by their hashes.
type grants struct {
	store   state.Grants
	signIns state.SignIns
	now     func() time.Time
}

func newGrants(store state.Grants, signIns state.SignIns, now func() time.Time) *grants {
	return &grants{store: store, signIns: signIns, now: now}
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

// putRequest stores r and returns its id; state.ErrFull when too many
// are pending.
func (g *grants) putRequest(ctx context.Context, r *authRequest) (string, error) {
	id := token(18)
	return id, g.storeRequest(ctx, id, r)
}

// storeRequest stores r under id: a new one, or one taken that goes on.
func (g *grants) storeRequest(ctx context.Context, id string, r *authRequest) error {
	return g.signIns.PutRequest(ctx, hashToken(id), *r, g.now())
}

// request returns the pending request id, nil when it is unknown, expired
// or ended.
func (g *grants) request(ctx context.Context, id string) (*authRequest, error) {
	return pendingOf(g.signIns.Request(ctx, hashToken(id), g.now()))
}

// takeRequest ends the pending request id and returns it, nil when it is
// unknown, expired or already ended (on any replica): a request ends with
// one code.
func (g *grants) takeRequest(ctx context.Context, id string) (*authRequest, error) {
	return pendingOf(g.signIns.TakeRequest(ctx, hashToken(id), g.now()))
}

// putUpstreamLogin stores u under a new state, which it returns.
func (g *grants) putUpstreamLogin(ctx context.Context, u *upstreamLogin) (string, error) {
	st := token(24)
	u.Expires = g.now().Add(upstreamTTL)
	return st, g.signIns.PutUpstreamLogin(ctx, hashToken(st), *u, g.now())
}

// takeUpstreamLogin ends the round trip of st and returns it, nil when it
// is unknown, expired or already ended.
func (g *grants) takeUpstreamLogin(ctx context.Context, st string) (*upstreamLogin, error) {
	return pendingOf(g.signIns.TakeUpstreamLogin(ctx, hashToken(st), g.now()))
}

// pendingOf turns a store's answer into a pointer, nil when not found.
func pendingOf[T any](v T, err error) (*T, error) {
	switch {
	case errors.Is(err, state.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &v, nil
}

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

// How often expired grants, and expired sign-ins in progress, are
// removed. Sign-ins last minutes and anyone can start one, so they are
// swept more often.
const (
	sweepEvery       = time.Hour
	signInSweepEvery = time.Minute
)

// sweep removes expired sign-ins every signInEvery and expired grants every
// every, until ctx ends. A family revocation is kept for familyTTL, the
// longest a token of the family can still be issued and live after it.
func (g *grants) sweep(ctx context.Context, every, signInEvery, familyTTL time.Duration, log *slog.Logger) {
	grantsT, signInsT := time.NewTicker(every), time.NewTicker(signInEvery)
	defer grantsT.Stop()
	defer signInsT.Stop()
	for {
		var what string
		var n int
		var err error
		select {
		case <-ctx.Done():
			return
		case <-grantsT.C:
			what = "grants"
			n, err = g.store.SweepExpired(ctx, g.now(), familyTTL)
		case <-signInsT.C:
			what = "sign-ins"
			n, err = g.signIns.SweepSignIns(ctx, g.now())
		}
		if err != nil {
			log.Error("oidc sweep expired "+what, "err", err)
		} else if n > 0 {
			log.Debug("oidc swept expired "+what, "count", n)
		}
	}
}
