package config

import (
	"fmt"
	"regexp"
)

// googleOAuthClientID is how the ID of a Google OAuth client looks; the
// numeric client ID of the service account is a common mistake.
var googleOAuthClientID = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z-]*\.apps\.googleusercontent\.com$`)

// googleSignIns checks the OAuth client of every google connector: it is
// required when an auth profile signs the connector's users in through
// Google (sign_in upstream or both), and its secret is read whenever it is
// configured.
func (v *validator) googleSignIns(c *Config) {
	for i := range c.Connectors {
		conn := &c.Connectors[i]
		if conn.Type != TypeGoogle {
			continue
		}
		needed := false
		for _, prof := range c.Auth.Profiles {
			needed = needed || (prof.Connector == conn.Name && prof.Upstream())
		}
		g := &conn.Google
		p := fmt.Sprintf("connectors[%d].google", i)
		set := g.OAuthClientID != "" || g.OAuthClientSecretEnv != "" || g.OAuthClientSecretFile != ""
		switch {
		case !set && needed:
			v.errorf(p, "an auth profile signs this connector's users in through Google (sign_in), which needs an OAuth client: set oauth_client_id, and oauth_client_secret_env or oauth_client_secret_file")
			continue
		case !set:
			continue
		case g.OAuthClientID == "":
			v.errorf(p+".oauth_client_id", "required for Sign in with Google; give the client ID of an OAuth client of type Web application (APIs & Services > Credentials), such as 123-abc.apps.googleusercontent.com")
		case !googleOAuthClientID.MatchString(g.OAuthClientID):
			v.errorf(p+".oauth_client_id", "%q is not the client ID of an OAuth client, which ends in .apps.googleusercontent.com (the service account's numeric client ID does not sign users in)", g.OAuthClientID)
		}
		if g.OAuthClientSecretEnv == "" && g.OAuthClientSecretFile == "" {
			v.errorf(p+".oauth_client_id", "Sign in with Google needs the OAuth client's secret too; set oauth_client_secret_env or oauth_client_secret_file")
			continue
		}
		g.OAuthClientSecret = v.secret(p, "oauth_client_secret", &g.OAuthClientSecretEnv, &g.OAuthClientSecretFile, "OAuth client secret")
	}
}
