package testconn

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/google"
	"github.com/dirgate/dirgate/upstream"
)

// The steps of a Google Workspace connector (dirtype.GoogleTestSteps) that
// Entra's do not name; sample and password_check are shared. Every step
// reports under the domain (or customer) as its host.
const (
	StepTokenEndpoint = "token_endpoint" // Google's token endpoint answers
	StepDelegation    = "delegation"     // the service account gets a token as the admin
	StepGroups        = "groups"         // groups and their members read
)

// googleRun is the test of a Google Workspace connector: the hostRun
// machinery (skip after a failure, per-step timeout) with the steps of the
// Directory API.
type googleRun struct {
	*hostRun
	g   *config.Google
	hc  *http.Client
	api *cloudapi.Client // after delegation
}

// runGoogle tests a Google Workspace connector. hc sends every request;
// nil means a default client.
func runGoogle(ctx context.Context, c *config.Connector, hc *http.Client) *Report {
	timeout, hc := cloudClient(c, hc)
	g := &c.Google
	r := &googleRun{hostRun: &hostRun{c: c, host: cmp.Or(g.Domain, g.Customer), timeout: timeout}, g: g, hc: hc}
	r.do(ctx, StepTokenEndpoint, r.tokenEndpoint)
	r.do(ctx, StepDelegation, r.delegation)
	r.do(ctx, StepSample, r.sample)
	r.do(ctx, StepGroups, r.groups)
	r.do(ctx, StepPasswordCheck, r.passwordCheck)
	return &Report{Connector: c.Name, OK: r.failed == "", Steps: r.steps}
}

// tokenEndpoint sends an empty request to the token endpoint: any HTTP
// answer shows that the host resolves, connects and proves itself.
func (r *googleRun) tokenEndpoint(ctx context.Context) outcome {
	host := hostOf(r.g.TokenURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.g.TokenURL, strings.NewReader(""))
	if err != nil {
		return fail(err.Error(), "check token_url")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := time.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		return explainHTTPS(ctx, host, err, r.timeout)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fail(fmt.Sprintf("%s answered HTTP %d", host, resp.StatusCode), "Google's token endpoint is unavailable: run the test again in a few minutes")
	}
	how := "plain HTTP, a loopback token_url"
	if resp.TLS != nil {
		how = tls.VersionName(resp.TLS.Version)
	}
	return pass("%s answers (HTTP %d to an empty request, in %s over %s)", host, resp.StatusCode, fmtDuration(time.Since(start)), how)
}

// delegation gets a token for the service account acting as the admin:
// Google grants it only when domain-wide delegation names the account's
// client ID with every scope asked and the admin is a user of the account.
func (r *googleRun) delegation(ctx context.Context) outcome {
	tc := google.NewTokenCache(r.g, r.hc, clock.Real)
	if _, err := tc.Token(); err != nil {
		var te *google.TokenError
		if errors.As(err, &te) {
			detail := fmt.Sprintf("the token endpoint refused (HTTP %d %s)", te.Status, te.Code)
			if te.Description != "" {
				detail += ": " + te.Description
			}
			return fail(detail, te.Fix)
		}
		return explainHTTPS(ctx, hostOf(r.g.TokenURL), err, r.timeout)
	}
	r.api = &cloudapi.Client{HTTP: tc.AuthorizedClient(r.hc, r.g.DirectoryURL), MaxRetries: 2, MaxRetryAfter: r.timeout}
	return pass("the service account acts as %s with the scopes %s (domain-wide delegation granted)", r.g.Admin, strings.Join(google.Scopes, ", "))
}

// directoryURL is the URL of a Directory API list in the connector's
// account or domain.
func (r *googleRun) directoryURL(path string, q url.Values) string {
	if r.g.Domain != "" {
		q.Set("domain", r.g.Domain)
	} else {
		q.Set("customer", r.g.Customer)
	}
	return r.g.DirectoryURL + "/admin/directory/v1/" + path + "?" + q.Encode()
}

// sample reads the first page of users and counts their addresses.
func (r *googleRun) sample(ctx context.Context) outcome {
	var page struct {
		Users []struct {
			PrimaryEmail       string   `json:"primaryEmail"`
			Aliases            []string `json:"aliases"`
			NonEditableAliases []string `json:"nonEditableAliases"`
			Suspended          bool     `json:"suspended"`
			Archived           bool     `json:"archived"`
		} `json:"users"`
		NextPageToken string `json:"nextPageToken"`
	}
	u := r.directoryURL("users", url.Values{"maxResults": {fmt.Sprint(maxSample)},
		"fields": {"users(primaryEmail,aliases,nonEditableAliases,suspended,archived),nextPageToken"}})
	if err := r.api.GetJSON(ctx, u, &page); err != nil {
		return r.explainDirectory(ctx, "to list users", err)
	}
	if len(page.Users) == 0 {
		return fail("the account has no user", "check google.customer and google.domain: dirgate lists the users they name")
	}
	var mail, aliases, suspended int
	for _, su := range page.Users {
		if su.PrimaryEmail != "" {
			mail++
		}
		if len(su.Aliases)+len(su.NonEditableAliases) > 0 {
			aliases++
		}
		if su.Suspended || su.Archived {
			suspended++
		}
	}
	n := len(page.Users)
	detail := fmt.Sprintf("%d %s, %d with a primary email, %d with aliases, %d suspended or archived (served as disabled)",
		n, plural(n, "user", "users"), mail, aliases, suspended)
	if page.NextPageToken != "" {
		detail += " (a sample: the first page)"
	}
	return pass("%s", detail)
}

// groups lists the first groups and the members of the first one.
func (r *googleRun) groups(ctx context.Context) outcome {
	var page struct {
		Groups []struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"groups"`
		NextPageToken string `json:"nextPageToken"`
	}
	u := r.directoryURL("groups", url.Values{"maxResults": {fmt.Sprint(maxSample)}, "fields": {"groups(id,email),nextPageToken"}})
	if err := r.api.GetJSON(ctx, u, &page); err != nil {
		return r.explainDirectory(ctx, "to list groups", err)
	}
	if len(page.Groups) == 0 {
		return pass("readable; the account has no group")
	}
	var members struct {
		Members []struct {
			Type string `json:"type"`
		} `json:"members"`
	}
	first := page.Groups[0]
	mu := r.g.DirectoryURL + "/admin/directory/v1/groups/" + url.PathEscape(first.ID) + "/members?maxResults=" + fmt.Sprint(maxSample)
	if err := r.api.GetJSON(ctx, mu, &members); err != nil {
		return r.explainDirectory(ctx, "to list the members of "+first.Email, err)
	}
	n := len(page.Groups)
	more := ""
	if page.NextPageToken != "" {
		more = " (the first page)"
	}
	return pass("%d %s%s; %s has %d direct %s", n, plural(n, "group", "groups"), more, first.Email,
		len(members.Members), plural(len(members.Members), "member", "members"))
}

// explainDirectory turns a failed Directory API request into a step
// outcome, with Google's reason decoded.
func (r *googleRun) explainDirectory(ctx context.Context, what string, err error) outcome {
	var he *cloudapi.HTTPError
	if errors.As(err, &he) {
		detail := fmt.Sprintf("the Directory API refused the request %s: %s", what, he.Error())
		if fix := google.DirectoryFix(he, r.g.Admin); fix != "" {
			return fail(detail, fix)
		}
		if he.Status == http.StatusTooManyRequests || he.Status >= 500 {
			return fail(detail, "Google is throttling or unavailable: run the test again in a few minutes")
		}
		return fail(detail, "check directory_url; the answer's reason says more")
	}
	return explainHTTPS(ctx, hostOf(r.g.DirectoryURL), err, r.timeout)
}

// passwordCheck states what LDAP binds as the connector's users do and,
// with secure_ldap, connects to Google Secure LDAP with the LDAP client's
// certificate and asks "Who am I?": any answer shows that the certificate
// was accepted (a server that demands one refuses it, under TLS 1.3, only
// when it reads the first request).
func (r *googleRun) passwordCheck(ctx context.Context) outcome {
	s := r.g.SecureLDAP
	if s == nil {
		return pass("off: google.secure_ldap is not configured, so LDAP binds as this connector's users are refused " +
			"(Google has no password-check API); users sign in through the OIDC login (Sign in with Google). Configure " +
			"secure_ldap with an LDAP client's certificate (Business Plus, Enterprise, Education and Cloud Identity " +
			"Premium editions) to check LDAP bind passwords there")
	}
	target, err := google.SecureLDAPTarget(r.c)
	if err != nil {
		return fail(err.Error(), "check client_certificate_file and client_key_file (the certificate and key downloaded "+
			"for the LDAP client in the Admin console) and ca_file")
	}
	bc, host, err := target.DialBind(ctx)
	if err == nil {
		defer bc.Close()
		err = bc.Ping(ctx, target.Timeout)
	}
	if err != nil {
		return r.explainSecureLDAP(ctx, target, err)
	}
	return pass("on: %s accepted the LDAP client's certificate over LDAPS (port %d); binds as this connector's users are "+
		"checked there as uid=<local part of the primary email>,ou=Users,%s", host, target.Port, s.BaseDN)
}

// explainSecureLDAP explains a failed connection to Secure LDAP.
func (r *googleRun) explainSecureLDAP(ctx context.Context, t *upstream.Target, err error) outcome {
	var de *upstream.DialError
	errors.As(err, &de)
	const certFix = "the LDAP client's certificate is not (or no longer) accepted: in the Admin console (Apps > LDAP > the client) " +
		"check that the client's service status is On and its certificate has not expired or been revoked; download " +
		"a new certificate and key and point client_certificate_file and client_key_file at them"
	switch {
	case errors.Is(err, upstream.ErrClientCertRefused):
		return fail("Secure LDAP refused the session: "+err.Error(), certFix)
	case de == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		// Under TLS 1.3 a server that does not accept the certificate may
		// just close the connection when it reads the first request.
		return fail("Secure LDAP closed the connection after the TLS handshake, without an answer: "+err.Error(), certFix)
	case de != nil && de.Step == upstream.StepDNS:
		return explainDNS(de.Host, de.Err, r.timeout)
	case de != nil && de.Step == upstream.StepTCP:
		return explainTCP(ctx, de.Host, t.Port, de.Err, r.timeout)
	case de != nil && de.Step == upstream.StepTLS:
		return fail("TLS with "+de.Host+": "+de.Err.Error(),
			"Secure LDAP's certificate must verify: leave ca_file unset to use the system roots, or name the CA that issues it")
	}
	return fail("Secure LDAP: "+err.Error(), "check host and port (ldap.google.com, 636), and the network path to it")
}
