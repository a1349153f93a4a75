package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/dirgate/dirgate/passwd"
)

// OIDC configures dirgate's OpenID Connect provider: users sign in with
// their email address (or any login authn accepts) and directory password.
type OIDC struct {
	// Issuer is the provider's identifier and base URL, e.g.
	// "https://login.example.com" or "https://example.com/sso". Required;
	// an absolute URL without query or fragment; https unless the host is
	// loopback (127.0.0.0/8, ::1, localhost), which is for tests.
	Issuer string `yaml:"issuer"`
	// Listen is the host:port of the HTTP(S) listener. Default
	// "127.0.0.1:8080", loopback only, for a reverse proxy in front.
	Listen string `yaml:"listen"`
	// TLS is an optional server certificate; with it the listener speaks
	// HTTPS itself. Both files are required when set.
	TLS *TLSFiles `yaml:"tls"`
	// KeyRotation is how often a new token signing key is made. Default 24h.
	KeyRotation Duration `yaml:"key_rotation"`
	// IDTokenTTL is the lifetime of ID tokens. Default 1h.
	IDTokenTTL Duration `yaml:"id_token_ttl"`
	// AccessTokenTTL is the lifetime of access tokens. Default 1h.
	AccessTokenTTL Duration `yaml:"access_token_ttl"`
	// RefreshTokenTTL is the lifetime of refresh tokens. Default 720h.
	RefreshTokenTTL Duration `yaml:"refresh_token_ttl"`
	// CodeTTL is the lifetime of authorization codes. Default 1m; at most
	// 10m (RFC 6749 4.1.2).
	CodeTTL Duration `yaml:"code_ttl"`
	// Clients are the relying parties allowed to use the provider. At
	// least one.
	Clients []OIDCClient `yaml:"clients"`
}

// OIDCClient is one relying party.
type OIDCClient struct {
	// ID is the client_id. Required; unique; no spaces or control
	// characters.
	ID string `yaml:"id"`
	// Name is shown on the login page. Default ID.
	Name string `yaml:"name"`
	// SecretHash is the argon2id or bcrypt hash of the client secret, as
	// for service accounts (`dirgate hash-password`). Required for
	// confidential clients; not allowed for public ones.
	SecretHash string `yaml:"secret_hash"`
	// Public marks a client that cannot keep a secret (a single-page or
	// native app): it has no secret and must use PKCE with S256.
	Public bool `yaml:"public"`
	// RedirectURIs are compared exactly with the redirect_uri of a
	// request. Required; absolute URLs without fragment; https, or http
	// only on a loopback host; public clients may also use a private-use
	// scheme containing a dot (com.example.app:/callback, RFC 8252 7.1).
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are where end_session may send the browser
	// back to; the same rules as RedirectURIs.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// IDTokenSignedResponseAlg is the algorithm the client's ID and access
	// tokens are signed with (the client metadata of OpenID Connect Dynamic
	// Client Registration 1.0, section 2): RS256 (the default when empty,
	// which every relying party supports) or ES256. The JWKS publishes a
	// key of each.
	IDTokenSignedResponseAlg string `yaml:"id_token_signed_response_alg"`
}

// VerifySecret reports whether secret is the client's secret, in constant
// time with respect to where a wrong guess differs. A public client has no
// secret and never verifies.
func (c OIDCClient) VerifySecret(secret string) bool {
	if c.Public || c.SecretHash == "" {
		return false
	}
	return passwd.Verify(c.SecretHash, secret)
}

func (v *validator) oidc(o *OIDC) {
	const p = "oidc"
	v.issuer(p+".issuer", o.Issuer)
	if !v.has(p + ".listen") {
		o.Listen = "127.0.0.1:8080"
	}
	v.listenAddr(p+".listen", o.Listen, "8080")
	if o.TLS != nil {
		v.tlsFiles(o.TLS, p+".tls")
	}
	v.positiveDuration(p+".key_rotation", &o.KeyRotation, 24*time.Hour)
	v.positiveDuration(p+".id_token_ttl", &o.IDTokenTTL, time.Hour)
	v.positiveDuration(p+".access_token_ttl", &o.AccessTokenTTL, time.Hour)
	v.positiveDuration(p+".refresh_token_ttl", &o.RefreshTokenTTL, 720*time.Hour)
	v.positiveDuration(p+".code_ttl", &o.CodeTTL, time.Minute)
	if o.CodeTTL.Std() > 10*time.Minute {
		v.errorf(p+".code_ttl", "must be at most 10m (RFC 6749 4.1.2: codes are short-lived), got %s", o.CodeTTL)
	}

	if len(o.Clients) == 0 {
		v.errorf(p+".clients", "at least one client is required; list the applications allowed to sign users in")
	}
	ids := map[string]int{}
	for i := range o.Clients {
		cp := fmt.Sprintf("%s.clients[%d]", p, i)
		c := &o.Clients[i]
		switch {
		case c.ID == "":
			v.errorf(cp+".id", "required; give the client_id the application sends, e.g. \"wiki\"")
		case strings.IndexFunc(c.ID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
			v.errorf(cp+".id", "%q contains spaces or control characters; use letters, digits and punctuation only", c.ID)
		default:
			if j, dup := ids[c.ID]; dup {
				v.errorf(cp+".id", "%q is already used by %s.clients[%d]; client IDs must be unique", c.ID, p, j)
			} else {
				ids[c.ID] = i
			}
		}
		if c.Name == "" {
			c.Name = c.ID
		}
		switch {
		case c.Public && c.SecretHash != "":
			v.errorf(cp+".secret_hash", "a public client has no secret (it could not keep one); remove secret_hash, or set public: false for a confidential client")
		case !c.Public && c.SecretHash == "":
			v.errorf(cp+".secret_hash", "required for a confidential client; run `dirgate hash-password` on the client secret and paste its output here, or set public: true for a single-page or native app (which must then use PKCE)")
		case c.SecretHash != "":
			if err := passwd.CheckHash(c.SecretHash); err != nil {
				v.errorf(cp+".secret_hash", "%v", err)
			}
		}
		if len(c.RedirectURIs) == 0 {
			v.errorf(cp+".redirect_uris", "at least one is required; list the exact URLs the application receives codes at, e.g. [https://app.example.com/callback]")
		}
		for j, u := range c.RedirectURIs {
			if err := checkRedirectURI(u, c.Public); err != nil {
				v.errorf(fmt.Sprintf("%s.redirect_uris[%d]", cp, j), "%v", err)
			}
		}
		// Empty is RS256: the provider's default, kept out of the
		// configuration so that a later default can reach it.
		if c.IDTokenSignedResponseAlg != "" {
			v.oneOf(cp+".id_token_signed_response_alg", c.IDTokenSignedResponseAlg, "RS256", "ES256")
		}
		for j, u := range c.PostLogoutRedirectURIs {
			if err := checkRedirectURI(u, c.Public); err != nil {
				v.errorf(fmt.Sprintf("%s.post_logout_redirect_uris[%d]", cp, j), "%v", err)
			}
		}
	}
}

func (v *validator) issuer(path, s string) {
	if s == "" {
		v.errorf(path, "required; set the URL applications reach the provider at, e.g. https://login.example.com")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		v.errorf(path, "%q is not an absolute URL; write e.g. https://login.example.com", s)
	case u.User != nil:
		v.errorf(path, "%q contains a user name or password; remove the part before @", s)
	case u.RawQuery != "" || u.ForceQuery:
		v.errorf(path, "%q has a query (?...); an issuer must not (OpenID Connect Discovery 1.0, section 3)", s)
	case strings.Contains(s, "#"):
		v.errorf(path, "%q has a fragment (#...); an issuer must not (OpenID Connect Discovery 1.0, section 3)", s)
	case strings.EqualFold(u.Scheme, "http") && !isLoopbackHost(u.Hostname()):
		v.errorf(path, "%q uses http on %s, which is not a loopback host: passwords and tokens would cross the network in clear text; use https (http is allowed only on 127.0.0.1, ::1 and localhost, for tests)", s, u.Hostname())
	case !strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http"):
		v.errorf(path, "%q is not an https URL", s)
	}
}

// checkRedirectURI explains why s cannot be a redirect URI of a client.
func checkRedirectURI(s string, public bool) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URL; redirect URIs are compared exactly, so write the whole URL, e.g. https://app.example.com/callback", s)
	}
	if strings.Contains(s, "#") {
		return fmt.Errorf("%q has a fragment (#...); redirect URIs must not (RFC 6749 3.1.2)", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q contains a user name or password; remove the part before @", s)
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "https" || scheme == "http":
		if u.Host == "" || u.Opaque != "" {
			return fmt.Errorf("%q has no host; write e.g. https://app.example.com/callback", s)
		}
		if scheme == "http" && !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%q uses http on %s, which is not a loopback host: codes would cross the network in clear text; use https (http is allowed only on 127.0.0.1, ::1 and localhost)", s, u.Hostname())
		}
	case public && strings.Contains(scheme, "."):
		// A private-use scheme of a native app (RFC 8252 7.1).
	case public:
		return fmt.Errorf("%q: scheme %q is not allowed; use https, http on a loopback host, or a private-use scheme in reverse domain form such as com.example.app:/callback (RFC 8252 7.1)", s, u.Scheme)
	default:
		return fmt.Errorf("%q: scheme %q is not allowed; use https (http only on a loopback host; private-use schemes are for public clients)", s, u.Scheme)
	}
	return nil
}

// isLoopbackHost reports whether host (without brackets or port) is
// localhost or an address in 127.0.0.0/8 or ::1.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Zone() == "" && addr.Unmap().IsLoopback()
}
