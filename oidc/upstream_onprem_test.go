package oidc

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/cache"
)

// TestUpstreamSignInOfOnPremDuplicate: a Microsoft sign-in of an Entra
// user that the cache hides as the copy of an on-premises AD user
// (onPremisesImmutableId = the AD objectGUID) stands for the AD account:
// the same subject, name and groups as when that person signs in with
// the AD password, never a second identity.
func TestUpstreamSignInOfOnPremDuplicate(t *testing.T) {
	f := newUpstreamFixture(t, byID, nil)
	guid := []byte{0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	adID := cache.FormatGUID(guid)
	commit := func(conn string, entries ...*cache.Entry) {
		t.Helper()
		g, err := f.store.NewGeneration(conn)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := g.Put(e); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Commit(context.Background(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	commit("onprem",
		&cache.Entry{ID: adID, DN: "cn=Ann Onprem,ou=people,dc=corp", Kind: cache.KindUser, Addresses: []string{"ann@contoso.example"},
			Attrs: []cache.Attr{{Name: "objectGUID", Values: []string{string(guid)}}, {Name: "displayName", Values: []string{"Ann On-Premises"}}}},
		&cache.Entry{ID: "g-ad", DN: "cn=ad-staff,dc=corp", Kind: cache.KindGroup, Members: []string{"cn=Ann Onprem,ou=people,dc=corp"},
			Attrs: []cache.Attr{{Name: "cn", Values: []string{"ad-staff"}}}})
	commit("m365",
		&cache.Entry{ID: "u-ann", DN: "cn=ann,o=m365", Kind: cache.KindUser, Addresses: []string{"ann@contoso.example"},
			Attrs: []cache.Attr{{Name: "displayName", Values: []string{"Ann Synced"}},
				{Name: "onPremisesImmutableId", Values: []string{base64.StdEncoding.EncodeToString(guid)}}}})

	pkce := oauth2.GenerateVerifier()
	resp, body, _ := f.via(t, browser(), f.conf.AuthCodeURL("s1", oauth2.S256ChallengeOption(pkce), gooidc.Nonce("n")))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %s %s", resp.Status, body)
	}
	tok, err := f.conf.Exchange(context.Background(), codeFrom(t, resp, "s1"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	provider, err := gooidc.NewProvider(context.Background(), f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&gooidc.Config{ClientID: "wiki"}).Verify(context.Background(), tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Name   string   `json:"name"`
		Groups []string `json:"groups"`
	}
	_ = idt.Claims(&c)
	if idt.Subject != adID || c.Name != "Ann On-Premises" || len(c.Groups) != 1 || c.Groups[0] != "ad-staff" {
		t.Fatalf("id token: sub %s %+v, want the AD account %s", idt.Subject, c, adID)
	}
}
