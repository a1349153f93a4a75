package entra

import (
	"cmp"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cloudapi"
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
	a := cloudapi.NewAttrs(17, 20+len(o.ProxyAddresses)+len(o.OtherMails))
	a.Add("accountEnabled", cache.Bool(enabled))
	// The display name first: readers take the first cn as the name; the
	// ID is the RDN's value, which the entry must hold too.
	a.Add("cn", cmp.Or(o.DisplayName, o.UserPrincipalName), o.ID)
	a.Add("displayName", o.DisplayName)
	a.Add("givenName", o.GivenName)
	a.Add("id", o.ID)
	a.Add("lastPasswordChangeDateTime", o.LastPasswordChangeDateTime)
	a.Add("mail", o.Mail)
	a.Add("mailNickname", o.MailNickname)
	a.Add("objectClass", "top", "person", "organizationalPerson", "inetOrgPerson")
	a.Add("onPremisesImmutableId", o.OnPremisesImmutableID)
	if o.OnPremisesSyncEnabled != nil {
		a.Add("onPremisesSyncEnabled", cache.Bool(*o.OnPremisesSyncEnabled))
	}
	a.Add("otherMails", o.OtherMails...)
	a.Add("proxyAddresses", o.ProxyAddresses...)
	a.Add("sn", o.Surname)
	a.Add("uid", o.UserPrincipalName)
	a.Add("userPrincipalName", o.UserPrincipalName)
	a.Add("userType", o.UserType)
	e.Attrs = a.Attrs
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
	a := cloudapi.NewAttrs(12, 12+len(o.ProxyAddresses)+len(o.GroupTypes))
	a.Add("cn", cmp.Or(o.DisplayName, o.ID), o.ID)
	a.Add("description", o.Description)
	a.Add("displayName", o.DisplayName)
	a.Add("groupTypes", o.GroupTypes...)
	a.Add("id", o.ID)
	a.Add("mail", o.Mail)
	addBool(&a, "mailEnabled", o.MailEnabled)
	if len(served) > 0 {
		// Distinct already (the keys of a map, each kind under its own
		// ou): Add's check of each value against the others would cost
		// a large group's size squared.
		a.Attrs = append(a.Attrs, cache.Attr{Name: "member", Values: served})
	}
	a.Add("objectClass", "top", "groupOfNames")
	addBool(&a, "onPremisesSyncEnabled", o.OnPremisesSyncEnabled)
	a.Add("proxyAddresses", o.ProxyAddresses...)
	addBool(&a, "securityEnabled", o.SecurityEnabled)
	e.Attrs = a.Attrs
	return e
}

// addBool adds name to a when b is set.
func addBool(a *cloudapi.Attrs, name string, b *bool) {
	if b != nil {
		a.Add(name, cache.Bool(*b))
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
