package fakegoogle

import (
	"encoding/json"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/dirgate/dirgate/internal/fakecloud"
)

// JWTBearerGrant is the grant type of the service-account assertion flow.
const JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// Token endpoint error descriptions, as Google words them.
const (
	descUnauthorizedClient = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
	descInvalidSubject     = "Invalid email or User ID"
	descBadSignature       = "Invalid JWT Signature."
	descShortLived         = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
)

// maxAssertionLife is the longest exp-iat Google accepts; assertionSkew is
// how far iat may be ahead of the server's clock.
const (
	maxAssertionLife = time.Hour
	assertionSkew    = 5 * time.Minute
)

// oauthError is a token endpoint error: status, OAuth error and description.
type oauthError struct {
	status int
	err    string
	desc   string
}

func oauthErr(status int, err, desc string) *oauthError { return &oauthError{status, err, desc} }

func missing(param string) *oauthError {
	return oauthErr(http.StatusBadRequest, "invalid_request", "Required parameter is missing: "+param)
}

func (c *Customer) serveToken(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.tokenReqs++
	c.mu.Unlock()
	body, e := c.token(r)
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	if e != nil {
		fakecloud.WriteJSON(w, e.status, map[string]string{"error": e.err, "error_description": e.desc})
		return
	}
	fakecloud.WriteJSON(w, http.StatusOK, body)
}

func (c *Customer) token(r *http.Request) (map[string]any, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, oauthErr(http.StatusMethodNotAllowed, "invalid_request", "The token endpoint only accepts POST.")
	}
	// Google reads form bodies only: any other body lacks every parameter.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, missing("grant_type")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "The request body could not be parsed.")
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "":
		return nil, missing("grant_type")
	case JWTBearerGrant:
		return c.jwtBearer(r.PostForm.Get("assertion"))
	case "authorization_code":
		return c.authorizationCode(r)
	default:
		return nil, oauthErr(http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
	}
}

// assertion is the claim set of a service account's JWT-bearer assertion.
type assertion struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Iat   *int64 `json:"iat"`
	Exp   *int64 `json:"exp"`
}

func (c *Customer) jwtBearer(raw string) (map[string]any, *oauthError) {
	if raw == "" {
		return nil, missing("assertion")
	}
	invalid := func(desc string) (map[string]any, *oauthError) {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", desc)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return invalid(descBadSignature)
	}
	var a assertion
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &a); err != nil {
		return invalid("Invalid JWT: the claim set is not a JSON object.")
	}
	c.mu.Lock()
	sa := c.sas[a.Iss]
	c.mu.Unlock()
	if sa == nil || jws.Signatures[0].Header.KeyID != sa.key.ID {
		return invalid(descBadSignature)
	}
	if _, err := jws.Verify(&sa.key.Private.PublicKey); err != nil {
		return invalid(descBadSignature)
	}
	// The assertion is checked against the wall clock: client libraries
	// (x/oauth2/jwt) stamp iat and exp from it and offer no clock to fake.
	wall := time.Now()
	switch {
	case a.Aud != c.TokenURL():
		return invalid("Invalid JWT: Failed audience check. The expected value was " + c.TokenURL())
	case a.Iat == nil || a.Exp == nil:
		return invalid(descShortLived)
	}
	iat, exp := time.Unix(*a.Iat, 0), time.Unix(*a.Exp, 0)
	if exp.Sub(iat) > maxAssertionLife || !exp.After(wall) || iat.After(wall.Add(assertionSkew)) || !exp.After(iat) {
		return invalid(descShortLived)
	}
	scopes := strings.Fields(a.Scope)
	if len(scopes) == 0 {
		return nil, oauthErr(http.StatusBadRequest, "invalid_scope", "Empty or missing scope not allowed.")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	subject := ""
	if a.Sub != "" {
		for _, s := range scopes {
			if !slices.Contains(sa.delegated, s) {
				return nil, oauthErr(http.StatusUnauthorized, "unauthorized_client", descUnauthorizedClient)
			}
		}
		u := c.userByKey(a.Sub)
		if u == nil {
			return invalid(descInvalidSubject)
		}
		subject = u.ID
	}
	tok := "ya29.fake-" + fakecloud.RandomToken(32)
	c.tokens[tok] = accessToken{subject: subject, scopes: scopes, expires: c.now().Add(c.tokenTTL)}
	return map[string]any{"access_token": tok, "expires_in": int(c.tokenTTL / time.Second), "token_type": "Bearer"}, nil
}
