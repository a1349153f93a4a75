// Package fakecloud is the scaffolding the in-process cloud fakes
// (internal/fakeentra, internal/fakegoogle) share: loopback httptest
// servers with an optional TLS mode, random identifiers, HMAC-sealed opaque
// tokens (paging and delta state a client must echo but cannot forge or
// edit), RS256 JWT signing with a process-wide key, a rotating signing key
// set published as a JWKS, the PKCE S256 check, the default fake clock,
// and the small HTTP helpers every fake endpoint needs. It holds no fake's behaviour: each fake keeps its own model,
// error shapes and strictness.
package fakecloud

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/clock"
)

// Start serves h on a loopback httptest server, over HTTPS when tls is
// set; the server stops when tb ends.
func Start(tb testing.TB, h http.Handler, tls bool) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	tb.Cleanup(s.Close)
	return s
}

// CACertPEM returns the PEM of the certificate s presents when it serves
// HTTPS (nil for plain HTTP), for a process that needs a CA file.
func CACertPEM(s *httptest.Server) []byte {
	if s.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// NewClock returns the fakes' default clock: a fake clock at a fixed date,
// so expiry and Retry-After need no sleeping and runs repeat.
func NewClock() *clock.Fake { return clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) }

// PKCEMatches reports whether verifier answers the S256 code challenge
// (RFC 7636 section 4.6: BASE64URL(SHA256(verifier)), unpadded).
func PKCEMatches(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:]) == challenge
}

// RandomBytes returns n bytes from crypto/rand.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// RandomToken returns n random bytes, base64url-encoded without padding
// (authorization codes, access tokens, key IDs).
func RandomToken(n int) string { return base64.RawURLEncoding.EncodeToString(RandomBytes(n)) }

// NewGUID returns a random GUID-formatted string.
func NewGUID() string { return FormatGUID(RandomBytes(16)) }

// FormatGUID formats the first 16 bytes of b as a GUID.
func FormatGUID(b []byte) string {
	h := hex.EncodeToString(b[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Sealer seals state into opaque tokens with an HMAC, so a client can
// only echo a token it was given: a forged, edited or foreign one (sealed
// by another Sealer) does not open.
type Sealer struct{ key []byte }

// NewSealer returns a Sealer with a fresh random key.
func NewSealer() *Sealer { return &Sealer{key: RandomBytes(32)} }

// Seal encodes v (a plain struct that JSON can encode) into a token.
func (s *Sealer) Seal(v any) string {
	js, err := json.Marshal(v)
	if err != nil {
		panic("fakecloud: sealing token state: " + err.Error())
	}
	p := base64.RawURLEncoding.EncodeToString(js)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac(p))
}

// Open verifies tok and decodes it into v; it reports whether tok was
// sealed by s and unchanged.
func (s *Sealer) Open(tok string, v any) bool {
	p, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(s.mac(p), want) {
		return false
	}
	js, err := base64.RawURLEncoding.DecodeString(p)
	return err == nil && json.Unmarshal(js, v) == nil
}

func (s *Sealer) mac(p string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(p))
	return m.Sum(nil)[:16]
}

// WriteJSON answers status with v as a JSON body.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// RedirectWith sends the browser to target (an absolute URL the fake
// validated) with params added to its query.
func RedirectWith(w http.ResponseWriter, r *http.Request, target string, params url.Values) {
	u, err := url.Parse(target)
	if err != nil {
		http.Error(w, "fakecloud: bad redirect target: "+err.Error(), http.StatusInternalServerError)
		return
	}
	v := u.Query()
	for k, vs := range params {
		v[k] = vs
	}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}
