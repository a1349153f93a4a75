package oidc

import (
	"net/http"

	"github.com/dirgate/dirgate/cloudapi"
)

// corsPolicy is how an endpoint answers browser applications on other
// origins (the Fetch standard's CORS protocol). Only the endpoints a
// single-page app calls with fetch() have one: authorize and end_session
// are navigations and never need CORS.
type corsPolicy struct {
	methods string // Access-Control-Allow-Methods
	// public endpoints (discovery, JWKS) are readable from any origin;
	// the others only from the origins of registered redirect URIs.
	public bool
}

func (p *Provider) corsPolicies() map[string]corsPolicy {
	return map[string]corsPolicy{
		p.path + "/.well-known/openid-configuration": {methods: "GET", public: true},
		p.path + "/keys":     {methods: "GET", public: true},
		p.path + "/token":    {methods: "POST"},
		p.path + "/userinfo": {methods: "GET, POST"},
		p.path + "/revoke":   {methods: "POST"},
	}
}

// redirectOrigins are the origins of the clients' redirect URIs, as a
// browser writes them in the Origin header.
func redirectOrigins(clients []Client) map[string]bool {
	out := map[string]bool{}
	for _, c := range clients {
		for _, s := range c.RedirectURIs {
			if o := cloudapi.Origin(s); o != "" {
				out[o] = true
			}
		}
	}
	return out
}

// cors sets the CORS headers of r's endpoint and answers a preflight
// request; it reports whether it answered.
func (p *Provider) cors(w http.ResponseWriter, r *http.Request) bool {
	pol, ok := p.corsPolicy[r.URL.Path]
	if !ok {
		return false
	}
	h := w.Header()
	o := r.Header.Get("Origin")
	allowed := pol.public || p.origins[o]
	switch {
	case pol.public:
		h.Set("Access-Control-Allow-Origin", "*")
	default:
		// Caches must not hand one origin's answer to another.
		h.Add("Vary", "Origin")
		if allowed {
			h.Set("Access-Control-Allow-Origin", o)
		}
	}
	if allowed {
		// A bearer error is explained in WWW-Authenticate (RFC 6750 3).
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate")
	}
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Allow", "OPTIONS, "+pol.methods)
	if o != "" && !allowed {
		w.WriteHeader(http.StatusForbidden)
		return true
	}
	if r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", pol.methods)
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}
