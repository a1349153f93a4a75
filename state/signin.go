package state

import (
	"context"
	"slices"
	"time"

	"github.com/dirgate/dirgate/internal/pending"
)

// SignInRequest is an authorization request waiting for the user to sign
// in: stored when the login page is first shown, read by each post of its
// forms, and taken by the one that ends it with a code.
type SignInRequest struct {
	ClientID    string    `json:"client_id"`
	ClientName  string    `json:"client_name"`
	RedirectURI string    `json:"redirect_uri"`
	State       string    `json:"state"`
	Nonce       string    `json:"nonce"`
	Scope       []string  `json:"scope"`
	Challenge   string    `json:"challenge"` // PKCE S256 code_challenge, "" when none
	CSRF        string    `json:"csrf"`      // the login page's token, also in a cookie
	LoginHint   string    `json:"login_hint"`
	Expires     time.Time `json:"expires"`
}

// UpstreamLogin is a round trip through an upstream OpenID provider ("Sign
// in with Microsoft"), from the redirect to it until its callback.
type UpstreamLogin struct {
	Request  string    `json:"request"`  // the id of the SignInRequest it continues
	Upstream string    `json:"upstream"` // the upstream's name
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"` // PKCE code verifier
	Expires  time.Time `json:"expires"`
}

// SignIns holds the sign-ins in progress. They live for minutes, but the
// browser's next request may reach another replica than the one that
// started them, so a cluster shares them. Keys are chosen by the caller
// (hashes of the tokens the browser holds); records expire at their
// Expires.
type SignIns interface {
	// PutRequest stores r under key; ErrFull when too many are pending.
	PutRequest(ctx context.Context, key string, r SignInRequest, now time.Time) error
	// Request returns the request under key; ErrNotFound when unknown,
	// expired or taken.
	Request(ctx context.Context, key string, now time.Time) (SignInRequest, error)
	// TakeRequest removes the request under key and returns it: of
	// concurrent takes, wherever made, one gets it and the others
	// ErrNotFound, as after its expiry.
	TakeRequest(ctx context.Context, key string, now time.Time) (SignInRequest, error)
	// PutUpstreamLogin stores u under key; ErrFull when too many are
	// pending.
	PutUpstreamLogin(ctx context.Context, key string, u UpstreamLogin, now time.Time) error
	// TakeUpstreamLogin removes the round trip under key and returns it,
	// once, as TakeRequest.
	TakeUpstreamLogin(ctx context.Context, key string, now time.Time) (UpstreamLogin, error)
	// SweepSignIns removes expired records and returns how many; a store
	// that sweeps as it fills may have none left to remove.
	SweepSignIns(ctx context.Context, now time.Time) (int, error)
}

// MemorySignIns is SignIns in memory, for one process. Anyone can start a
// sign-in, so each table holds at most MaxPending records and is swept in
// bulk as it fills (internal/pending): a flood of unfinished sign-ins costs
// a refusal each, not a walk of the table.
type MemorySignIns struct {
	requests *pending.Table[SignInRequest]
	upstream *pending.Table[UpstreamLogin]
}

// NewMemorySignIns returns empty tables.
func NewMemorySignIns() *MemorySignIns {
	return &MemorySignIns{requests: pending.New[SignInRequest](MaxPending, 0), upstream: pending.New[UpstreamLogin](MaxPending, 0)}
}

// PutRequest implements SignIns.
func (m *MemorySignIns) PutRequest(_ context.Context, key string, r SignInRequest, now time.Time) error {
	r.Scope = slices.Clone(r.Scope)
	return full(m.requests.Put(now, key, "", r, r.Expires))
}

// Request implements SignIns.
func (m *MemorySignIns) Request(_ context.Context, key string, now time.Time) (SignInRequest, error) {
	return found(m.requests.Get(now, key))
}

// TakeRequest implements SignIns.
func (m *MemorySignIns) TakeRequest(_ context.Context, key string, now time.Time) (SignInRequest, error) {
	return found(m.requests.Take(now, key))
}

// PutUpstreamLogin implements SignIns.
func (m *MemorySignIns) PutUpstreamLogin(_ context.Context, key string, u UpstreamLogin, now time.Time) error {
	return full(m.upstream.Put(now, key, "", u, u.Expires))
}

// TakeUpstreamLogin implements SignIns.
func (m *MemorySignIns) TakeUpstreamLogin(_ context.Context, key string, now time.Time) (UpstreamLogin, error) {
	return found(m.upstream.Take(now, key))
}

// SweepSignIns implements SignIns: the tables sweep themselves as they
// fill, so there is nothing left to do here.
func (m *MemorySignIns) SweepSignIns(context.Context, time.Time) (int, error) { return 0, nil }

func full(ok bool) error {
	if !ok {
		return ErrFull
	}
	return nil
}

func found[T any](v T, ok bool) (T, error) {
	if !ok {
		return v, ErrNotFound
	}
	return v, nil
}
