package entra

import (
	"strings"

	"github.com/dirgate/dirgate/cache"
)

// stateOf reads a cached group entry back into the state an incremental
// round merges members@delta into: the properties groupEntry mapped and
// every member its Members list. The round replaces the properties when
// Graph sends the group; they are kept for a group emitted again only
// because a member entered or left scope.
func (s *Source) stateOf(e *cache.Entry) *groupState {
	o := object{
		ID: e.ID, DisplayName: e.First("displayName"), Description: e.First("description"), Mail: e.First("mail"),
		ProxyAddresses: e.Values("proxyAddresses"), GroupTypes: e.Values("groupTypes"),
		MailEnabled: boolAttr(e, "mailEnabled"), SecurityEnabled: boolAttr(e, "securityEnabled"),
		OnPremisesSyncEnabled: boolAttr(e, "onPremisesSyncEnabled"),
	}
	g := &groupState{Object: o, members: make(map[string]string, len(e.Members))}
	for _, dn := range e.Members {
		if id, ok := s.idOf(dn, "users"); ok {
			g.members[id] = memberUser
		} else if id, ok := s.idOf(dn, "groups"); ok {
			g.members[id] = memberGroup
		}
	}
	return g
}

// idOf is the inverse of dn: the ID in cn=<id>,ou=<kind>,<root_dn>.
// Graph IDs are GUIDs, which DN escaping leaves alone.
func (s *Source) idOf(dn, kind string) (string, bool) {
	rest, ok := strings.CutPrefix(dn, "cn=")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, ",ou="+kind+","+s.conn.RootDN)
	return id, ok && id != "" && !strings.ContainsAny(id, ",=+\\")
}

// boolAttr reads an attribute groupEntry wrote with cache.Bool; nil when
// absent.
func boolAttr(e *cache.Entry, name string) *bool {
	v := e.First(name)
	if v == "" {
		return nil
	}
	b := v == cache.Bool(true)
	return &b
}
