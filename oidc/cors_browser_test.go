package oidc

import (
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dirgate/dirgate/internal/browsertest"
)

// spaPages is a single-page application signing in with dirgate the way
// browser apps do: PKCE made in the page, discovery, the token exchange,
// userinfo and revocation all through fetch() across origins. /probe is
// the same calls from an origin no client registered.
var spaPages = template.Must(template.New("spa").Parse(`<!doctype html><html><head><meta charset="utf-8"><title>SPA</title></head><body>
<button id="go">Sign in</button><p id="result"></p>
<script>
const issuer = {{.Issuer}}, clientId = {{.ClientID}}, redirect = location.origin + "/callback";
const out = document.getElementById("result");
const done = text => { out.textContent = text; out.className = "done"; };
const b64url = buf => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const meta = async () => (await fetch(issuer + "/.well-known/openid-configuration")).json();
{{if eq .Page "start"}}
document.getElementById("go").onclick = async () => { try {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem("verifier", verifier);
  // An authorization request by POST, as a form on the page sends it.
  const form = document.createElement("form");
  form.method = "post";
  form.action = (await meta()).authorization_endpoint;
  const params = {client_id: clientId, response_type: "code", scope: "openid email offline_access", redirect_uri: redirect,
    state: "st", code_challenge: challenge, code_challenge_method: "S256"};
  for (const [k, v] of Object.entries(params)) {
    const i = document.createElement("input");
    i.type = "hidden"; i.name = k; i.value = v;
    form.appendChild(i);
  }
  document.body.appendChild(form);
  form.submit();
} catch (e) { done("error: " + e); } };
{{else if eq .Page "callback"}}
(async () => {
  try {
    const m = await meta(), q = new URLSearchParams(location.search);
    const tr = await fetch(m.token_endpoint, {method: "POST", body: new URLSearchParams({grant_type: "authorization_code",
      code: q.get("code"), redirect_uri: redirect, client_id: clientId, code_verifier: sessionStorage.getItem("verifier")})});
    const tok = await tr.json();
    if (!tr.ok) throw new Error("token endpoint " + tr.status + " " + JSON.stringify(tok));
    // Authorization makes this a preflighted request.
    const ur = await fetch(m.userinfo_endpoint, {headers: {Authorization: "Bearer " + tok.access_token}});
    const ui = await ur.json();
    if (!ur.ok) throw new Error("userinfo " + ur.status);
    const rr = await fetch(m.revocation_endpoint, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
      body: new URLSearchParams({token: tok.refresh_token, client_id: clientId})});
    done("signed in as " + ui.email + ", revocation " + rr.status);
  } catch (e) { done("error: " + e); }
})();
{{else}}
(async () => {
  const results = [];
  const probe = async (name, p) => { try { results.push(name + ":" + (await p).status); } catch (e) { results.push(name + ":blocked"); } };
  await probe("discovery", fetch(issuer + "/.well-known/openid-configuration"));
  await probe("keys", fetch(issuer + "/keys"));
  await probe("token", fetch(issuer + "/token", {method: "POST", body: new URLSearchParams({grant_type: "authorization_code", code: "x", client_id: clientId})}));
  await probe("userinfo", fetch(issuer + "/userinfo", {headers: {Authorization: "Bearer x"}}));
  await probe("revoke", fetch(issuer + "/revoke", {method: "POST", body: new URLSearchParams({token: "x", client_id: clientId})}));
  done(results.join(" "));
})();
{{end}}
</script></body></html>`))

// TestCORSInBrowser signs a public client in from a single-page app in
// headless Chromium: on a registered redirect origin every fetch()
// succeeds; on an origin no client registered the browser lets it read
// only discovery and the JWKS.
func TestCORSInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	var issuer atomic.Value
	spa := func(w http.ResponseWriter, r *http.Request) {
		page := map[string]string{"/": "start", "/callback": "callback", "/probe": "probe"}[r.URL.Path]
		if page == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = spaPages.Execute(w, map[string]string{"Issuer": issuer.Load().(string), "ClientID": "spa-browser", "Page": page})
	}
	app := httptest.NewServer(http.HandlerFunc(spa))
	t.Cleanup(app.Close)
	stranger := httptest.NewServer(http.HandlerFunc(spa))
	t.Cleanup(stranger.Close)
	f := newFixture(t, Client{ID: "spa-browser", Public: true, RedirectURIs: []string{app.URL + "/callback"}})
	issuer.Store(f.srv.URL)

	ctx := browsertest.New(t, 90*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			browsertest.Screenshot(t, ctx, "oidc-cors")
		}
	})
	var started, signedIn, probed string
	err := chromedp.Run(ctx,
		chromedp.Navigate(app.URL+"/"),
		chromedp.Click(`#go`, chromedp.ByQuery),
		// The login page, or the start page telling what went wrong.
		chromedp.WaitVisible(`#email, #result.done`, chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById("email") ? "" : document.getElementById("result").textContent`, &started),
	)
	if err != nil || started != "" {
		t.Fatalf("single-page app, start: %q %v", started, err)
	}
	err = chromedp.Run(ctx,
		chromedp.SetValue(`#email`, "alice@x.test", chromedp.ByQuery),
		chromedp.SetValue(`#password`, "pw", chromedp.ByQuery),
		chromedp.Click(`button[type=submit]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#result.done`, chromedp.ByQuery),
		chromedp.Text(`#result`, &signedIn, chromedp.ByQuery),
		chromedp.Navigate(stranger.URL+"/probe"),
		chromedp.WaitVisible(`#result.done`, chromedp.ByQuery),
		chromedp.Text(`#result`, &probed, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if want := "signed in as alice@x.test, revocation 200"; signedIn != want {
		t.Fatalf("single-page app on a registered origin: %q, want %q", signedIn, want)
	}
	if want := "discovery:200 keys:200 token:blocked userinfo:blocked revoke:blocked"; strings.TrimSpace(probed) != want {
		t.Fatalf("page on an unregistered origin: %q, want %q", probed, want)
	}
}
