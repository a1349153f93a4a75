package entra

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
)

// assertionLifetime is how long a client assertion is valid: Microsoft
// asks for a short one (5 to 10 minutes).
const assertionLifetime = 5 * time.Minute

// TokenURL is the token endpoint of the connector's tenant.
func TokenURL(e *config.Entra) string {
	return e.AuthorityURL + "/" + url.PathEscape(e.Tenant) + "/oauth2/v2.0/token"
}

// GraphScope is the scope of an app-only Graph token: the cloud's Graph
// resource with /.default, which grants the application permissions
// consented to. It names the resource, not the host reached: a graph_url
// override (a proxy) keeps it.
func GraphScope(e *config.Entra) string { return config.EntraHosts[e.Cloud].Graph + "/.default" }

// TokenSource gets app-only Graph tokens for a connector (client
// credentials grant) and keeps the current one until it nears expiry by
// its clock. Invalidate drops it when Graph refuses it early.
type TokenSource struct {
	cfg   clientcredentials.Config
	hc    *http.Client
	clk   clock.Clock
	key   crypto.Signer // with a certificate, else nil
	alg   jose.SignatureAlgorithm
	x5t   string // base64url SHA-256 of the certificate (x5t#S256)
	cache cloudapi.TokenCache
	// graphURL is the only base the token is sent to (AuthorizedClient).
	graphURL string
}

// NewTokenSource prepares the credentials of e: its client secret, or its
// certificate, with which every token request carries a freshly signed
// client assertion. hc sends the token requests.
func NewTokenSource(e *config.Entra, hc *http.Client, clk clock.Clock) (*TokenSource, error) {
	ts := &TokenSource{hc: hc, clk: clk, graphURL: e.GraphURL, cfg: clientcredentials.Config{
		ClientID:     e.ClientID,
		ClientSecret: e.ClientSecret.Reveal(),
		TokenURL:     TokenURL(e),
		Scopes:       []string{GraphScope(e)},
		AuthStyle:    oauth2.AuthStyleInParams,
	}}
	ts.cache = cloudapi.TokenCache{Fetch: ts.fetch, Clock: clk}
	if e.CertificateFile == "" {
		return ts, nil // config requires the secret then
	}
	pair, err := tls.LoadX509KeyPair(e.CertificateFile, e.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("entra: loading the app's certificate: %w", err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("entra: the private key of %s cannot sign", e.CertificateFile)
	}
	sum := sha256.Sum256(pair.Certificate[0])
	ts.key, ts.x5t = signer, base64.RawURLEncoding.EncodeToString(sum[:])
	ts.alg = jose.RS256
	if e.SigningAlgorithm == "PS256" {
		ts.alg = jose.PS256
	}
	return ts, nil
}

// Token returns the current token, or gets a new one.
func (ts *TokenSource) Token() (*oauth2.Token, error) { return ts.cache.Token() }

// Invalidate drops the current token, if it is still tok, so that the
// next request gets a new one.
func (ts *TokenSource) Invalidate(tok string) { ts.cache.Invalidate(tok) }

func (ts *TokenSource) fetch() (*oauth2.Token, error) {
	cfg := ts.cfg
	if ts.key != nil {
		p, err := ts.clientAuth()
		if err != nil {
			return nil, err
		}
		cfg.EndpointParams = p
	}
	// A redirect would re-send the secret or assertion to its Location.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, cloudapi.NoRedirects(ts.hc))
	now := ts.clk.Now()
	t, err := cfg.Token(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			return nil, DecodeSTSError(re.Response.StatusCode, re.Body)
		}
		return nil, fmt.Errorf("entra: getting a token from %s: %w", cfg.TokenURL, err)
	}
	cloudapi.ExpiryFromNow(t, now)
	return t, nil
}

// assertion signs a client assertion for one token request (RFC 7523 as
// Microsoft profiles it): aud the token URL, iss = sub the client ID, a
// unique jti, a short expiry, and the certificate's SHA-256 thumbprint.
func (ts *TokenSource) assertion() (string, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("x5t#S256", ts.x5t)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: ts.alg, Key: ts.key}, opts)
	if err != nil {
		return "", fmt.Errorf("entra: client assertion: %w", err)
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	now := ts.clk.Now()
	claims := jwt.Claims{
		Audience:  jwt.Audience{ts.cfg.TokenURL},
		Issuer:    ts.cfg.ClientID,
		Subject:   ts.cfg.ClientID,
		ID:        hex.EncodeToString(jti),
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(assertionLifetime)),
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("entra: client assertion: %w", err)
	}
	return s, nil
}
