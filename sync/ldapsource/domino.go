package ldapsource

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/dn"
)

// HCL Domino over LDAP: dominoUNID as the stable ID, flat group DNs at the
// root (so the usual base is ""), internetAddress as an alias, the
// "Allow Foreign Directory Synchronization" item (availableForDirSync: 0
// excludes a person or group when the connector honours it), and deny-list
// groups standing in for disabled accounts, which Domino does not have.

var domino = dialect{
	Type:        dirtype.DominoType, // disabled accounts: deny groups
	operational: []string{"dominoUNID"},
}

// excluded reports whether the connector's Domino settings keep le out.
func (s *Source) excluded(le *ldap.Entry) bool {
	return s.conn.Type == dirtype.Domino && s.conn.Domino.HonorAvailableForDirSync &&
		strings.TrimSpace(le.GetEqualFoldAttributeValue("availableForDirSync")) == "0"
}

// denied expands the configured deny groups (by common name, nested groups
// followed) into the set of member DN keys that count as disabled.
func (s *Source) denied(ctx context.Context, conn *ldap.Conn) (map[string]bool, error) {
	out := map[string]bool{}
	if s.conn.Type != dirtype.Domino || len(s.conn.Domino.DenyGroups) == 0 {
		return out, nil
	}
	seenGroups := map[string]bool{}
	var queue []string
	for _, name := range s.conn.Domino.DenyGroups {
		res, err := conn.Search(ldap.NewSearchRequest(s.conn.RootDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			fmt.Sprintf("(&%s(cn=%s))", s.conn.GroupFilter, ldap.EscapeFilter(name)), []string{"member"}, nil))
		if err != nil {
			return nil, fmt.Errorf("connector %s: deny group %q: %w", s.conn.Name, name, err)
		}
		if len(res.Entries) == 0 {
			s.log.Warn("deny group not found", "connector", s.conn.Name, "group", name)
		}
		for _, e := range res.Entries {
			seenGroups[dnKey(e.DN)] = true
			queue = append(queue, e.GetEqualFoldAttributeValues("member")...)
		}
	}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := queue[0]
		queue = queue[1:]
		k := dnKey(m)
		if out[k] || seenGroups[k] {
			continue
		}
		out[k] = true
		// A member that is itself a group: its members are denied too.
		res, err := conn.Search(ldap.NewSearchRequest(m, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			s.conn.GroupFilter, []string{"member"}, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, fmt.Errorf("connector %s: expand deny group member %q: %w", s.conn.Name, m, err)
		}
		if res != nil && len(res.Entries) == 1 {
			seenGroups[k] = true
			queue = append(queue, res.Entries[0].GetEqualFoldAttributeValues("member")...)
		}
	}
	return out, nil
}

func dnKey(s string) string {
	k, err := dn.Key(s)
	if err != nil {
		return strings.ToLower(s)
	}
	return k
}
