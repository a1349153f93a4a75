package entra

import (
	"cmp"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
)

// inScope reports whether a user is synced: members always, guests only
// with include_guests, and with email_domains only users with an address
// in one of them.
func (s *Source) inScope(o *object) bool {
	if strings.EqualFold(o.UserType, "Guest") && !s.conn.Entra.IncludeGuests {
		return false
	}
	return !s.addrScope.Restricted() || len(s.addresses(o)) > 0
}

// userEntry maps a Graph user; nil when the user is out of scope.
//
// The attributes are added in the order cache.Entry.Normalize sorts them
// (by name, case-insensitively), so that the engine finds them sorted:
// a full sync normalises every entry on its write path.
func (s *Source) userEntry(o *object) *cache.Entry {
	if !s.inScope(o) {
		return nil
	}
	enabled := o.AccountEnabled == nil || *o.AccountEnabled
	e := &cache.Entry{ID: o.ID, DN: s.dn("users", o.ID), Kind: cache.KindUser, Addresses: s.addresses(o)}
	e.Disabled = !enabled && s.conn.AcknowledgeDisabledAccounts
	a := newAttrSet(17, 20+len(o.ProxyAddresses)+len(o.OtherMails))
	a.add("accountEnabled", cache.Bool(enabled))
	// The display name first: readers take the first cn as the name; the
	// ID is the RDN's value, which the entry must hold too.
	a.add("cn", cmp.Or(o.DisplayName, o.UserPrincipalName), o.ID)
	a.add("displayName", o.DisplayName)
	a.add("givenName", o.GivenName)
	a.add("id", o.ID)
	a.add("lastPasswordChangeDateTime", o.LastPasswordChangeDateTime)
	a.add("mail", o.Mail)
	a.add("mailNickname", o.MailNickname)
	a.add("objectClass", "top", "person", "organizationalPerson", "inetOrgPerson")
	a.add("onPremisesImmutableId", o.OnPremisesImmutableID)
	if o.OnPremisesSyncEnabled != nil {
		a.add("onPremisesSyncEnabled", cache.Bool(*o.OnPremisesSyncEnabled))
	}
	a.add("otherMails", o.OtherMails...)
	a.add("proxyAddresses", o.ProxyAddresses...)
	a.add("sn", o.Surname)
	a.add("uid", o.UserPrincipalName)
	a.add("userPrincipalName", o.UserPrincipalName)
	a.add("userType", o.UserType)
	e.Attrs = a.attrs
	return e
}

// groupEntry maps a Graph group and its members, named by their DNs:
// Members holds every user and group Graph lists (the state the next
// incremental round starts from), the member attribute only the users in
// scope (inScope) and the groups. Its attributes are in Normalize's order,
// as a user's.
func (s *Source) groupEntry(g *groupState, inScope func(string) bool) *cache.Entry {
	o := &g.Object
	e := &cache.Entry{ID: o.ID, DN: s.dn("groups", o.ID), Kind: cache.KindGroup}
	ids := sortedKeys(g.members)
	e.Members = make([]string, 0, len(ids))
	served := make([]string, 0, len(ids))
	for _, id := range ids {
		if g.members[id] == memberUser {
			dn := s.dn("users", id)
			e.Members = append(e.Members, dn)
			if inScope(id) {
				served = append(served, dn)
			}
		}
	}
	for _, id := range ids {
		if g.members[id] == memberGroup && id != o.ID { // a group listing itself would loop
			dn := s.dn("groups", id)
			e.Members = append(e.Members, dn)
			served = append(served, dn)
		}
	}
	if len(e.Members) == 0 {
		e.Members = nil
	}
	a := newAttrSet(12, 12+len(o.ProxyAddresses)+len(o.GroupTypes))
	a.add("cn", cmp.Or(o.DisplayName, o.ID), o.ID)
	a.add("description", o.Description)
	a.add("displayName", o.DisplayName)
	a.add("groupTypes", o.GroupTypes...)
	a.add("id", o.ID)
	a.add("mail", o.Mail)
	a.addBool("mailEnabled", o.MailEnabled)
	if len(served) > 0 {
		// Distinct already (the keys of a map, each kind under its own
		// ou): Add's check of each value against the others would cost
		// a large group's size squared.
		a.attrs = append(a.attrs, cache.Attr{Name: "member", Values: served})
	}
	a.add("objectClass", "top", "groupOfNames")
	a.addBool("onPremisesSyncEnabled", o.OnPremisesSyncEnabled)
	a.add("proxyAddresses", o.ProxyAddresses...)
	a.addBool("securityEnabled", o.SecurityEnabled)
	e.Attrs = a.attrs
	return e
}

// attrSet builds an entry's attributes as cache.Attrs.Add does (the
// non-empty, distinct values of each), with every short value list cut
// from one allocation: an entry otherwise costs an allocation per
// attribute, and a full sync maps every entry of the tenant.
type attrSet struct {
	attrs  cache.Attrs
	values []string
}

func newAttrSet(attrs, values int) attrSet {
	return attrSet{attrs: make(cache.Attrs, 0, attrs), values: make([]string, 0, values)}
}

func (a *attrSet) add(name string, values ...string) {
	start := len(a.values)
	for _, v := range values {
		if v != "" && !slices.Contains(a.values[start:], v) {
			a.values = append(a.values, v)
		}
	}
	if n := len(a.values); n > start {
		// The full slice expression keeps a later append from writing
		// into this attribute's values.
		a.attrs = append(a.attrs, cache.Attr{Name: name, Values: a.values[start:n:n]})
	}
}

// addBool adds name when b is set.
func (a *attrSet) addBool(name string, b *bool) {
	if b != nil {
		a.add(name, cache.Bool(*b))
	}
}

// addresses returns a user's login addresses, primary first: the SMTP:
// proxy address (Exchange's primary), mail, the smtp: aliases, then the
// UPN when it is an address (not a guest's #EXT# name); limited to the
// connector's email domains.
func (s *Source) addresses(o *object) []string {
	var buf [8]string
	candidates := smtpAddresses(buf[:0], o.ProxyAddresses, true)
	candidates = append(candidates, o.Mail)
	// otherMails are user-managed alternates, not addresses of the mailbox.
	candidates = smtpAddresses(candidates, o.ProxyAddresses, false)
	if !strings.Contains(o.UserPrincipalName, "#EXT#") {
		candidates = append(candidates, o.UserPrincipalName)
	}
	return s.addrScope.Addresses(candidates...)
}

// smtpAddresses appends the addresses of the SMTP: proxy addresses (the
// primary) or of the smtp: ones (the aliases) to out.
func smtpAddresses(out, proxyAddresses []string, primary bool) []string {
	for _, p := range proxyAddresses {
		prefix, addr, ok := strings.Cut(p, ":")
		if !ok || !strings.EqualFold(prefix, "smtp") {
			continue // X500:, SIP:, SPO: are not mail
		}
		if (prefix == "SMTP") == primary {
			out = append(out, addr)
		}
	}
	return out
}

// dn names an object of kind ("users" or "groups") by its ID.
func (s *Source) dn(kind, id string) string {
	return "cn=" + escapeID(id) + ",ou=" + kind + "," + s.conn.RootDN
}

// escapeID is ldap.EscapeDN of an object ID, without its work for the
// IDs Graph sends (lower-cased GUIDs), in which nothing needs escaping.
func escapeID(id string) string {
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return ldap.EscapeDN(id)
		}
	}
	return id
}
