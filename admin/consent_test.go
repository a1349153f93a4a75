package admin

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/internal/fakeentra"
)

const consentApp = "0d5e0f00-0000-4000-8000-00000000c001"

// consentConsole is a signed-in console whose connector corp is an Entra
// ID connector of a fake tenant.
func consentConsole(t *testing.T) (*console, string, *fakeentra.Tenant, string) {
	t.Helper()
	ten := fakeentra.New(t)
	_, ts := newTestServer(t, newFake(t), Options{EntraApps: map[string]EntraApp{
		"corp": {AuthorityURL: ten.AuthorityURL(), Tenant: ten.Domain(), ClientID: consentApp}}})
	ten.AddApp(fakeentra.App{ClientID: consentApp, Secret: "s", RedirectURIs: []string{ts.URL + "/connectors/corp/consent/callback"}})
	c := newConsole(t, ts.URL)
	_, csrf := c.signIn(testToken)
	return c, csrf, ten, ts.URL
}

// toMicrosoft presses "Connect Entra ID" and follows Microsoft's answer;
// it returns the callback URL.
func toMicrosoft(t *testing.T, c *console, csrf string, ten *fakeentra.Tenant) string {
	t.Helper()
	code, loc, body := c.post("/connectors/corp/consent", url.Values{"csrf": {csrf}})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, ten.AuthorityURL()+"/"+ten.Domain()+"/adminconsent?") {
		t.Fatalf("connect: %d %s %s", code, loc, body)
	}
	resp, err := c.c.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(back, c.base+"/connectors/corp/consent/callback?") {
		t.Fatalf("Microsoft answered %s to %s", resp.Status, back)
	}
	return strings.TrimPrefix(back, c.base)
}

func TestConsentGranted(t *testing.T) {
	c, csrf, ten, _ := consentConsole(t)
	_, _, page := c.get("/connectors/corp")
	if !strings.Contains(page, `id="consent"`) {
		t.Fatal("the entra connector's page has no Connect Entra ID button")
	}
	if _, _, page := c.get("/connectors/risky"); strings.Contains(page, `id="consent"`) {
		t.Error("an LDAP connector's page offers Connect Entra ID")
	}
	code, _, body := c.get(toMicrosoft(t, c, csrf, ten))
	if code != http.StatusOK || !strings.Contains(body, "Admin consent for corp granted") ||
		!strings.Contains(body, "granted admin consent to the app for tenant "+ten.ID()) || !strings.Contains(body, "Connection test passed") {
		t.Fatalf("%d %s", code, body)
	}
	if ten.AdminConsents() != 1 {
		t.Errorf("consents %d", ten.AdminConsents())
	}
}

func TestConsentRefused(t *testing.T) {
	c, csrf, ten, _ := consentConsole(t)
	ten.DeclineConsent("access_denied", 65004, "User declined to consent to access the app.")
	code, _, body := c.get(toMicrosoft(t, c, csrf, ten))
	if code != http.StatusOK || !strings.Contains(body, "Admin consent for corp not granted") ||
		!strings.Contains(body, "Admin consent was not granted:") || !strings.Contains(body, "AADSTS65004") || !strings.Contains(body, "an administrator declined consent") ||
		!strings.Contains(body, "Connection test passed") {
		t.Fatalf("%d %s", code, body)
	}
}

func TestConsentState(t *testing.T) {
	c, csrf, ten, base := consentConsole(t)
	other := newConsole(t, base)
	_, _ = other.signIn(testToken)
	for _, tc := range []struct {
		name string
		c    *console
		path func(u *url.URL) string
	}{
		{"forged state", c, func(u *url.URL) string {
			q := u.Query()
			q.Set("state", "forged")
			return u.Path + "?" + q.Encode()
		}},
		{"another connector", c, func(u *url.URL) string { return "/connectors/risky/consent/callback?" + u.RawQuery }},
		{"another browser and session", other, func(u *url.URL) string { return u.String() }},
	} {
		u, _ := url.Parse(toMicrosoft(t, c, csrf, ten))
		if code, _, body := tc.c.get(tc.path(u)); code != http.StatusBadRequest || !strings.Contains(body, "Consent response refused") {
			t.Errorf("%s: %d %s", tc.name, code, body)
		}
	}
	// Answered once; the replay is refused.
	callback := toMicrosoft(t, c, csrf, ten)
	if code, _, _ := c.get(callback); code != http.StatusOK {
		t.Fatalf("first answer: %d", code)
	}
	if code, _, _ := c.get(callback); code != http.StatusBadRequest {
		t.Errorf("replayed answer: %d", code)
	}
	// Starting needs the session's CSRF token, like every console action.
	if code, _, _ := c.post("/connectors/corp/consent", url.Values{"csrf": {"x"}}); code != http.StatusForbidden {
		t.Errorf("without CSRF: %d", code)
	}
	if code, _, _ := c.post("/connectors/risky/consent", url.Values{"csrf": {csrf}}); code != http.StatusNotFound {
		t.Errorf("LDAP connector: %d", code)
	}
}
