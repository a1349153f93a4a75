package testconn

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/upstream"
)

// The steps of an Entra ID connector (dirtype.EntraTestSteps), in the
// order they run. Every step reports under the tenant as its host.
const (
	StepAuthority     = "authority"      // the sign-in authority answers for the tenant
	StepCredentials   = "credentials"    // the app gets a Graph token
	StepPermissions   = "permissions"    // Graph lets the app read users and group members
	StepSample        = "sample"         // a first page of users, with address counts
	StepDelta         = "delta"          // Graph delta queries work for the tenant
	StepPasswordCheck = "password_check" // what LDAP binds of the connector's users do
)

// entraRun is the test of an Entra ID connector: the hostRun machinery
// (skip after a failure, per-step timeout) with the steps of a cloud API.
type entraRun struct {
	*hostRun
	e  *config.Entra
	hc *http.Client // unauthenticated: the authority

	ts    *entra.TokenSource
	graph *cloudapi.Client // after credentials
	// domain of a sampled userPrincipalName, for the password-grant probe
	domain string
}

// runEntra tests an Entra ID connector. hc sends every request; nil means
// a default client.
func runEntra(ctx context.Context, c *config.Connector, hc *http.Client) *Report {
	timeout, hc := cloudClient(c, hc)
	r := &entraRun{hostRun: &hostRun{c: c, host: c.Entra.Tenant, timeout: timeout}, e: &c.Entra, hc: hc}
	r.do(ctx, StepAuthority, r.authority)
	r.do(ctx, StepCredentials, r.credentials)
	r.do(ctx, StepPermissions, r.permissions)
	r.do(ctx, StepSample, r.sample)
	r.do(ctx, StepDelta, r.delta)
	r.do(ctx, StepPasswordCheck, r.passwordCheck)
	rep := &Report{Connector: c.Name, OK: r.failed == "", Steps: r.steps}
	// No step quotes the secret, but an answer could: mask it.
	if secret := c.Entra.ClientSecret.Reveal(); len(secret) >= 4 {
		for i := range rep.Steps {
			rep.Steps[i].Detail = strings.ReplaceAll(rep.Steps[i].Detail, secret, "[redacted]")
			rep.Steps[i].Fix = strings.ReplaceAll(rep.Steps[i].Fix, secret, "[redacted]")
		}
	}
	return rep
}

// authority reads the tenant's OpenID configuration from the authority:
// the host resolves, connects and proves itself, and knows the tenant.
func (r *entraRun) authority(ctx context.Context) outcome {
	u := r.e.AuthorityURL + "/" + url.PathEscape(r.e.Tenant) + "/v2.0/.well-known/openid-configuration"
	host := hostOf(r.e.AuthorityURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(err.Error(), "check authority_url")
	}
	start := time.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		return explainHTTPS(ctx, host, err, r.timeout)
	}
	defer resp.Body.Close()
	body, err := readLimited(resp)
	if err != nil {
		return explainHTTPS(ctx, host, err, r.timeout)
	}
	if resp.StatusCode != http.StatusOK {
		se := entra.DecodeSTSError(resp.StatusCode, body)
		return fail(host+" answered "+se.Label()+": "+se.What, se.Fix)
	}
	how := "plain HTTP, a loopback authority_url"
	if resp.TLS != nil {
		how = tls.VersionName(resp.TLS.Version)
	}
	return pass("%s knows tenant %s (answered in %s over %s)", host, r.e.Tenant, fmtDuration(time.Since(start)), how)
}

// credentials gets an app-only Graph token with the connector's secret or
// certificate.
func (r *entraRun) credentials(ctx context.Context) outcome {
	ts, err := entra.NewTokenSource(r.e, r.hc, clock.Real)
	if err != nil {
		return fail(err.Error(), "check certificate_file and private_key_file (PEM files of the certificate uploaded to the "+
			"app registration and its private key), or client_secret_env / client_secret_file")
	}
	if _, err := ts.Token(); err != nil {
		var se *entra.STSError
		if errors.As(err, &se) {
			detail := se.Label() + ": " + se.What
			if se.TraceID != "" {
				detail += " (trace ID " + se.TraceID + ")"
			}
			return fail(detail, se.Fix)
		}
		return explainHTTPS(ctx, hostOf(r.e.AuthorityURL), err, r.timeout)
	}
	r.ts = ts
	r.graph = &cloudapi.Client{HTTP: ts.AuthorizedClient(r.hc), MaxRetries: 2, MaxRetryAfter: r.timeout}
	how := "client secret"
	if r.e.CertificateFile != "" {
		how = "certificate (" + cmp.Or(r.e.SigningAlgorithm, "RS256") + ")"
	}
	return pass("got an app-only Graph token for client %s with its %s", r.e.ClientID, how)
}

// permission is what the permissions step asks Graph for and what is
// missing when Graph refuses.
type permission struct{ what, path, need string }

var permissions = []permission{
	{"read users", "/v1.0/users?$top=1&$select=id", "User.Read.All"},
	{"read groups and their members", "/v1.0/groups/delta?$deltatoken=latest", "GroupMember.Read.All"},
}

// permissions reads one user and one groups delta link: each needs an
// application permission the app must have been granted.
func (r *entraRun) permissions(ctx context.Context) outcome {
	var missing []string
	for _, p := range permissions {
		_, err := r.graph.Get(ctx, r.e.GraphURL+p.path)
		var he *cloudapi.HTTPError
		switch {
		case errors.As(err, &he) && he.Status == http.StatusForbidden:
			missing = append(missing, p.need)
		case err != nil:
			return r.explainGraph(ctx, "to "+p.what, err)
		}
	}
	if len(missing) > 0 {
		return fail("Graph refused (403 Authorization_RequestDenied): the app lacks "+strings.Join(missing, " and "),
			"in the app registration, API permissions > Add a permission > Microsoft Graph > Application permissions: add "+
				strings.Join(missing, " and ")+" (or Directory.Read.All for both), then Grant admin consent "+
				"(or \"Connect Entra ID\" in the console) and run Test Connection again")
	}
	return pass("the app may read users (User.Read.All) and group members (GroupMember.Read.All)")
}

// sampleUser holds the properties the sample step counts.
type sampleUser struct {
	UserPrincipalName string   `json:"userPrincipalName"`
	Mail              string   `json:"mail"`
	ProxyAddresses    []string `json:"proxyAddresses"`
	AccountEnabled    *bool    `json:"accountEnabled"`
	UserType          string   `json:"userType"`
}

// sample reads the first page of users and counts their addresses.
func (r *entraRun) sample(ctx context.Context) outcome {
	var page struct {
		Value    []sampleUser `json:"value"`
		NextLink string       `json:"@odata.nextLink"`
	}
	u := fmt.Sprintf("%s/v1.0/users?$top=%d&$select=userPrincipalName,mail,proxyAddresses,accountEnabled,userType", r.e.GraphURL, maxSample)
	if err := r.graph.GetJSON(ctx, u, &page); err != nil {
		return r.explainGraph(ctx, "to read users", err)
	}
	if len(page.Value) == 0 {
		return fail("the tenant has no user", "check tenant: dirgate reads the tenant it names, which has no users")
	}
	var mail, aliases, disabled, guests int
	for _, su := range page.Value {
		if su.Mail != "" {
			mail++
		}
		for _, a := range su.ProxyAddresses {
			// smtp: in lower case is a secondary address (SMTP: the primary).
			if strings.HasPrefix(a, "smtp:") {
				aliases++
				break
			}
		}
		if su.AccountEnabled != nil && !*su.AccountEnabled {
			disabled++
		}
		if strings.EqualFold(su.UserType, "Guest") {
			guests++
		}
		if _, d, ok := strings.Cut(su.UserPrincipalName, "@"); ok && r.domain == "" && !strings.Contains(su.UserPrincipalName, "#EXT#") {
			r.domain = d
		}
	}
	n := len(page.Value)
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s, %d with mail, %d with alias addresses (smtp: proxyAddresses), %d disabled, %d %s",
		n, plural(n, "user", "users"), mail, aliases, disabled, guests, plural(guests, "guest", "guests"))
	if !r.e.IncludeGuests && guests > 0 {
		b.WriteString(" (not synced: include_guests is off)")
	}
	if page.NextLink != "" {
		b.WriteString(" (a sample: the first page)")
	}
	if mail == 0 {
		b.WriteString("; no user has mail: users without an address can sign in only by userPrincipalName")
	}
	return outcome{ok: true, detail: b.String()}
}

// delta asks for a users delta link from now on, the cheapest delta
// request: it fails where the tenant does not support delta queries.
func (r *entraRun) delta(ctx context.Context) outcome {
	var page struct {
		DeltaLink string `json:"@odata.deltaLink"`
		NextLink  string `json:"@odata.nextLink"`
	}
	if err := r.graph.GetJSON(ctx, r.e.GraphURL+"/v1.0/users/delta?$deltatoken=latest", &page); err != nil {
		return r.explainGraph(ctx, "for a delta link", err)
	}
	if page.DeltaLink == "" && page.NextLink == "" {
		return fail("Graph answered the delta query without a delta link",
			"the tenant does not support delta queries (Azure AD B2C and External ID tenants do not): dirgate cannot sync it")
	}
	return pass("supported: Graph returned a delta link for users")
}

// ropcLimits are the limits of the password grant an administrator must
// know before relying on it.
const ropcLimits = "cannot check accounts that must do MFA, accounts of federated domains (AD FS or another " +
	"identity provider), guests and personal accounts, or passwordless accounts; every wrong password counts " +
	"towards Entra's smart lockout"

// passwordCheck states what LDAP binds as the connector's users do and,
// with password_check on, probes the password grant with a user that does
// not exist: the tenant must refuse the user, not the app.
func (r *entraRun) passwordCheck(ctx context.Context) outcome {
	if !r.e.PasswordCheck {
		return pass("off: LDAP binds as this connector's users are refused; users sign in through the OIDC login " +
			"(Sign in with Microsoft). Turn on password_check to check LDAP bind passwords with Entra's password grant, which " + ropcLimits)
	}
	g, err := entra.NewPasswordGrant(r.e, r.hc)
	if err != nil {
		return fail(err.Error(), "check the connector's client secret or certificate")
	}
	domain := r.domain
	if domain == "" {
		domain = r.e.Tenant
	}
	probe := "dirgate-connection-test@" + domain
	err = g.Check(ctx, probe, "not-a-password")
	var se *entra.STSError
	switch {
	case errors.As(err, &se) && (se.Class == entra.FailureUnknownUser || se.Class == entra.FailureInvalidCredentials):
		return pass("on: the app may use the password grant (a sign-in as %s was refused as %s, as expected); the grant %s",
			probe, se.Label(), ropcLimits)
	case se != nil:
		return fail("a password-grant sign-in as "+probe+" was refused as "+se.Label()+": "+se.What, se.Fix)
	case err == nil:
		return fail("the tenant accepted a password-grant sign-in as "+probe+" with a made-up password",
			"the token endpoint does not check passwords: check authority_url")
	}
	return explainHTTPS(ctx, hostOf(r.e.AuthorityURL), err, r.timeout)
}

// explainGraph turns a failed Graph request into a step outcome.
func (r *entraRun) explainGraph(ctx context.Context, what string, err error) outcome {
	var he *cloudapi.HTTPError
	if errors.As(err, &he) {
		detail := fmt.Sprintf("Graph refused the request %s: %s", what, he.Error())
		switch {
		case he.Status == http.StatusUnauthorized:
			return fail(detail, "Graph refused the app's token: check cloud (global or usgov) and graph_url, which must "+
				"belong to the cloud of the authority")
		case he.Status == http.StatusTooManyRequests || he.Status >= 500:
			return fail(detail, "Graph is throttling or unavailable: run the test again in a few minutes")
		}
		return fail(detail, "check graph_url; the answer's code says more")
	}
	return explainHTTPS(ctx, hostOf(r.e.GraphURL), err, r.timeout)
}

// explainHTTPS explains a request that got no HTTP answer.
func explainHTTPS(ctx context.Context, host string, err error, timeout time.Duration) outcome {
	var de *net.DNSError
	var ua x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var ce x509.CertificateInvalidError
	switch {
	case stopped(ctx):
		return fail("contacting "+host+": the test was stopped", "")
	case errors.As(err, &de):
		return fail(host+": name resolution failed: "+de.Err,
			"check this machine's DNS configuration, and that "+host+" is the right host (the connector's URL settings name it)")
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail("connection to "+host+" refused", "allow outbound HTTPS (TCP 443) from this machine to "+host+
			", directly or through the proxy named by HTTPS_PROXY")
	case timedOut(err):
		return fail(fmt.Sprintf("no answer from %s within %s", host, fmtDuration(timeout)),
			"a firewall or proxy probably drops the traffic: allow outbound HTTPS (TCP 443) to "+host)
	case errors.As(err, &ua), errors.As(err, &hostErr), errors.As(err, &ce):
		return fail(host+": the certificate is not trusted: "+err.Error(),
			"a proxy that inspects TLS presents its own certificate: add its CA to this machine's trusted certificates")
	}
	return fail("contacting "+host+": "+err.Error(), "check the network path from this machine to "+host)
}

// maxAnswer bounds an answer the authority step reads.
const maxAnswer = 1 << 20

func readLimited(resp *http.Response) ([]byte, error) {
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
}

func hostOf(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		return u.Host
	}
	return rawURL
}

// cloudClient returns the timeout of a cloud connector's steps and hc, or
// when hc is nil a client bounded by that timeout: the token request takes
// no context, so the client's timeout is what bounds it.
func cloudClient(c *config.Connector, hc *http.Client) (time.Duration, *http.Client) {
	timeout := c.Timeout.Std()
	if timeout <= 0 {
		timeout = upstream.DefaultTimeout
	}
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	return timeout, hc
}
