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
	byDomain map[string]string // explicit profiles: domain -> connector
	any      string            // explicit profiles: the "*" connector, if any
	implicit []implicitProfile // no profiles configured: one per connector
}

type implicitProfile struct {
	connector string
	domains   []string // nil: every domain
}

func newProfiles(cfg *config.Config) *profiles {
	p := &profiles{byDomain: map[string]string{}}
	if len(cfg.Auth.Profiles) == 0 {
		for _, c := range cfg.Connectors {
			p.implicit = append(p.implicit, implicitProfile{connector: c.Name, domains: lowerAll(c.EmailDomains)})
		}
		return p
	}
	p.explicit = true
	for _, prof := range cfg.Auth.Profiles {
		for _, d := range lowerAll(prof.Domains) {
			if d == config.AnyDomain {
				if p.any == "" {
					p.any = prof.Connector
				}
			} else if _, dup := p.byDomain[d]; !dup {
				p.byDomain[d] = prof.Connector
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
// address in domain; ok is false when no profile takes the domain.
func (p *profiles) connectorsFor(domain string) (map[string]bool, bool) {
	domain = strings.TrimSuffix(strings.ToLower(domain), ".")
	if p.explicit {
		if c, ok := p.byDomain[domain]; ok {
			return map[string]bool{c: true}, true
		}
		if p.any != "" {
			return map[string]bool{p.any: true}, true
		}
		return nil, false
	}
	out := map[string]bool{}
	for _, ip := range p.implicit {
		if ip.domains == nil || slices.Contains(ip.domains, domain) {
			out[ip.connector] = true
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
