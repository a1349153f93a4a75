package oidc

import (
	"fmt"
	"strings"

	"github.com/dirgate/dirgate/config"
)

// EntraUpstream completes u for a Microsoft Entra ID tenant at authority
// (e.g. https://login.microsoftonline.com): discovery under the tenant
// (its ID or a verified domain), an issuer that names one tenant by its ID
// — the tenant's own when the ID is configured; the multi-tenant
// "{tenantid}" issuer of common or organizations is refused — ID tokens
// whose tid is that tenant, and the join by oid, the object ID that Graph
// calls id.
func EntraUpstream(u Upstream, authority, tenant string) Upstream {
	authority = strings.TrimSuffix(authority, "/")
	u.Discovery = authority + "/" + tenant + "/v2.0"
	if u.Label == "" {
		u.Label = "Microsoft"
	}
	u.JoinClaim = "oid"
	u.CheckIssuer = func(iss string) error {
		id, err := entraIssuerTenant(authority, iss)
		if err != nil {
			return err
		}
		if config.IsGUID(tenant) && !strings.EqualFold(id, tenant) {
			return fmt.Errorf("issuer %q names tenant %s, not the configured %s", iss, id, tenant)
		}
		return nil
	}
	u.CheckClaims = func(iss string, claims map[string]any) error {
		id, err := entraIssuerTenant(authority, iss)
		if err != nil {
			return err
		}
		if tid, _ := claims["tid"].(string); !strings.EqualFold(tid, id) {
			return fmt.Errorf("tid %q is not the tenant %s", tid, id)
		}
		return nil
	}
	return u
}

// entraIssuerTenant returns the tenant ID an Entra issuer
// (<authority>/<tenant ID>/v2.0) names.
func entraIssuerTenant(authority, iss string) (string, error) {
	rest, ok := strings.CutPrefix(iss, authority+"/")
	id, ok2 := strings.CutSuffix(rest, "/v2.0")
	if !ok || !ok2 || !config.IsGUID(id) {
		return "", fmt.Errorf("issuer %q is not a tenant-specific issuer %s/<tenant ID>/v2.0", iss, authority)
	}
	return id, nil
}
