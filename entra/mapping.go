package entra

import (
	"cmp"
	"strings"

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
func (s *Source) userEntry(o *object) *cache.Entry {
	if !s.inScope(o) {
		return nil
	}
	enabled := o.AccountEnabled == nil || *o.AccountEnabled
	e := &cache.Entry{ID: o.ID, DN: s.dn("users", o.ID), Kind: cache.KindUser, Addresses: s.addresses(o)}
	e.Disabled = !enabled && s.conn.AcknowledgeDisabledAccounts
	attrs := cache.Attrs{}
	attrs.Add("objectClass", "top", "person", "organizationalPerson", "inetOrgPerson")
	// The display name first: readers take the first cn as the name; the
	// ID is the RDN's value, which the entry must hold too.
	attrs.Add("cn", cmp.Or(o.DisplayName, o.UserPrincipalName), o.ID)
	attrs.Add("id", o.ID)
	attrs.Add("uid", o.UserPrincipalName)
	attrs.Add("userPrincipalName", o.UserPrincipalName)
	attrs.Add("mail", o.Mail)
	attrs.Add("displayName", o.DisplayName)
	attrs.Add("givenName", o.GivenName)
	attrs.Add("sn", o.Surname)
	attrs.Add("mailNickname", o.MailNickname)
	attrs.Add("userType", o.UserType)
	attrs.Add("proxyAddresses", o.ProxyAddresses...)
	attrs.Add("otherMails", o.OtherMails...)
	attrs.Add("accountEnabled", cache.Bool(enabled))
	attrs.Add("onPremisesImmutableId", o.OnPremisesImmutableID)
	attrs.Add("lastPasswordChangeDateTime", o.LastPasswordChangeDateTime)
	if o.OnPremisesSyncEnabled != nil {
		attrs.Add("onPremisesSyncEnabled", cache.Bool(*o.OnPremisesSyncEnabled))
	}
	e.Attrs = attrs
	return e
}

// groupEntry maps a Graph group and its members, named by their DNs:
// Members holds every user and group Graph lists (the state the next
// incremental round starts from), the member attribute only the users in
// scope (inScope) and the groups.
func (s *Source) groupEntry(g *groupState, inScope func(string) bool) *cache.Entry {
	o := &g.Object
	e := &cache.Entry{ID: o.ID, DN: s.dn("groups", o.ID), Kind: cache.KindGroup}
	var served []string
	for _, id := range sortedKeys(g.members) {
		if g.members[id] == memberUser {
			dn := s.dn("users", id)
			e.Members = append(e.Members, dn)
			if inScope(id) {
				served = append(served, dn)
			}
		}
	}
	for _, id := range sortedKeys(g.members) {
		if g.members[id] == memberGroup && id != o.ID { // a group listing itself would loop
			dn := s.dn("groups", id)
			e.Members = append(e.Members, dn)
			served = append(served, dn)
		}
	}
	attrs := cache.Attrs{}
	attrs.Add("objectClass", "top", "groupOfNames")
	attrs.Add("cn", cmp.Or(o.DisplayName, o.ID), o.ID)
	attrs.Add("id", o.ID)
	attrs.Add("displayName", o.DisplayName)
	attrs.Add("description", o.Description)
	attrs.Add("mail", o.Mail)
	attrs.Add("proxyAddresses", o.ProxyAddresses...)
	attrs.Add("groupTypes", o.GroupTypes...)
	for _, b := range []struct {
		name string
		v    *bool
	}{{"mailEnabled", o.MailEnabled}, {"securityEnabled", o.SecurityEnabled}, {"onPremisesSyncEnabled", o.OnPremisesSyncEnabled}} {
		if b.v != nil {
			attrs.Add(b.name, cache.Bool(*b.v))
		}
	}
	attrs.Add("member", served...)
	e.Attrs = attrs
	return e
}

// addresses returns a user's login addresses, primary first: the SMTP:
// proxy address (Exchange's primary), mail, the smtp: aliases, then the
// UPN when it is an address (not a guest's #EXT# name); limited to the
// connector's email domains.
func (s *Source) addresses(o *object) []string {
	var primary, aliases []string
	for _, p := range o.ProxyAddresses {
		prefix, addr, ok := strings.Cut(p, ":")
		if !ok || !strings.EqualFold(prefix, "smtp") {
			continue // X500:, SIP:, SPO: are not mail
		}
		if prefix == "SMTP" {
			primary = append(primary, addr)
		} else {
			aliases = append(aliases, addr)
		}
	}
	// otherMails are user-managed alternates, not addresses of the mailbox.
	candidates := append(append(primary, o.Mail), aliases...)
	if !strings.Contains(o.UserPrincipalName, "#EXT#") {
		candidates = append(candidates, o.UserPrincipalName)
	}
	return s.addrScope.Addresses(candidates...)
}
