package oidc

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/state/pgstate/pgtest"
)

// replicas replaces the fixture's provider by two providers keeping their
// state in one PostgreSQL schema, as two replicas behind one issuer URL;
// the fixture serves the first until the test switches with f.live. Each
// has its own directory cache, the second a copy of the first's (as the
// change log keeps it); the second's is returned.
func (f *fixture) replicas(t *testing.T) (a, b *Provider, bCache *cache.Store) {
	t.Helper()
	db := pgtest.New(t)
	bCache, err := cache.Open(t.TempDir(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bCache.Close() })
	byConn := map[string][]*cache.Entry{}
	err = f.store.View(t.Context(), func(v *cache.View) error {
		return v.Scan("", func(e *cache.Entry) (bool, error) {
			byConn[e.Connector] = append(byConn[e.Connector], e)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for conn, entries := range byConn {
		g, err := bCache.NewGeneration(conn)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := g.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Commit(t.Context(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(dir *cache.Store) *Provider {
		p, err := New(f.p.cfg, dir, db.Store(t, "").Stores(), f.p.signIn, f.p.log)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b = mk(f.store), mk(bCache)
	f.p = a
	f.live.Store(a)
	return a, b, bCache
}

// verifiesWith checks raw against the key set a provider serves, as a
// relying party does: by the token's kid.
func verifiesWith(set jose.JSONWebKeySet, raw string) error {
	tok, err := jose.ParseSignedCompact(raw, signingAlgs)
	if err != nil {
		return err
	}
	keys := set.Key(tok.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return errors.New("kid " + tok.Signatures[0].Header.KeyID + " is not in the JWKS")
	}
	_, err = tok.Verify(keys[0])
	return err
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	slices.Sort(out)
	return out
}

// TestKeysAcrossReplicas: two replicas on one PostgreSQL schema, each
// reloading the key set on its own schedule, through rotations: a token
// signed on either verifies with the other's JWKS at every moment, and
// once both reloaded they serve the same JWKS.
func TestKeysAcrossReplicas(t *testing.T) {
	f := newFixture(t)
	a, b, _ := f.replicas(t)
	c := &clock{t: time.Now()}
	a.now, b.now = c.now, c.now
	ctx := t.Context()
	reload := a.keys.reload
	if reload <= 0 || reload >= a.keys.delay {
		t.Fatalf("reload interval %v, publication delay %v: the delay must be longer", reload, a.keys.delay)
	}
	signed := map[string]bool{} // kids seen signing
	// Three rotation periods and the keep time, in steps of half a reload
	// interval; the replicas reload in turn, each once per interval.
	steps := int((3*a.cfg.KeyRotation + a.keys.keep) / (reload / 2))
	for i := range steps {
		c.add(reload / 2)
		on := []*Provider{a, b}[i%2]
		if err := on.keys.tick(ctx); err != nil {
			t.Fatal(err)
		}
		for _, alg := range signingAlgs {
			for _, pair := range [][2]*Provider{{a, b}, {b, a}} {
				raw, err := pair[0].keys.sign(alg, map[string]any{"sub": "x"})
				if err != nil {
					t.Fatal(err)
				}
				signed[jwsHeader(t, raw).KeyID] = true
				if err := verifiesWith(pair[1].keys.jwks(), raw); err != nil {
					t.Fatalf("at %v: a %s token signed on one replica does not verify with the other's JWKS: %v",
						time.Duration(i+1)*reload/2, alg, err)
				}
			}
		}
		if i%20 == 19 {
			if err := a.keys.tick(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.keys.tick(ctx); err != nil {
				t.Fatal(err)
			}
			if ka, kb := kids(a.keys.jwks()), kids(b.keys.jwks()); !slices.Equal(ka, kb) {
				t.Fatalf("after both reloaded the replicas serve different JWKS: %v and %v", ka, kb)
			}
		}
	}
	if want := 4 * len(signingAlgs); len(signed) < want {
		t.Errorf("%d keys signed in three rotation periods, want %d: the test did not rotate", len(signed), want)
	}
	for _, k := range a.keys.keys {
		if !k.Retired.IsZero() && c.now().Sub(k.Retired) > a.keys.keep+reload {
			t.Errorf("key %s retired %v ago is still published (keep %v)", k.ID, c.now().Sub(k.Retired), a.keys.keep)
		}
	}
	if n := len(a.keys.jwks().Keys); n >= len(signed) {
		t.Errorf("the JWKS holds %d keys of the %d that signed: no retired key was dropped", n, len(signed))
	}
}

// TestCodeRedeemedOnTwoReplicas: a code redeemed on one replica and then
// on the other is refused there, and the replay revokes what the first
// redemption issued: its access token and its refresh tokens.
func TestCodeRedeemedOnTwoReplicas(t *testing.T) {
	f := newFixture(t)
	a, b, _ := f.replicas(t)
	ctx := context.Background()
	rp, err := gooidc.NewProvider(ctx, f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	pkce := oauth2.GenerateVerifier()
	resp, _ := f.signInVia(t, browser(), f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce), gooidc.Nonce("n")), "alice@x.test", "pw")
	code := codeFrom(t, resp, "s")
	tok, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rp.Verifier(&gooidc.Config{ClientID: "wiki"}).Verify(ctx, tok.Extra("id_token").(string)); err != nil {
		t.Fatal(err)
	}
	f.live.Store(b)
	_, err = f.conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("the code redeemed again on the other replica: %v, want invalid_grant", err)
	}
	for _, p := range []*Provider{a, b} {
		f.live.Store(p)
		if _, err := rp.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Error("the access token of a code replayed on another replica still works")
		}
		if _, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
			t.Error("the refresh token of a code replayed on another replica still works")
		}
	}
}

// TestStoreUnreachableFailsClosed: with the state store's database cut
// away, the token endpoint answers 503 temporarily_unavailable and the
// login page a 503 page, issuing nothing; once the database is back the
// same provider serves again, the code held during the outage included.
func TestStoreUnreachableFailsClosed(t *testing.T) {
	f := newFixture(t)
	db := pgtest.New(t)
	proxy := db.NewProxy(t)
	p, err := New(f.p.cfg, f.store, db.Store(t, proxy.Addr()).Stores(), f.p.signIn, f.p.log)
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	f.live.Store(p)
	ctx := context.Background()
	tok := f.signInAs(t, f.conf)
	pkce := oauth2.GenerateVerifier()
	resp, _ := f.signInVia(t, browser(), f.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(pkce)), "alice@x.test", "pw")
	code := codeFrom(t, resp, "s")

	proxy.Cut()
	unavailable := func(what string, err error) {
		t.Helper()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusServiceUnavailable || re.ErrorCode != "temporarily_unavailable" {
			t.Errorf("%s with the database cut: %v, want 503 temporarily_unavailable", what, err)
		}
	}
	_, err = f.conf.Exchange(ctx, code, oauth2.VerifierOption(pkce))
	unavailable("code exchange", err)
	_, err = f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	unavailable("refresh", err)
	// The sign-in's pending request cannot be stored: the login page is
	// not even shown.
	resp, body, _ := follow(t, browser(), f.conf.AuthCodeURL("s2"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Location") != "" || !strings.Contains(body, "Temporarily unavailable") {
		t.Errorf("sign-in with the database cut: %d, location %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}

	proxy.Restore()
	if _, err := f.conf.Exchange(ctx, code, oauth2.VerifierOption(pkce)); err != nil {
		t.Errorf("the code held during the outage, after it: %v", err)
	}
	if _, err := f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err != nil {
		t.Errorf("refresh after the outage: %v", err)
	}
	f.signInAs(t, f.conf)
}

// TestAccountDeletedOnOneReplica: refresh grants and code exchanges are
// decided by the replica's own directory cache, which the change log
// updates: once a replica's cache no longer holds the account, that
// replica refuses the account's refresh token and code, while a replica
// that has not applied the deletion yet still serves it.
func TestAccountDeletedOnOneReplica(t *testing.T) {
	f := newFixture(t)
	a, b, bCache := f.replicas(t)
	ctx := context.Background()
	tok := f.signInAs(t, f.conf)
	resp, _ := f.signInVia(t, browser(), f.conf.AuthCodeURL("s"), "alice@x.test", "pw")
	code := codeFrom(t, resp, "s")
	del := func(c *cache.Store) {
		t.Helper()
		if _, err := c.ApplyDelta(ctx, "corp", &cache.Delta{Deletes: []string{"u-alice"}}, nil, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	refresh := func(on *Provider, rt string) (*oauth2.Token, error) {
		f.live.Store(on)
		return f.conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	}
	refused := func(what string, err error) {
		t.Helper()
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("%s: %v, want invalid_grant", what, err)
		}
	}
	del(bCache)
	_, err := refresh(b, tok.RefreshToken)
	refused("refresh of an account deleted from the replica's cache", err)
	_, err = f.conf.Exchange(ctx, code)
	refused("code of an account deleted from the replica's cache", err)
	next, err := refresh(a, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh on a replica that has not applied the deletion: %v", err)
	}
	del(f.store)
	_, err = refresh(a, next.RefreshToken)
	refused("refresh once the deletion reached the replica", err)
}
