package google

import (
	"cmp"
	"slices"
	"strings"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cloudapi"
)

// userEntry maps a Directory user; nil when the user is out of scope (no
// address in the connector's email domains, or outside its org units).
// A suspended or archived user is served, disabled.
func (s *Source) userEntry(u *user) *cache.Entry {
	addrs := s.addresses(u.PrimaryEmail, u.Aliases, u.NonEditableAliases)
	if (s.addrScope.Restricted() && len(addrs) == 0) || !inOrgUnits(u.OrgUnitPath, s.conn.Google.OrgUnits) {
		return nil
	}
	e := &cache.Entry{ID: u.ID, DN: s.dn("users", u.ID), Kind: cache.KindUser, Addresses: addrs}
	e.Disabled = (u.Suspended || u.Archived) && s.conn.AcknowledgeDisabledAccounts
	attrs := cloudapi.NewAttrs(userAttrs, userValues+len(u.Aliases)+len(u.NonEditableAliases))
	attrs.Add("objectClass", "top", "person", "organizationalPerson", "inetOrgPerson")
	// The full name first: readers take the first cn as the name; the ID
	// is the RDN's value, which the entry must hold too.
	attrs.Add("cn", cmp.Or(u.Name.FullName, u.PrimaryEmail), u.ID)
	attrs.Add("id", u.ID)
	attrs.Add("uid", u.PrimaryEmail)
	attrs.Add("primaryEmail", u.PrimaryEmail)
	attrs.Add("mail", u.PrimaryEmail)
	attrs.Add("displayName", u.Name.FullName)
	attrs.Add("givenName", u.Name.GivenName)
	attrs.Add("sn", u.Name.FamilyName)
	attrs.Add("aliases", u.Aliases...)
	attrs.Add("nonEditableAliases", u.NonEditableAliases...)
	attrs.Add("orgUnitPath", u.OrgUnitPath)
	attrs.Add("suspended", cache.Bool(u.Suspended))
	attrs.Add("archived", cache.Bool(u.Archived))
	attrs.Add("isAdmin", cache.Bool(u.IsAdmin))
	attrs.Add("etag", u.Etag)
	e.Attrs = attrs.Attrs
	return e
}

// groupEntry maps a Directory group and its members, with the state a
// later listing reuses (state.go): Members holds the DN of every USER and
// GROUP member, the member attribute only those served (users in scope
// and groups listed); external addresses and the customer are values.
func (s *Source) groupEntry(g *group, st *groupState, inScope, groups map[string]bool) *cache.Entry {
	e := &cache.Entry{ID: g.ID, DN: s.dn("groups", g.ID), Kind: cache.KindGroup,
		Addresses: s.addresses(g.Email, g.Aliases, g.NonEditableAliases)}
	var served, external, customer []string
	for _, m := range st.Members {
		switch m.Type {
		case memberUser:
			dn := s.dn("users", m.ID)
			e.Members = append(e.Members, dn)
			if inScope[m.ID] {
				served = append(served, dn)
			}
		case memberGroup:
			if m.ID != g.ID { // a group listing itself would loop
				dn := s.dn("groups", m.ID)
				e.Members = append(e.Members, dn)
				if groups[m.ID] {
					served = append(served, dn)
				}
			}
		case memberExternal:
			external = append(external, strings.ToLower(m.Email))
		case memberCustomer:
			customer = append(customer, m.ID)
		}
	}
	slices.Sort(e.Members)
	e.Members = slices.Compact(e.Members)
	slices.Sort(served)
	attrs := cloudapi.NewAttrs(groupAttrs, groupValues+len(g.Aliases)+len(g.NonEditableAliases)+len(served)+len(external)+len(customer))
	attrs.Add("objectClass", "top", "groupOfNames")
	attrs.Add("cn", cmp.Or(g.Name, g.Email), g.ID)
	attrs.Add("id", g.ID)
	attrs.Add("displayName", g.Name)
	attrs.Add("description", g.Description)
	attrs.Add("mail", g.Email)
	attrs.Add("aliases", g.Aliases...)
	attrs.Add("nonEditableAliases", g.NonEditableAliases...)
	attrs.Add("member", served...)
	attrs.Add(attrEtag, st.Etag)
	attrs.Add(attrMembersReadAt, st.ReadAt.UTC().Format(readAtLayout))
	attrs.Add("externalMember", external...)
	attrs.Add("customerMember", customer...)
	e.Attrs = attrs.Attrs
	return e
}

// The attributes userEntry and groupEntry add, and their single values.
const (
	userAttrs, userValues   = 16, 18
	groupAttrs, groupValues = 13, 10
)

// addresses returns an object's addresses, primary first, then its
// aliases and non-editable aliases (alias domains), limited to the
// connector's email domains.
func (s *Source) addresses(primary string, aliases, nonEditable []string) []string {
	return s.addrScope.Addresses(append(append([]string{primary}, aliases...), nonEditable...)...)
}
