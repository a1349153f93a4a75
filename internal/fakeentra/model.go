package fakeentra

import (
	"slices"
	"strings"
	"time"
)

type objKind int

const (
	kindUser objKind = iota
	kindGroup
)

func (k objKind) String() string {
	if k == kindGroup {
		return "groups"
	}
	return "users"
}

type objState int

const (
	statePresent objState = iota
	stateSoftDeleted
	stateHardDeleted
)

// object is a user or group with what the change log needs to know about
// it: when it was created, when its state last changed, when each property
// last changed and which properties ever had a value.
type object struct {
	kind     objKind
	user     User
	group    Group // Members is kept in members instead
	members  map[string]bool
	state    objState
	created  int64
	stateSeq int64
	propSeq  map[string]int64
	everSet  map[string]bool
	failures int
}

func (o *object) id() string {
	if o.kind == kindGroup {
		return o.group.ID
	}
	return o.user.ID
}

// change is one entry of the append-only change log. member is set for a
// membership change of group id.
type change struct {
	seq     int64
	kind    objKind
	id      string
	member  string
	removed bool
}

// prop is a selectable property; get returns a string, []string or bool.
// always marks properties every object has (served even when false).
type prop struct {
	name   string
	get    func(o *object) any
	always bool
}

var userProps = []prop{
	{"id", func(o *object) any { return o.user.ID }, true},
	{"userPrincipalName", func(o *object) any { return o.user.UserPrincipalName }, false},
	{"mail", func(o *object) any { return o.user.Mail }, false},
	{"proxyAddresses", func(o *object) any { return o.user.ProxyAddresses }, false},
	{"otherMails", func(o *object) any { return o.user.OtherMails }, false},
	{"accountEnabled", func(o *object) any { return o.user.AccountEnabled }, true},
	{"displayName", func(o *object) any { return o.user.DisplayName }, false},
	{"givenName", func(o *object) any { return o.user.GivenName }, false},
	{"surname", func(o *object) any { return o.user.Surname }, false},
	{"userType", func(o *object) any { return o.user.UserType }, false},
	{"onPremisesImmutableId", func(o *object) any { return o.user.OnPremisesImmutableID }, false},
	{"onPremisesSyncEnabled", func(o *object) any { return o.user.OnPremisesSyncEnabled }, false},
	{"mailNickname", func(o *object) any { return o.user.MailNickname }, false},
	{"lastPasswordChangeDateTime", func(o *object) any {
		if o.user.LastPasswordChangeDateTime.IsZero() {
			return ""
		}
		return o.user.LastPasswordChangeDateTime.UTC().Format(time.RFC3339)
	}, false},
	{"onPremisesSamAccountName", func(*object) any { return "" }, false},
}

var groupProps = []prop{
	{"id", func(o *object) any { return o.group.ID }, true},
	{"displayName", func(o *object) any { return o.group.DisplayName }, false},
	{"mail", func(o *object) any { return o.group.Mail }, false},
	{"mailEnabled", func(o *object) any { return o.group.MailEnabled }, true},
	{"securityEnabled", func(o *object) any { return o.group.SecurityEnabled }, true},
	{"groupTypes", func(o *object) any { return o.group.GroupTypes }, false},
	{"proxyAddresses", func(o *object) any { return o.group.ProxyAddresses }, false},
	{"description", func(*object) any { return "" }, false},
	{"onPremisesSyncEnabled", func(*object) any { return false }, false},
}

// membersProp is the pseudo-property that makes groups delta carry
// members@delta.
const membersProp = "members"

// Graph's default property sets when a delta request has no $select.
var (
	defaultUserSelect  = []string{"id", "displayName", "givenName", "surname", "mail", "userPrincipalName"}
	defaultGroupSelect = []string{"id", "displayName", "mail", "mailEnabled", "securityEnabled", "groupTypes", "proxyAddresses"}
)

func propsOf(k objKind) []prop {
	if k == kindGroup {
		return groupProps
	}
	return userProps
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case string:
		return v == ""
	case []string:
		return len(v) == 0
	case bool:
		return !v
	}
	return v == nil
}

func sameValue(a, b any) bool {
	if as, ok := a.([]string); ok {
		return slices.Equal(as, b.([]string))
	}
	return a == b
}

// record stores the new version next of an object, tracking which
// properties changed at seq. It reports whether any did.
func record(prev, next *object, seq int64) bool {
	changed := false
	for _, p := range propsOf(next.kind) {
		v := p.get(next)
		if !isEmpty(v) {
			next.everSet[p.name] = true
		}
		if prev == nil || !sameValue(p.get(prev), v) {
			next.propSeq[p.name] = seq
			changed = true
		}
	}
	return changed
}

func (t *Tenant) table(k objKind) map[string]*object {
	if k == kindGroup {
		return t.groups
	}
	return t.users
}

// put stores next (user or group), appending to the change log. The
// caller holds t.mu.
func (t *Tenant) put(next *object) *object {
	t.seq++
	id := next.id()
	prev := t.table(next.kind)[id]
	next.propSeq, next.everSet = map[string]int64{}, map[string]bool{}
	if prev == nil || prev.state == stateHardDeleted {
		if prev == nil {
			if next.kind == kindGroup {
				t.groupOrder = append(t.groupOrder, id)
			} else {
				t.userOrder = append(t.userOrder, id)
			}
		}
		next.created, next.stateSeq, next.state = t.seq, t.seq, statePresent
		record(nil, next, t.seq)
		t.log = append(t.log, change{seq: t.seq, kind: next.kind, id: id})
	} else {
		next.created, next.stateSeq, next.state, next.failures = prev.created, prev.stateSeq, prev.state, prev.failures
		for p, s := range prev.propSeq {
			next.propSeq[p] = s
		}
		for p := range prev.everSet {
			next.everSet[p] = true
		}
		if record(prev, next, t.seq) {
			t.log = append(t.log, change{seq: t.seq, kind: next.kind, id: id})
		}
	}
	t.table(next.kind)[id] = next
	return prev
}

// PutUser creates or replaces a user. Replacing a soft-deleted user keeps
// it deleted; replacing a hard-deleted one creates it anew.
func (t *Tenant) PutUser(u User) {
	t.tb.Helper()
	if u.ID == "" {
		t.tb.Fatalf("fakeentra: PutUser without an ID")
	}
	u.ProxyAddresses, u.OtherMails = slices.Clone(u.ProxyAddresses), slices.Clone(u.OtherMails)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.put(&object{kind: kindUser, user: u})
}

// PutGroup creates or replaces a group, logging member additions and
// removals against the previous membership.
func (t *Tenant) PutGroup(g Group) {
	t.tb.Helper()
	if g.ID == "" {
		t.tb.Fatalf("fakeentra: PutGroup without an ID")
	}
	members := g.Members
	g.Members = nil
	g.GroupTypes, g.ProxyAddresses = slices.Clone(g.GroupTypes), slices.Clone(g.ProxyAddresses)
	t.mu.Lock()
	defer t.mu.Unlock()
	next := &object{kind: kindGroup, group: g, members: map[string]bool{}}
	prev := t.put(next)
	if prev != nil && prev.state != stateHardDeleted {
		for m := range prev.members {
			if !slices.Contains(members, m) {
				t.log = append(t.log, change{seq: t.seq, kind: kindGroup, id: g.ID, member: m, removed: true})
			}
		}
	}
	for _, m := range members {
		if !next.members[m] && (prev == nil || prev.state == stateHardDeleted || !prev.members[m]) {
			t.log = append(t.log, change{seq: t.seq, kind: kindGroup, id: g.ID, member: m})
		}
		next.members[m] = true
	}
}

// mustGet returns the object id of kind k in one of the states want, or
// fails the test. The caller holds t.mu.
func (t *Tenant) mustGet(k objKind, id string, want ...objState) *object {
	t.tb.Helper()
	o := t.table(k)[id]
	if o == nil || !slices.Contains(want, o.state) {
		t.tb.Fatalf("fakeentra: no %s %q in the state this change needs", strings.TrimSuffix(k.String(), "s"), id)
	}
	return o
}

// setState moves an object to state s and logs it. The caller holds t.mu.
func (t *Tenant) setState(o *object, s objState) {
	t.seq++
	o.state, o.stateSeq = s, t.seq
	t.log = append(t.log, change{seq: t.seq, kind: o.kind, id: o.id()})
}

// SoftDelete moves a user to the recycle bin: delta serves it as @removed
// "changed"; its group memberships are kept (hidden) for a restore.
func (t *Tenant) SoftDelete(id string) {
	t.tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setState(t.mustGet(kindUser, id, statePresent), stateSoftDeleted)
}

// Restore brings a soft-deleted user back; delta serves it again in full.
func (t *Tenant) Restore(id string) {
	t.tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setState(t.mustGet(kindUser, id, stateSoftDeleted), statePresent)
}

// HardDelete deletes a user permanently: delta serves @removed "deleted".
// Like Graph, it drops the user from every group without a members@delta
// removal (groups delta is documented not to surface these reliably).
func (t *Tenant) HardDelete(id string) {
	t.tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setState(t.mustGet(kindUser, id, statePresent, stateSoftDeleted), stateHardDeleted)
	t.dropMemberEverywhere(id)
}

// DeleteGroup deletes a group permanently (@removed "deleted") and drops
// it, silently, from the groups that nested it.
func (t *Tenant) DeleteGroup(id string) {
	t.tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setState(t.mustGet(kindGroup, id, statePresent), stateHardDeleted)
	t.dropMemberEverywhere(id)
}

func (t *Tenant) dropMemberEverywhere(id string) {
	for _, g := range t.groups {
		delete(g.members, id)
	}
}

// AddMember adds a user or group to a group (a members@delta addition).
func (t *Tenant) AddMember(groupID, memberID string) { t.setMember(groupID, memberID, false) }

// RemoveMember removes a member (a members@delta entry with @removed).
func (t *Tenant) RemoveMember(groupID, memberID string) { t.setMember(groupID, memberID, true) }

func (t *Tenant) setMember(groupID, memberID string, remove bool) {
	t.tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.mustGet(kindGroup, groupID, statePresent)
	if !remove && t.users[memberID] == nil && t.groups[memberID] == nil {
		t.tb.Fatalf("fakeentra: AddMember(%q, %q): no such user or group", groupID, memberID)
	}
	if g.members[memberID] != remove {
		return
	}
	t.seq++
	if remove {
		delete(g.members, memberID)
	} else {
		g.members[memberID] = true
	}
	t.log = append(t.log, change{seq: t.seq, kind: kindGroup, id: groupID, member: memberID, removed: remove})
}

// User returns a user that exists (not deleted), for the OIDC upstream.
func (t *Tenant) User(id string) (User, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.users[id]
	if o == nil || o.state != statePresent {
		return User{}, false
	}
	return o.user, true
}

// UserByPrincipalName finds an existing user by UPN, case-insensitively.
func (t *Tenant) UserByPrincipalName(upn string) (User, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o := t.userByUPN(upn); o != nil {
		return o.user, true
	}
	return User{}, false
}

// userByUPN is the caller-holds-t.mu lookup of an existing user.
func (t *Tenant) userByUPN(upn string) *object {
	for _, id := range t.userOrder {
		if o := t.users[id]; o.state == statePresent && strings.EqualFold(o.user.UserPrincipalName, upn) {
			return o
		}
	}
	return nil
}

// PasswordFailures returns how many wrong passwords the password grant has
// seen for user id since its last success.
func (t *Tenant) PasswordFailures(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if o := t.users[id]; o != nil {
		return o.failures
	}
	return 0
}
