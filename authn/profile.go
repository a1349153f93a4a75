package authn

import (
	"slices"
	"strings"

	"github.com/dirgate/dirgate/config"
)

// profiles decide which connectors may own an account signed in to with an
// address in a given domain (see config.Auth.Profiles).
type profiles struct {
	explicit bool
	byDomain map[string][]string // explicit profiles: domain -> its one connector
	any      []string            // explicit profiles: the "*" connector, if any
	implicit []implicitProfile   // no profiles configured: one per connector
	// everyDomain lists the connectors when no implicit profile limits its
	// domains: the answer for every domain, built once.
	everyDomain []string
}

type implicitProfile struct {
	connector string
	domains   []string // nil: every domain
}

func newProfiles(cfg *config.Config) *profiles {
	p := &profiles{byDomain: map[string][]string{}}
	if len(cfg.Auth.Profiles) == 0 {
		limited := false
		for _, c := range cfg.Connectors {
			ip := implicitProfile{connector: c.Name, domains: lowerAll(c.EmailDomains)}
			p.implicit = append(p.implicit, ip)
			p.everyDomain = append(p.everyDomain, c.Name)
			limited = limited || ip.domains != nil
		}
		if limited {
			p.everyDomain = nil
		}
		return p
	}
	p.explicit = true
	for _, prof := range cfg.Auth.Profiles {
		for _, d := range lowerAll(prof.Domains) {
			if d == config.AnyDomain {
				if p.any == nil {
					p.any = []string{prof.Connector}
				}
			} else if _, dup := p.byDomain[d]; !dup {
				p.byDomain[d] = []string{prof.Connector}
			}
		}
	}
	return p
}

func lowerAll(in []string) []string {
	var out []string
	for _, s := range in {
		out = append(out, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), "."))
	}
	return out
}

// connectorsFor returns the connectors whose accounts may sign in with an
// address in domain (the caller must not modify the slice); ok is false
// when no profile takes the domain.
func (p *profiles) connectorsFor(domain string) ([]string, bool) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if p.explicit {
		if c, ok := p.byDomain[domain]; ok {
			return c, true
		}
		return p.any, p.any != nil
	}
	if p.everyDomain != nil {
		return p.everyDomain, true
	}
	var out []string
	for _, ip := range p.implicit {
		if ip.domains == nil || slices.Contains(ip.domains, domain) {
			out = append(out, ip.connector)
		}
	}
	return out, len(out) > 0
}

// addressLogin reports whether login is written as an address (email or
// UPN), the form Resolve looks up by address, and returns its domain.
func addressLogin(login string) (domain string, ok bool) {
	if strings.Contains(login, "=") {
		return "", false // a DN, even one with "@" in a value
	}
	i := strings.LastIndex(login, "@")
	if i < 0 {
		return "", false
	}
	return strings.ToLower(login[i+1:]), true
}
