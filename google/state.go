package google

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
)

// cursor is what a run leaves for the next: only its version. The state
// a listing reuses, each group's etag, when its members were listed and
// every member, is the cached group entry, committed with the cursor.
// Version 1 held that state itself and grew with the account past what
// the cache can store as one value; it is ignored, and the groups cached
// under it, which lack the state, have their members listed again.
type cursor struct {
	Version int `json:"v"`
}

const cursorVersion = 2

// groupState is a group's member list as last read: the etag the group
// had and when the list was read.
type groupState struct {
	Etag    string
	ReadAt  time.Time
	Members []member
}

// Attributes of a cached group entry holding its groupState beyond its
// members.
const (
	attrEtag          = "etag"
	attrMembersReadAt = "membersReadAt"
)

// readAtLayout is LDAP's Generalized Time (RFC 4517 3.3.13) in UTC.
const readAtLayout = "20060102150405Z"

// encodeCursor returns the cursor of this version.
func encodeCursor() ([]byte, error) {
	return json.Marshal(cursor{Version: cursorVersion})
}

// priorUsable reports whether the groups cached with the prior cursor
// hold their state: not when there is no cursor or one of another
// version (or type).
func priorUsable(raw []byte) bool {
	var c cursor
	return len(raw) > 0 && json.Unmarshal(raw, &c) == nil && c.Version == cursorVersion
}

// priorState returns group id's state as the last committed run cached
// it; nil when there is no cached entry or it does not hold a state.
func (s *Source) priorState(ctx context.Context, cached dirsync.Cached, id string) (*groupState, error) {
	if cached == nil {
		return nil, nil
	}
	e, err := cached.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read cached group %s: %w", id, err)
	}
	if e == nil || e.Kind != cache.KindGroup {
		return nil, nil
	}
	return s.stateOf(e), nil
}

// stateOf reads a cached group entry back into the state groupEntry
// mapped: Members holds every USER and GROUP member, externalMember and
// customerMember the others. nil when the entry lacks the etag or the
// time, or names a member it cannot read back.
func (s *Source) stateOf(e *cache.Entry) *groupState {
	etag := e.First(attrEtag)
	at, err := time.Parse(readAtLayout, e.First(attrMembersReadAt))
	if etag == "" || err != nil {
		return nil
	}
	st := &groupState{Etag: etag, ReadAt: at}
	for _, dn := range e.Members {
		m, ok := s.memberOf(dn)
		if !ok {
			return nil
		}
		st.Members = append(st.Members, m)
	}
	for _, v := range e.Values("externalMember") {
		st.Members = append(st.Members, member{Email: v, Type: memberExternal})
	}
	for _, v := range e.Values("customerMember") {
		st.Members = append(st.Members, member{ID: v, Type: memberCustomer})
	}
	return st
}

// memberOf is the inverse of dn for a member: the USER or GROUP with the
// ID in cn=<id>,ou=<kind>,<root_dn>.
func (s *Source) memberOf(dn string) (member, bool) {
	for _, k := range []struct{ kind, typ string }{{"users", memberUser}, {"groups", memberGroup}} {
		kind := k.kind
		rdn, ok := strings.CutSuffix(dn, ",ou="+kind+","+s.conn.RootDN)
		if !ok {
			continue
		}
		parsed, err := ldap.ParseDN(rdn)
		if err != nil || len(parsed.RDNs) != 1 || len(parsed.RDNs[0].Attributes) != 1 {
			return member{}, false
		}
		a := parsed.RDNs[0].Attributes[0]
		if !strings.EqualFold(a.Type, "cn") || a.Value == "" || s.dn(kind, a.Value) != dn {
			return member{}, false
		}
		return member{ID: a.Value, Type: k.typ}, true
	}
	return member{}, false
}
