package fakeentra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t thumbprint
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dirgate/dirgate/clock"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type testCert struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

var (
	certOnce  sync.Once
	certs     [2]testCert
	allGraphs = []string{"User.Read.All", "GroupMember.Read.All"}
)

// appCerts returns two self-signed certificates (the app's, and a
// stranger's), made once per test binary.
func appCerts(t testing.TB) [2]testCert {
	certOnce.Do(func() {
		for i := range certs {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "app"},
				NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(365 * 24 * time.Hour)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
			if err != nil {
				t.Fatal(err)
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			certs[i] = testCert{k, c}
		}
	})
	return certs
}

// newTestTenant is a tenant with a confidential app (secret and
// certificate), a public app, and a fake clock at t0.
func newTestTenant(t *testing.T, opts ...Option) (*Tenant, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(t0)
	tn := New(t, append([]Option{WithClock(clk)}, opts...)...)
	tn.AddApp(App{ClientID: "app-1", Secret: "s3cret", Cert: appCerts(t)[0].cert, Roles: allGraphs})
	tn.AddApp(App{ClientID: "app-pub", PublicClient: true})
	return tn, clk
}

func (tn *Tenant) tokenURL() string { return tn.AuthorityURL() + "/" + tn.ID() + "/oauth2/v2.0/token" }

// stsReply is a decoded token endpoint answer.
type stsReply struct {
	status int
	body   map[string]any
}

func (r stsReply) code() int {
	codes, _ := r.body["error_codes"].([]any)
	if len(codes) != 1 {
		return 0
	}
	return int(codes[0].(float64))
}

func postForm(t testing.TB, tn *Tenant, tokenURL, contentType, body string, basic ...string) stsReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tokenURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	status, m, _ := do(t, tn, req)
	return stsReply{status, m}
}

// do sends req and decodes the JSON object every answer must be.
func do(t testing.TB, tn *Tenant, req *http.Request) (int, map[string]any, http.Header) {
	t.Helper()
	resp, err := tn.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s answered %d with non-JSON %q", req.URL, resp.StatusCode, b)
	}
	return resp.StatusCode, m, resp.Header
}

const formType = "application/x-www-form-urlencoded"

// appToken gets an app-only token for app-1 with its secret.
func appToken(t testing.TB, tn *Tenant) string {
	t.Helper()
	r := postForm(t, tn, tn.tokenURL(), formType, url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-1"},
		"client_secret": {"s3cret"}, "scope": {"https://graph.microsoft.com/.default"}}.Encode())
	if r.status != 200 {
		t.Fatalf("token: %d %v", r.status, r.body)
	}
	return r.body["access_token"].(string)
}

// assertionOpts shape a client assertion for the tests.
type assertionOpts struct {
	alg            jose.SignatureAlgorithm
	key            *rsa.PrivateKey
	cert           *x509.Certificate
	thumb          string // "x5t", "x5t#S256" or "" (none)
	aud, iss, sub  string
	jti            string
	exp, nbf       time.Duration // from the fake's now
	corruptPayload bool
}

func makeAssertion(t *testing.T, o assertionOpts) string {
	t.Helper()
	so := (&jose.SignerOptions{}).WithType("JWT")
	switch o.thumb {
	case "x5t":
		s := sha1.Sum(o.cert.Raw) //nolint:gosec // thumbprint
		so = so.WithHeader("x5t", base64.RawURLEncoding.EncodeToString(s[:]))
	case "x5t#S256":
		s := sha256.Sum256(o.cert.Raw)
		so = so.WithHeader("x5t#S256", base64.RawURLEncoding.EncodeToString(s[:]))
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: o.alg, Key: o.key}, so)
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"aud": o.aud, "iss": o.iss, "sub": o.sub, "jti": o.jti,
		"exp": t0.Add(o.exp).Unix(), "nbf": t0.Add(o.nbf).Unix(), "iat": t0.Unix()}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if o.corruptPayload {
		parts := strings.Split(s, ".")
		parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"aud":"x","iss":"app-1","sub":"app-1","jti":"z"}`))
		s = strings.Join(parts, ".")
	}
	return s
}

// graphGet sends an authenticated GET and decodes the JSON answer.
func graphGet(t testing.TB, tn *Tenant, token, u string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, tn, req)
}

func graphCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}
