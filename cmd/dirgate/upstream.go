package main

import (
	"fmt"
	"slices"

	"github.com/dirgate/dirgate/admin"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/oidc"
)

// upstreams are the identity providers the OIDC login page offers: one
// per connector that a profile with sign_in upstream or both names, with
// the domains of its upstream-only profiles.
func upstreams(cfg *config.Config) ([]oidc.Upstream, error) {
	var out []oidc.Upstream
	index := map[string]int{}
	for _, prof := range cfg.Auth.Profiles {
		if !prof.Upstream() {
			continue
		}
		i, seen := index[prof.Connector]
		if !seen {
			conn, ok := cfg.Connector(prof.Connector)
			var u oidc.Upstream
			var err error
			switch {
			case ok && conn.Type == config.TypeEntra:
				u, err = entraUpstream(conn)
			case ok && conn.Type == config.TypeGoogle:
				u = googleUpstream(conn)
			default:
				err = fmt.Errorf("auth profile for %s: connector %q cannot sign users in upstream", prof.Connector, prof.Connector)
			}
			if err != nil {
				return nil, err
			}
			i = len(out)
			index[prof.Connector] = i
			out = append(out, u)
		}
		if prof.SignIn == config.SignInUpstream {
			out[i].Domains = append(out[i].Domains, prof.Domains...)
		}
	}
	return out, nil
}

// entraUpstream is "Sign in with Microsoft" as the entra connector's app:
// its tenant, authority and credential.
func entraUpstream(conn *config.Connector) (oidc.Upstream, error) {
	e := &conn.Entra
	// The password grant's client authentication is the app's: its
	// secret, or an assertion signed for the tenant's token endpoint.
	g, err := entra.NewPasswordGrant(e, nil)
	if err != nil {
		return oidc.Upstream{}, fmt.Errorf("connector %s: sign-in: %w", conn.Name, err)
	}
	u := oidc.Upstream{Name: conn.Name, Connector: conn.Name, ClientID: e.ClientID, ClientAuth: g.ClientAuth,
		DescribeError: describeEntraError}
	return oidc.EntraUpstream(u, e.AuthorityURL, e.Tenant), nil
}

// googleUpstream is "Sign in with Google" as the connector's OAuth
// client, for the Workspace domains the connector syncs: its
// email_domains and its domain.
func googleUpstream(conn *config.Connector) oidc.Upstream {
	g := &conn.Google
	domains := slices.Clone(conn.EmailDomains)
	if g.Domain != "" {
		domains = append(domains, g.Domain)
	}
	u := oidc.Upstream{Name: conn.Name, Connector: conn.Name, ClientID: g.OAuthClientID, ClientSecret: g.OAuthClientSecret.Reveal()}
	return oidc.GoogleUpstream(u, g.IssuerURL, domains)
}

// describeEntraError says in plain words why Microsoft refused a sign-in,
// from the error it sent back to the callback.
func describeEntraError(code, desc string) string {
	se := entra.DecodeAuthorizeError(code, desc)
	return se.What + " (" + se.Label() + ")."
}

// entraApps are the app registrations the console's "Connect Entra ID"
// sends administrators to consent to, by connector.
func entraApps(cfg *config.Config) map[string]admin.EntraApp {
	apps := map[string]admin.EntraApp{}
	for _, c := range cfg.Connectors {
		if c.Type == config.TypeEntra {
			apps[c.Name] = admin.EntraApp{AuthorityURL: c.Entra.AuthorityURL, Tenant: c.Entra.Tenant, ClientID: c.Entra.ClientID}
		}
	}
	return apps
}
