package fakeentra

import (
	"crypto"
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dirgate/dirgate/internal/fakecloud"
)

// Assertion and grant constants of the identity platform.
const (
	AssertionType   = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	maxAssertionTTL = 10 * time.Minute
)

// stsError is an identity-platform error: HTTP status, OAuth error, AADSTS
// code and its description.
type stsError struct {
	status int
	err    string
	code   int
	desc   string
}

func stsErr(status int, oauthErr string, code int, format string, args ...any) *stsError {
	return &stsError{status, oauthErr, code, fmt.Sprintf(format, args...)}
}

func missingParam(name string) *stsError {
	return stsErr(400, "invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

// tokenRequest is a parsed POST to the token endpoint.
type tokenRequest struct {
	form     url.Values
	tenant   string // as given in the path
	tokenURL string
	basicID  string
	basicPW  string
	hasBasic bool
}

// grantHandler answers one grant_type; it returns the JSON success body or
// an error.
type grantHandler func(req *tokenRequest) (map[string]any, *stsError)

func (t *Tenant) registerSTS() {
	t.grants["client_credentials"] = t.clientCredentials
	t.grants["password"] = t.passwordGrant
	t.authorityMux.HandleFunc("/{tenant}/oauth2/v2.0/token", t.serveToken)
}

func (t *Tenant) serveToken(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	t.tokenReqs++
	t.mu.Unlock()
	body, e := t.token(r)
	if e != nil {
		t.writeSTSError(w, r, e)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	_ = json.NewEncoder(w).Encode(body)
}

func (t *Tenant) token(r *http.Request) (map[string]any, *stsError) {
	if r.Method != http.MethodPost {
		return nil, stsErr(400, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method)
	}
	tenant := r.PathValue("tenant")
	switch strings.ToLower(tenant) {
	case "common", "consumers":
		return nil, stsErr(400, "invalid_request", 9001023, "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.")
	case "organizations":
	default:
		if !t.knownTenant(tenant) {
			return nil, stsErr(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant)
		}
	}
	// The real service does not read a body of another type at all, so a
	// JSON body lacks every parameter.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, missingParam("grant_type")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return nil, stsErr(400, "invalid_request", 900144, "The request body could not be parsed: %v", err)
	}
	req := &tokenRequest{form: r.PostForm, tenant: tenant, tokenURL: t.AuthorityURL() + r.URL.Path}
	req.basicID, req.basicPW, req.hasBasic = r.BasicAuth()
	// RFC 6749 2.3.1: both halves of HTTP Basic are form-encoded first.
	if id, err := url.QueryUnescape(req.basicID); err == nil {
		req.basicID = id
	}
	if pw, err := url.QueryUnescape(req.basicPW); err == nil {
		req.basicPW = pw
	}
	gt := req.form.Get("grant_type")
	if gt == "" {
		return nil, missingParam("grant_type")
	}
	h := t.grants[gt]
	if h == nil {
		return nil, stsErr(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", gt)
	}
	return h(req)
}

func (t *Tenant) knownTenant(name string) bool {
	return strings.EqualFold(name, t.id) || slices.Contains(t.domains, strings.ToLower(name))
}

// writeSTSError writes e in the identity platform's error body shape.
func (t *Tenant) writeSTSError(w http.ResponseWriter, r *http.Request, e *stsError) {
	trace, corr := fakecloud.NewGUID(), r.Header.Get("client-request-id")
	if corr == "" {
		corr = fakecloud.NewGUID()
	}
	ts := t.now().UTC().Format("2006-01-02 15:04:05Z")
	body := map[string]any{
		"error":             e.err,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", e.code, e.desc, trace, corr, ts),
		"error_codes":       []int{e.code},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("%s/error?code=%d", t.AuthorityURL(), e.code),
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="fakeentra"`)
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(body)
}

// authenticateClient finds the app of req and checks the credential it
// presents (secret in the body or HTTP Basic, or a certificate
// assertion). allowPublic lets an app with "Allow public client flows"
// send no credential; it reports whether one was presented.
func (t *Tenant) authenticateClient(req *tokenRequest, allowPublic bool) (App, *stsError) {
	id := req.form.Get("client_id")
	if req.hasBasic {
		if id != "" && id != req.basicID {
			return App{}, stsErr(401, "invalid_client", 7000215, "Invalid client secret provided: client_id does not match the HTTP Basic user.")
		}
		id = req.basicID
	}
	if id == "" {
		return App{}, missingParam("client_id")
	}
	t.mu.Lock()
	app, ok := t.apps[id]
	t.mu.Unlock()
	if !ok {
		return App{}, stsErr(400, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", id, req.tenant)
	}
	secret, hasSecret := req.form.Get("client_secret"), req.form.Has("client_secret")
	if req.hasBasic {
		if hasSecret {
			return App{}, stsErr(401, "invalid_client", 7000215, "Invalid client secret provided: the secret was sent both in the body and as HTTP Basic.")
		}
		secret, hasSecret = req.basicPW, true
	}
	assertion, hasAssertion := req.form.Get("client_assertion"), req.form.Has("client_assertion") || req.form.Has("client_assertion_type")
	if hasSecret || hasAssertion {
		if app.PublicClient && app.Secret == "" && app.Cert == nil {
			return App{}, stsErr(400, "invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
		}
	}
	switch {
	case hasSecret && hasAssertion:
		return App{}, stsErr(400, "invalid_request", 90014, "Only one client credential may be presented: 'client_secret' or 'client_assertion'.")
	case hasSecret:
		if app.Secret == "" || secret != app.Secret {
			return App{}, stsErr(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", id)
		}
	case hasAssertion:
		if e := t.checkAssertion(req, app, assertion); e != nil {
			return App{}, e
		}
	case allowPublic && app.PublicClient:
	default:
		return App{}, stsErr(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	return app, nil
}

// assertionClaims are the claims of a client assertion; aud may be a
// string or an array.
type assertionClaims struct {
	Aud jwt.Audience     `json:"aud"`
	Iss string           `json:"iss"`
	Sub string           `json:"sub"`
	Jti string           `json:"jti"`
	Exp *jwt.NumericDate `json:"exp"`
	Nbf *jwt.NumericDate `json:"nbf"`
}

func (t *Tenant) checkAssertion(req *tokenRequest, app App, assertion string) *stsError {
	if typ := req.form.Get("client_assertion_type"); typ != AssertionType {
		if typ == "" {
			return missingParam("client_assertion_type")
		}
		return stsErr(400, "invalid_request", 50027, "Invalid client_assertion_type '%s'.", typ)
	}
	if assertion == "" {
		return missingParam("client_assertion")
	}
	bad := func(format string, args ...any) *stsError {
		return stsErr(401, "invalid_client", 50012, "Client assertion failed validation: "+format, args...)
	}
	jws, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{jose.RS256, jose.PS256})
	if err != nil {
		return bad("not a JWT signed RS256 or PS256 (%v).", err)
	}
	if app.Cert == nil {
		return stsErr(401, "invalid_client", 700027, "Client assertion failed signature validation: no certificate is registered on application '%s'.", app.ClientID)
	}
	h := jws.Signatures[0].Header
	s1, s256 := sha1.Sum(app.Cert.Raw), sha256.Sum256(app.Cert.Raw) //nolint:gosec // thumbprint, not security
	x5t, _ := h.ExtraHeaders["x5t"].(string)
	x5t256, _ := h.ExtraHeaders["x5t#S256"].(string)
	switch {
	case x5t == "" && x5t256 == "":
		return stsErr(401, "invalid_client", 700027, "Client assertion failed signature validation: the header has neither 'x5t' nor 'x5t#S256'.")
	case x5t != "" && x5t != base64.RawURLEncoding.EncodeToString(s1[:]),
		x5t256 != "" && x5t256 != base64.RawURLEncoding.EncodeToString(s256[:]):
		return stsErr(401, "invalid_client", 700027, "Client assertion failed signature validation: the certificate with this thumbprint is not registered on application '%s'.", app.ClientID)
	}
	payload, err := jws.Verify(app.Cert.PublicKey)
	if err != nil {
		return stsErr(401, "invalid_client", 700027, "Client assertion failed signature validation.")
	}
	var c assertionClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return bad("claims are not a JSON object (%v).", err)
	}
	now := t.now()
	switch {
	case len(c.Aud) != 1 || c.Aud[0] != req.tokenURL:
		return bad("audience %q is not this token endpoint %q.", []string(c.Aud), req.tokenURL)
	case c.Iss != app.ClientID || c.Sub != app.ClientID:
		return bad("iss and sub must both be the client id %q.", app.ClientID)
	case c.Jti == "":
		return bad("no jti.")
	case c.Exp == nil || !c.Exp.Time().After(now), c.Exp.Time().After(now.Add(maxAssertionTTL)):
		return stsErr(401, "invalid_client", 700024, "Client assertion is not within its valid time range (exp must be in the future and at most %v ahead).", maxAssertionTTL)
	case c.Nbf != nil && c.Nbf.Time().After(now):
		return stsErr(401, "invalid_client", 700024, "Client assertion is not within its valid time range (nbf is in the future).")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for j, exp := range t.usedJTI {
		if exp.Before(now) {
			delete(t.usedJTI, j)
		}
	}
	if _, used := t.usedJTI[app.ClientID+"\x00"+c.Jti]; used {
		return bad("the assertion with jti %q was already used.", c.Jti)
	}
	t.usedJTI[app.ClientID+"\x00"+c.Jti] = c.Exp.Time()
	return nil
}

func (t *Tenant) clientCredentials(req *tokenRequest) (map[string]any, *stsError) {
	app, e := t.authenticateClient(req, false)
	if e != nil {
		return nil, e
	}
	if strings.EqualFold(req.tenant, "organizations") {
		return nil, stsErr(400, "invalid_request", 9001023, "The client credentials grant needs a tenant-specific endpoint, not /organizations.")
	}
	scope := req.form.Get("scope")
	if scope == "" {
		return nil, missingParam("scope")
	}
	if scope != t.resource+"/.default" {
		return nil, stsErr(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. The scope %s is not valid; it must be %s/.default.", scope, t.resource)
	}
	now := t.now()
	t.mu.Lock()
	ttl := t.tokenTTL
	t.mu.Unlock()
	tok := t.signJWT(map[string]any{
		"aud": t.resource, "iss": "https://sts.windows.net/" + t.id + "/", "tid": t.id,
		"appid": app.ClientID, "azp": app.ClientID, "idtyp": "app", "oid": app.ClientID, "sub": app.ClientID,
		"roles": app.Roles, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	secs := int(ttl / time.Second)
	return map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok}, nil
}

func (t *Tenant) passwordGrant(req *tokenRequest) (map[string]any, *stsError) {
	for _, p := range []string{"client_id", "username", "password", "scope"} {
		if req.form.Get(p) == "" && !(p == "client_id" && req.hasBasic) {
			return nil, missingParam(p)
		}
	}
	app, e := t.authenticateClient(req, true)
	if e != nil {
		return nil, e
	}
	upn, pw := req.form.Get("username"), req.form.Get("password")
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.userByUPN(upn)
	switch {
	case o == nil:
		return nil, stsErr(400, "invalid_grant", 50034, "The user account {EUII Hidden} does not exist in the %s directory. To sign into this application, the account must be added to the directory.", t.id)
	case o.user.Locked:
		return nil, stsErr(400, "invalid_grant", 50053, "The account is locked, you've tried to sign in too many times with an incorrect user ID or password.")
	case o.user.Federated, o.user.Password == "" || pw != o.user.Password:
		o.failures++
		if t.lockoutAfter > 0 && o.failures >= t.lockoutAfter {
			o.user.Locked = true
		}
		return nil, stsErr(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
	}
	o.failures = 0
	switch u := o.user; {
	case !u.AccountEnabled:
		return nil, stsErr(400, "invalid_grant", 50057, "The user account is disabled.")
	case u.PasswordExpired:
		return nil, stsErr(400, "invalid_grant", 50055, "The password is expired.")
	case u.BlockedByConditionalAccess:
		return nil, stsErr(400, "invalid_grant", 53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
	case u.MFARequired:
		return nil, stsErr(400, "interaction_required", 50076, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.", t.resource)
	case app.ConsentMissing:
		return nil, stsErr(400, "invalid_grant", 65001, "The user or administrator has not consented to use the application with ID '%s'. Send an interactive authorization request for this user and resource.", app.ClientID)
	}
	now := t.now()
	claims := map[string]any{
		"aud": t.resource, "iss": "https://sts.windows.net/" + t.id + "/", "tid": t.id, "oid": o.user.ID,
		"upn": o.user.UserPrincipalName, "appid": app.ClientID, "scp": req.form.Get("scope"),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(t.tokenTTL).Unix(),
	}
	secs := int(t.tokenTTL / time.Second)
	body := map[string]any{"token_type": "Bearer", "scope": req.form.Get("scope"), "expires_in": secs, "ext_expires_in": secs, "access_token": t.signJWT(claims)}
	if slices.Contains(strings.Fields(req.form.Get("scope")), "openid") {
		body["id_token"] = t.signJWT(map[string]any{
			"aud": app.ClientID, "iss": t.AuthorityURL() + "/" + t.id + "/v2.0", "tid": t.id, "oid": o.user.ID, "sub": o.user.ID,
			"preferred_username": o.user.UserPrincipalName, "name": o.user.DisplayName,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
	}
	return body, nil
}

// signJWT signs claims with the fake's key (RS256, with kid).
func (t *Tenant) signJWT(claims map[string]any) string { return fakecloud.SignJWT(t.keys, claims) }

// PublicKey returns the public half of the token-signing key.
func (t *Tenant) PublicKey() crypto.PublicKey { return &t.keys.Private.PublicKey }
