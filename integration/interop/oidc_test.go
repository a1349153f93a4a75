//go:build interop

package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rpStep is what testdata/rp/rp.mjs saw in one step.
type rpStep struct {
	OK         bool     `json:"ok"`
	Error      string   `json:"error"`
	Code       any      `json:"code"`
	Algs       []string `json:"algs"`
	IDTokenAlg string   `json:"id_token_alg"`
	Sub        string   `json:"sub"`
	Email      string   `json:"email"`
	Rotated    bool     `json:"rotated"`
	Status     int      `json:"status"`
	Location   string   `json:"location"`
}

// TestOpenIDClient signs a user in through dirgate's provider with Node's
// openid-client, a certified relying-party library: discovery,
// authorization code with PKCE, an ID token it validates as RS256, the
// algorithm of a client that names none (issue 13 item 10), userinfo,
// refresh-token rotation
// where a replayed token revokes its family (item 13), and the
// authorization and end-session requests sent by POST (item 12).
func TestOpenIDClient(t *testing.T) {
	d, e := openLDAP(t)
	node := tool(t, "node")
	dir := filepath.Join("testdata", "rp")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openid-client", "package.json")); err != nil {
		missing(t, "openid-client (npm ci in "+dir+")")
	}
	const login = "user00001@example.test"
	req, err := json.Marshal(map[string]string{
		"issuer": d.issuer, "client_id": clientID, "client_secret": clientPW,
		"redirect_uri": redirectURI, "post_logout_redirect_uri": postLogoutURI,
		"login": login, "password": e.Get(t, "DIRGATE_OL_USER_PW"),
	})
	if err != nil {
		t.Fatal(err)
	}
	out, code := run(t, req, node, filepath.Join(dir, "rp.mjs"))
	var steps map[string]rpStep
	if err := json.Unmarshal([]byte(out), &steps); code != 0 || err != nil {
		t.Fatalf("rp.mjs exited %d (%v):\n%s", code, err, out)
	}
	signedIn, ok := steps["code_flow_get"]
	if !signedIn.OK {
		signedIn, ok = steps["code_flow_any_alg"]
	}
	if !ok || !signedIn.OK || signedIn.Sub == "" {
		t.Errorf("no sign-in succeeded: %s", out)
	}
	checks := []struct {
		step, what string
		ok         func(s rpStep) bool
	}{
		{"discovery", "offers RS256 for ID tokens (item 10)", func(s rpStep) bool { return s.OK && slices.Contains(s.Algs, "RS256") }},
		{"code_flow_get", "signs in with an RS256 ID token (item 10)", func(s rpStep) bool {
			return s.OK && s.IDTokenAlg == "RS256" && s.Email == login && s.Sub != ""
		}},
		{"userinfo", "answers for the signed-in user", func(s rpStep) bool { return s.OK && s.Sub == signedIn.Sub && s.Email == login }},
		{"refresh", "rotates the refresh token", func(s rpStep) bool { return s.OK && s.Rotated }},
		{"refresh_reuse", "refuses a spent refresh token (invalid_grant)", func(s rpStep) bool { return !s.OK && s.Code == "invalid_grant" }},
		{"refresh_after_reuse", "refuses the token rotated from a replayed one: the family is revoked (item 13)", func(s rpStep) bool {
			return !s.OK && s.Code == "invalid_grant"
		}},
		{"end_session_post", "accepts end_session by POST and redirects back (item 12)", func(s rpStep) bool {
			return s.OK && s.Status >= 300 && s.Status <= 303 && strings.HasPrefix(s.Location, postLogoutURI) && strings.Contains(s.Location, "state=bye")
		}},
		{"code_flow_post", "signs in with the authorization request sent by POST (item 12)", func(s rpStep) bool {
			return s.OK && s.Sub == signedIn.Sub
		}},
	}
	for _, c := range checks {
		s, ran := steps[c.step]
		if !ran {
			t.Errorf("%s: did not run (an earlier step failed)", c.step)
			continue
		}
		if !c.ok(s) {
			t.Errorf("%s: want: %s; got %s", c.step, c.what, describe(s))
		}
	}
}

func describe(s rpStep) string {
	b, _ := json.Marshal(s)
	return string(b)
}
