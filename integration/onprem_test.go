package integration

import (
	"encoding/base64"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/internal/fakeentra"
	dirsync "github.com/dirgate/dirgate/sync"
)

// entraConnector describes a fake tenant with dirgate's app registered.
func entraConnector(t *testing.T, ft *fakeentra.Tenant, name string) string {
	t.Helper()
	app := fakeentra.App{ClientID: "00000000-0000-4000-8000-0000000000a1", Secret: "s3cret-value", Roles: []string{"User.Read.All", "GroupMember.Read.All"}}
	ft.AddApp(app)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(app.Secret), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("  - name: %s\n    type: entra\n    entra:\n      tenant: %s\n      client_id: %s\n      client_secret_file: %s\n      authority_url: %s\n      graph_url: %s\n",
		name, ft.ID(), app.ClientID, secret, ft.AuthorityURL(), ft.GraphURL())
}

// TestOnPremDuplicateSambaAD syncs an AD domain and the Entra tenant that
// Entra Connect fills from it: the user both hold (onPremisesImmutableId =
// base64 of the AD objectGUID) is served once, as the AD user, to an LDAP
// search, an LDAP bind by address and an OIDC sign-in; a cloud-only user
// of the tenant is served as before, also one whose anchor was forged to
// name another AD user (not marked synced from on-premises).
func TestOnPremDuplicateSambaAD(t *testing.T) {
	e := loadAD(t)
	ft := fakeentra.New(t)
	gw := startGateway(t, parseConfig(t, adConnector(t, e, "corp", "SYNC")+entraConnector(t, ft, "m365")+
		"      on_premises_connectors: [corp]\n"))
	// What the server does at start (cmd/dirgate openCache).
	gw.store.SetOnPremPairs(gw.cfg.OnPremPairs())
	if _, err := gw.sync(t, "corp", dirsync.Options{}); err != nil {
		t.Fatal(err)
	}
	jdoeDN, victimDN := e.Get(t, "DIRGATE_AD_JDOE_DN"), e.Get(t, "DIRGATE_AD_JMUELLER_DN")
	var anchor, mail, forged string
	err := gw.store.View(t.Context(), func(v *cache.View) error {
		u, err := v.ByDN(jdoeDN)
		if err != nil {
			return err
		}
		victim, err := v.ByDN(victimDN)
		if err != nil {
			return err
		}
		// What Entra Connect writes: the base64 of the binary objectGUID.
		anchor, mail = base64.StdEncoding.EncodeToString([]byte(u.First("objectGUID"))), u.Addresses[0]
		forged = base64.StdEncoding.EncodeToString([]byte(victim.First("objectGUID")))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ft.PutUser(fakeentra.User{ID: "9d1c7a30-0000-4000-8000-00000000d0e1", UserPrincipalName: mail, Mail: mail,
		ProxyAddresses: []string{"SMTP:" + mail}, DisplayName: "Cloud Copy", AccountEnabled: true,
		OnPremisesImmutableID: anchor, OnPremisesSyncEnabled: true})
	ft.PutUser(fakeentra.User{ID: "9d1c7a30-0000-4000-8000-00000000c10d", UserPrincipalName: "cloud.only@example.test",
		Mail: "cloud.only@example.test", DisplayName: "Cloud Only", AccountEnabled: true})
	ft.PutUser(fakeentra.User{ID: "9d1c7a30-0000-4000-8000-00000000f0e9", UserPrincipalName: "forger@example.test",
		Mail: "forger@example.test", DisplayName: "Forger", AccountEnabled: true, OnPremisesImmutableID: forged})
	c, _ := gw.cfg.Connector("m365")
	src, err := entra.New(c, gw.log, cloudapi.WithHTTPClient(ft.HTTPClient()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.engine.Run(t.Context(), c, src, dirsync.Options{}); err != nil {
		t.Fatal(err)
	}

	sc := gw.dialService(t)
	for _, q := range []struct{ base, mail, want string }{
		{e.Get(t, "DIRGATE_AD_BASE"), mail, jdoeDN},
		{c.RootDN, mail, ""},
		{c.RootDN, "cloud.only@example.test", "cn=9d1c7a30-0000-4000-8000-00000000c10d,ou=users," + c.RootDN},
		{c.RootDN, "forger@example.test", "cn=9d1c7a30-0000-4000-8000-00000000f0e9,ou=users," + c.RootDN},
	} {
		res, err := sc.Search(ldap.NewSearchRequest(q.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(mail="+ldap.EscapeFilter(q.mail)+")", []string{"displayName"}, nil))
		if err != nil {
			t.Fatalf("search %s under %s: %v", q.mail, q.base, err)
		}
		var got []string
		for _, en := range res.Entries {
			got = append(got, en.DN)
		}
		if want := strings.ToLower(q.want); strings.ToLower(strings.Join(got, "|")) != want {
			t.Errorf("search (mail=%s) under %s: %q, want %q", q.mail, q.base, got, q.want)
		}
	}

	// Without the rule the address would be held by two accounts, and the
	// bind refused as ambiguous.
	lc := gw.dial(t)
	if err := lc.Bind(mail, e.Get(t, "DIRGATE_AD_USER_PW")); err != nil {
		t.Errorf("bind as %s: %v", mail, err)
	} else if who, err := lc.WhoAmI(nil); err != nil || !strings.EqualFold(who.AuthzID, "dn:"+jdoeDN) {
		t.Errorf("bound as %+v (%v), want the AD user %s", who, err, jdoeDN)
	}

	rp := startRelyingParty(t)
	rp.issuer, rp.secret = startProvider(t, gw, rp.srv.URL+"/callback")
	rp.clientID = "rp"
	ctx := browserCtx(t)
	screenshotOnFailure(t, ctx, "oidc-onprem-duplicate")
	page, err := signInWithBrowser(t, ctx, rp.srv.URL+"/start", mail, e.Get(t, "DIRGATE_AD_USER_PW"))
	page = html.UnescapeString(page)
	if err != nil || !strings.Contains(page, "signed in as "+mail) || !strings.Contains(page, "G-Leaf") || strings.Contains(page, "Cloud Copy") {
		t.Fatalf("OIDC sign-in as %s must be the AD user (its name and groups): %v\n%s", mail, err, page)
	}
}
