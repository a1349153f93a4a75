package google

import (
	"slices"
	"strings"

	"github.com/dirgate/dirgate/cache"
)

// userEntry maps a Directory user; nil when the user is out of scope (no
// address in the connector's email domains, or outside its org units).
// A suspended or archived user is served, disabled.
func (s *Source) userEntry(u *user) *cache.Entry {
	addrs := s.addresses(u.PrimaryEmail, u.Aliases, u.NonEditableAliases)
	if (s.domains != nil && len(addrs) == 0) || !inOrgUnits(u.OrgUnitPath, s.conn.Google.OrgUnits) {
		return nil
	}
	e := &cache.Entry{ID: u.ID, DN: s.dn("users", u.ID), Kind: cache.KindUser, Addresses: addrs}
	e.Disabled = (u.Suspended || u.Archived) && s.conn.AcknowledgeDisabledAccounts
	attrs := attrSet{}
	attrs.add("objectClass", "top", "person", "organizationalPerson", "inetOrgPerson")
	// The full name first: readers take the first cn as the name; the ID
	// is the RDN's value, which the entry must hold too.
	attrs.add("cn", nonEmpty(u.Name.FullName, u.PrimaryEmail), u.ID)
	attrs.add("id", u.ID)
	attrs.add("uid", u.PrimaryEmail)
	attrs.add("primaryEmail", u.PrimaryEmail)
	attrs.add("mail", u.PrimaryEmail)
	attrs.add("displayName", u.Name.FullName)
	attrs.add("givenName", u.Name.GivenName)
	attrs.add("sn", u.Name.FamilyName)
	attrs.add("aliases", u.Aliases...)
	attrs.add("nonEditableAliases", u.NonEditableAliases...)
	attrs.add("orgUnitPath", u.OrgUnitPath)
	attrs.add("suspended", ldapBool(u.Suspended))
	attrs.add("archived", ldapBool(u.Archived))
	attrs.add("isAdmin", ldapBool(u.IsAdmin))
	attrs.add("etag", u.Etag)
	e.Attrs = attrs
	return e
}

// groupEntry maps a Directory group and its members: users in scope and
// groups listed, by DN; external addresses and the customer as values.
func (s *Source) groupEntry(g *group, members []member, inScope, groups map[string]bool) *cache.Entry {
	e := &cache.Entry{ID: g.ID, DN: s.dn("groups", g.ID), Kind: cache.KindGroup,
		Addresses: s.addresses(g.Email, g.Aliases, g.NonEditableAliases)}
	var external, customer []string
	for _, m := range members {
		switch m.Type {
		case memberUser:
			if inScope[m.ID] {
				e.Members = append(e.Members, s.dn("users", m.ID))
			}
		case memberGroup:
			if groups[m.ID] && m.ID != g.ID { // a group listing itself would loop
				e.Members = append(e.Members, s.dn("groups", m.ID))
			}
		case memberExternal:
			external = append(external, strings.ToLower(m.Email))
		case memberCustomer:
			customer = append(customer, m.ID)
		}
	}
	slices.Sort(e.Members)
	e.Members = slices.Compact(e.Members)
	attrs := attrSet{}
	attrs.add("objectClass", "top", "groupOfNames")
	attrs.add("cn", nonEmpty(g.Name, g.Email), g.ID)
	attrs.add("id", g.ID)
	attrs.add("displayName", g.Name)
	attrs.add("description", g.Description)
	attrs.add("mail", g.Email)
	attrs.add("aliases", g.Aliases...)
	attrs.add("nonEditableAliases", g.NonEditableAliases...)
	attrs.add("member", e.Members...)
	attrs.add("externalMember", external...)
	attrs.add("customerMember", customer...)
	e.Attrs = attrs
	return e
}

// addresses returns an object's addresses, primary first, then its
// aliases and non-editable aliases (alias domains), limited to the
// connector's email domains.
func (s *Source) addresses(primary string, aliases, nonEditable []string) []string {
	var out []string
	for _, a := range append(append([]string{primary}, aliases...), nonEditable...) {
		a = cache.NormalizeAddress(a)
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 || slices.Contains(out, a) {
			continue
		}
		if s.domains != nil && !s.domains[a[at+1:]] {
			continue
		}
		out = append(out, a)
	}
	return out
}

// attrSet collects attributes, leaving out empty values.
type attrSet []cache.Attr

func (a *attrSet) add(name string, values ...string) {
	var vs []string
	for _, v := range values {
		if v != "" && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	if len(vs) > 0 {
		*a = append(*a, cache.Attr{Name: name, Values: vs})
	}
}

func ldapBool(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
