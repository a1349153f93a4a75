package testconn

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/testenv"
)

// These tests run against the real upstreams of scripts/testenv/up.sh
// (OpenLDAP x2, Samba AD, Domino emulators). They skip without
// DIRGATE_TESTENV, and fail instead when DIRGATE_REQUIRE_UPSTREAMS=1.

type testEnv = testenv.Env

func loadTestEnv(t *testing.T) testEnv { return testenv.Load(t) }

// yamlQuote quotes a value for a YAML flow scalar (DNs hold commas,
// backslashes and quotes).
func yamlQuote(s string) string { return fmt.Sprintf("%q", s) }

// want describes what a report must show.
type want struct {
	ok   bool
	step map[string]stepWant // "HOST step" or "step" (primary host) -> expectation
}

type stepWant struct {
	ok      bool
	detail  []string // substrings of Detail
	fix     []string // substrings of Fix
	skipped bool
}

func TestIntegration(t *testing.T) {
	e := loadTestEnv(t)
	ol := func(extra ...string) []string {
		t.Setenv("TC_OL_PW", e.Get(t, "DIRGATE_OL_SYNC_PW"))
		return merge([]string{
			"type: openldap",
			"host: " + e.Get(t, "DIRGATE_OL_HOST"),
			"port: " + e.Get(t, "DIRGATE_OL_LDAPS_PORT"),
			"encryption: strict", "tls_mode: ldaps",
			"ca_file: " + e.Get(t, "DIRGATE_OL_CA"),
			"bind_dn: " + yamlQuote(e.Get(t, "DIRGATE_OL_SYNC_DN")),
			"bind_password_env: TC_OL_PW",
			"root_dn: " + yamlQuote(e.Get(t, "DIRGATE_OL_BASE")),
			"timeout: 3s",
		}, extra...)
	}
	ad := func(dn, pwVar string, extra ...string) []string {
		t.Setenv("TC_AD_PW", e.Get(t, pwVar))
		return merge([]string{
			"type: ad",
			"host: " + e.Get(t, "DIRGATE_AD_HOST"),
			"port: " + e.Get(t, "DIRGATE_AD_LDAPS_PORT"),
			"encryption: strict",
			"ca_file: " + e.Get(t, "DIRGATE_AD_CA"),
			"bind_dn: " + yamlQuote(dn),
			"bind_password_env: TC_AD_PW",
			"root_dn: " + yamlQuote(e.Get(t, "DIRGATE_AD_BASE")),
			"timeout: 5s",
		}, extra...)
	}
	dom := func(prefix string, extra ...string) []string {
		t.Setenv("TC_DOM_PW", e.Get(t, prefix+"_SYNC_PW"))
		return merge([]string{
			"type: domino",
			"host: " + e.Get(t, prefix+"_HOST"),
			"port: " + e.Get(t, prefix+"_LDAPS_PORT"),
			"encryption: strict",
			"ca_file: " + e.Get(t, prefix+"_CA"),
			"bind_dn: " + yamlQuote(e.Get(t, prefix+"_SYNC_DN")),
			"bind_password_env: TC_DOM_PW",
			`root_dn: ""`,
			"timeout: 3s",
		}, extra...)
	}
	olHost := e.Get(t, "DIRGATE_OL_HOST")
	ol2Host := e.Get(t, "DIRGATE_OL2_HOST")
	closed := fmt.Sprint(freePort(t))
	adUser := "CN=Test User 00019," + e.Get(t, "DIRGATE_AD_PEOPLE_DN")

	cases := []struct {
		name   string
		conn   func() []string
		env    map[string]string // overrides after conn() set the password variables
		want   want
		nSteps int // total steps expected; 0: 7 per host
		after  func(t *testing.T)
	}{
		{
			name: "openldap ldaps strict",
			conn: func() []string { return ol() },
			want: want{ok: true, step: map[string]stepWant{
				"dns":     {ok: true, detail: []string{"IP address"}},
				"tcp":     {ok: true, detail: []string{"connected to " + olHost + ":" + e.Get(t, "DIRGATE_OL_LDAPS_PORT")}},
				"tls":     {ok: true, detail: []string{"TLS 1.", "verified (strict)"}},
				"bind":    {ok: true, detail: []string{"bound as " + e.Get(t, "DIRGATE_OL_SYNC_DN")}},
				"root_dn": {ok: true, detail: []string{e.Get(t, "DIRGATE_OL_BASE") + " exists"}},
				"search":  {ok: true, detail: []string{"50 users, ", " with mail", "first page"}},
				"paging":  {ok: true, detail: []string{"supported", "cookie"}},
			}},
		},
		{
			name: "openldap starttls by host name",
			conn: func() []string {
				return ol("host: localhost", "port: "+e.Get(t, "DIRGATE_OL_PORT"), "tls_mode: starttls", "page_size: 20")
			},
			want: want{ok: true, step: map[string]stepWant{
				"localhost dns":      {ok: true, detail: []string{"localhost resolves to", "127.0.0.1"}},
				"localhost starttls": {ok: true, detail: []string{"via StartTLS", "verified (strict)"}},
				"localhost search":   {ok: true, detail: []string{"20 users, "}},
				"localhost paging":   {ok: true, detail: []string{"page size 20"}},
			}},
		},
		{
			name: "openldap unencrypted",
			conn: func() []string {
				c := ol("port: "+e.Get(t, "DIRGATE_OL_PORT"), "encryption: none")
				return without(c, "tls_mode:", "ca_file:")
			},
			want: want{ok: true, step: map[string]stepWant{
				"tls":  {ok: true, detail: []string{"not encrypted", "clear text"}},
				"bind": {ok: true, detail: []string{"clear text"}},
			}},
		},
		{
			name: "openldap wrong password",
			conn: func() []string { return ol() },
			env:  map[string]string{"TC_OL_PW": "not-the-password"},
			want: want{step: map[string]stepWant{
				"tls":     {ok: true},
				"bind":    {detail: []string{"invalid credentials (49)"}, fix: []string{"check bind_dn and the password in the environment variable TC_OL_PW", `\,`, "RFC 4514"}},
				"root_dn": {skipped: true},
				"search":  {skipped: true},
				"paging":  {skipped: true},
			}},
		},
		{
			name: "openldap wrong CA",
			conn: func() []string { return ol("ca_file: " + e.Get(t, "DIRGATE_OL_WRONG_CA")) },
			want: want{step: map[string]stepWant{
				"tcp":  {ok: true},
				"tls":  {detail: []string{"certificate signed by an unknown CA"}, fix: []string{"set ca_file to the CA that signed the server certificate, or encryption: relaxed"}},
				"bind": {skipped: true},
			}},
		},
		{
			name: "openldap relaxed",
			conn: func() []string { return without(ol("encryption: relaxed"), "ca_file:") },
			want: want{ok: true, step: map[string]stepWant{
				"tls": {ok: true, detail: []string{"NOT verified (encryption: relaxed)"}},
			}},
		},
		{
			name: "port closed",
			conn: func() []string { return ol("port: " + closed) },
			want: want{step: map[string]stepWant{
				"tcp": {detail: []string{"connection refused"}, fix: []string{"is the LDAP service running?", "is a firewall blocking port " + closed + "?"}},
				"tls": {skipped: true},
			}},
		},
		{
			name: "primary dead, alternate up",
			conn: func() []string { return ol("host: 127.0.0.3", "alternate_host: "+ol2Host) },
			want: want{ok: true, step: map[string]stepWant{
				"127.0.0.3 tcp":       {detail: []string{"127.0.0.3"}, fix: []string{"firewall"}},
				"127.0.0.3 paging":    {skipped: true},
				ol2Host + " tls":      {ok: true, detail: []string{"verified (strict)"}},
				ol2Host + " search":   {ok: true, detail: []string{"users"}},
				ol2Host + " paging":   {ok: true},
				"127.0.0.3 dns":       {ok: true},
				ol2Host + " bind":     {ok: true},
				ol2Host + " root_dn":  {ok: true},
				"127.0.0.3 bind":      {skipped: true},
				"127.0.0.3 root_dn":   {skipped: true},
				"127.0.0.3 search":    {skipped: true},
				"127.0.0.3 starttls":  {}, // absent: ldaps
				ol2Host + " starttls": {},
			}},
			nSteps: 14,
		},
		{
			name: "openldap root_dn missing",
			conn: func() []string { return ol("root_dn: " + yamlQuote("ou=nowhere,"+e.Get(t, "DIRGATE_OL_BASE"))) },
			want: want{step: map[string]stepWant{
				"bind":    {ok: true},
				"root_dn": {detail: []string{"does not exist", "closest existing entry"}, fix: []string{"check root_dn"}},
				"search":  {skipped: true},
			}},
		},
		{
			name: "openldap no users",
			conn: func() []string { return ol("user_filter: (uid=nobody-has-this-uid)") },
			want: want{step: map[string]stepWant{
				"root_dn": {ok: true},
				"search":  {detail: []string{"no user found"}, fix: []string{"root_dn", "user_filter", "permissions of the bind account"}},
				"paging":  {skipped: true},
			}},
		},
		{
			// A test user nobody else binds as; the account's failure
			// count is reset afterwards with a good bind, so that repeated
			// runs never reach the lockout threshold.
			name: "ad wrong password",
			conn: func() []string { return ad(adUser, "DIRGATE_AD_SYNC_PW") },
			want: want{step: map[string]stepWant{
				"tls":  {ok: true},
				"bind": {detail: []string{"AD error 52e: wrong password"}, fix: []string{"TC_AD_PW", "special characters"}},
			}},
			after: func(t *testing.T) {
				c := parseConnector(t, ad(adUser, "DIRGATE_AD_USER_PW")...)
				r := Run(context.Background(), c)
				if s, _ := findStep(r, c.Host, StepBind); !s.OK {
					t.Errorf("good bind as %s after the wrong one:\n%s", adUser, r.Text())
				}
			},
		},
		{
			name: "ad disabled account",
			conn: func() []string { return ad(e.Get(t, "DIRGATE_AD_DISABLED_DN"), "DIRGATE_AD_USER_PW") },
			want: want{step: map[string]stepWant{"bind": {detail: []string{"AD error 533: account disabled"}, fix: []string{"enable"}}}},
		},
		{
			name: "ad must change password",
			conn: func() []string { return ad(e.Get(t, "DIRGATE_AD_MUSTCHANGE_DN"), "DIRGATE_AD_USER_PW") },
			want: want{step: map[string]stepWant{"bind": {detail: []string{"AD error 773: user must change password"}}}},
		},
		{
			name: "ad expired account",
			conn: func() []string { return ad(e.Get(t, "DIRGATE_AD_EXPIRED_DN"), "DIRGATE_AD_USER_PW") },
			want: want{step: map[string]stepWant{"bind": {detail: []string{"AD error 701: account expired"}, fix: []string{"expiry date"}}}},
		},
		{
			name: "ad sample with proxyAddresses",
			conn: func() []string { return ad(e.Get(t, "DIRGATE_AD_SYNC_DN"), "DIRGATE_AD_SYNC_PW") },
			want: want{ok: true, step: map[string]stepWant{
				"bind":   {ok: true},
				"search": {ok: true, detail: []string{"50 users, ", " with mail, ", " with proxyAddresses"}},
				"paging": {ok: true, detail: []string{"cookie"}},
			}},
		},
		{
			name: "domino with paging",
			conn: func() []string { return dom("DIRGATE_DOM") },
			want: want{ok: true, step: map[string]stepWant{
				"root_dn": {ok: true, detail: []string{`root_dn is ""`}},
				"search":  {ok: true, detail: []string{"50 users, "}},
				"paging":  {ok: true, detail: []string{"supported"}},
			}},
		},
		{
			name: "domino without paging",
			conn: func() []string { return dom("DIRGATE_DOM2") },
			want: want{step: map[string]stepWant{
				"search": {ok: true, detail: []string{"50 users, "}},
				"paging": {detail: []string{"refused the paged-results control"}, fix: []string{"the server does not support paged results: syncs will read unpaged and fail above its size limit"}},
			}},
		},
		{
			name: "domino without paging, size limit 20",
			conn: func() []string { return dom("DIRGATE_DOM3") },
			want: want{step: map[string]stepWant{
				"search": {ok: true, detail: []string{"20 users, ", "size limit"}},
				"paging": {detail: []string{"refused", "stopped after 20 entries (the server's size limit)"}, fix: []string{"Maximum number of entries returned"}},
			}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := tc.conn()
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c := parseConnector(t, lines...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := Run(ctx, c)
			text := r.Text()
			if testing.Verbose() {
				t.Log("\n" + text)
			}
			if r.OK != tc.want.ok {
				t.Errorf("OK = %v, want %v:\n%s", r.OK, tc.want.ok, text)
			}
			n := tc.nSteps
			if n == 0 {
				n = 7
			}
			if len(r.Steps) != n {
				t.Errorf("%d steps, want %d:\n%s", len(r.Steps), n, text)
			}
			for key, w := range tc.want.step {
				host, name, ok := strings.Cut(key, " ")
				if !ok {
					host, name = c.Host, key
				}
				s, found := findStep(r, host, name)
				if w.detail == nil && w.fix == nil && !w.ok && !w.skipped {
					if found {
						t.Errorf("unexpected step %s on %s: %+v", name, host, s)
					}
					continue
				}
				if !found {
					t.Errorf("no %s step on %s:\n%s", name, host, text)
					continue
				}
				if s.OK != w.ok || s.Skipped != w.skipped {
					t.Errorf("%s %s: OK=%v skipped=%v, want OK=%v skipped=%v:\n%s", host, name, s.OK, s.Skipped, w.ok, w.skipped, text)
				}
				if s.OK && s.Fix != "" {
					t.Errorf("%s %s passed but has a fix %q", host, name, s.Fix)
				}
				for _, d := range w.detail {
					if !strings.Contains(s.Detail, d) {
						t.Errorf("%s %s: detail %q lacks %q", host, name, s.Detail, d)
					}
				}
				for _, f := range w.fix {
					if !strings.Contains(s.Fix, f) {
						t.Errorf("%s %s: fix %q lacks %q", host, name, s.Fix, f)
					}
				}
			}
			// Never the password, in any form.
			if pw := c.BindPassword.Reveal(); pw != "" && strings.Contains(text, pw) {
				t.Errorf("the bind password appears in the report:\n%s", text)
			}
			// The steps of a host run in order, each host's after the other's.
			checkOrder(t, r)
			if tc.after != nil {
				tc.after(t)
			}
		})
	}
}

// TestIntegrationSearchCounts checks the counts of the AD sample against
// a reading of the same first page: every number is between 0 and the
// number of users.
func TestIntegrationSearchCounts(t *testing.T) {
	e := loadTestEnv(t)
	t.Setenv("TC_AD_PW", e.Get(t, "DIRGATE_AD_SYNC_PW"))
	c := parseConnector(t, "type: ad", "host: "+e.Get(t, "DIRGATE_AD_HOST"), "port: "+e.Get(t, "DIRGATE_AD_LDAPS_PORT"),
		"encryption: strict", "ca_file: "+e.Get(t, "DIRGATE_AD_CA"), "bind_dn: "+yamlQuote(e.Get(t, "DIRGATE_AD_SYNC_DN")),
		"bind_password_env: TC_AD_PW", "root_dn: "+yamlQuote(e.Get(t, "DIRGATE_AD_PEOPLE_DN")), "page_size: 1000",
		"alias_attributes: [proxyAddresses, otherMailbox]")
	r := Run(context.Background(), c)
	s, _ := findStep(r, c.Host, StepSearch)
	m := regexp.MustCompile(`^(\d+) users, (\d+) with mail, (\d+) with proxyAddresses, (\d+) with otherMailbox`).FindStringSubmatch(s.Detail)
	if !s.OK || m == nil || m[1] != "50" {
		t.Fatalf("search step %+v:\n%s", s, r.Text())
	}
	for _, n := range m[2:4] {
		if n == "0" {
			t.Errorf("no user in the sample has mail or proxyAddresses: %q", s.Detail)
		}
	}
}

func findStep(r *Report, host, name string) (Step, bool) {
	for _, s := range r.Steps {
		if s.Host == host && s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

func checkOrder(t *testing.T, r *Report) {
	t.Helper()
	order := map[string]int{StepDNS: 0, StepTCP: 1, StepTLS: 2, StepStartTLS: 2, StepBind: 3, StepRootDN: 4, StepSearch: 5, StepPaging: 6}
	for i := 1; i < len(r.Steps); i++ {
		a, b := r.Steps[i-1], r.Steps[i]
		if a.Host == b.Host && order[a.Name] >= order[b.Name] {
			t.Errorf("step %s before %s on %s", a.Name, b.Name, a.Host)
		}
	}
}

// merge returns base with each "key: value" line of extra replacing the
// line of base with the same key, or appended.
func merge(base []string, extra ...string) []string {
	out := base
	for _, x := range extra {
		k, _, _ := strings.Cut(x, ":")
		out = append(without(out, k+":"), x)
	}
	return out
}

// without drops the lines starting with any of the prefixes.
func without(lines []string, prefixes ...string) []string {
	var out []string
outer:
	for _, l := range lines {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				continue outer
			}
		}
		out = append(out, l)
	}
	return out
}
