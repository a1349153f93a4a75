package fakegoogle

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PutUser adds or replaces a user (an empty ID gets a fresh numeric one;
// a deleted user with this ID is restored).
func (c *Customer) PutUser(u User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putUser(u)
}

func (c *Customer) putUser(u User) string {
	if u.ID == "" {
		u.ID = c.number()
	}
	if u.OrgUnitPath == "" {
		u.OrgUnitPath = "/"
	}
	u.Aliases, u.NonEditableAliases = slices.Clone(u.Aliases), slices.Clone(u.NonEditableAliases)
	delete(c.deleted, u.ID)
	c.users[u.ID] = &u
	c.index = nil
	return u.ID
}

// DeleteUser deletes a user; users.list with showDeleted=true lists it
// (with its deletionTime) until it is put again.
func (c *Customer) DeleteUser(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.users[id]; ok {
		c.deleted[id] = deletedUser{user: *u, deleted: c.now()}
		delete(c.users, id)
		c.index = nil
	}
}

// User returns the user with this ID.
func (c *Customer) User(id string) (User, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.users[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// PutGroup adds or replaces a group (an empty ID gets a fresh one).
func (c *Customer) PutGroup(g Group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putGroup(g)
}

func (c *Customer) putGroup(g Group) string {
	if g.ID == "" {
		g.ID = "0" + c.number()[1:]
	}
	g.Aliases, g.NonEditableAliases, g.Members = slices.Clone(g.Aliases), slices.Clone(g.NonEditableAliases), slices.Clone(g.Members)
	c.groups[g.ID] = &g
	c.index = nil
	return g.ID
}

// DeleteGroup deletes a group. Memberships of it in other groups stay,
// as Google removes them only eventually.
func (c *Customer) DeleteGroup(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.groups, id)
	c.index = nil
}

// AddMember adds (or replaces, by ID or email) a member of a group.
func (c *Customer) AddMember(groupID string, m Member) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.groups[groupID]
	if !ok {
		c.tb.Fatalf("fakegoogle: AddMember: no group %q", groupID)
	}
	g.Members = slices.DeleteFunc(g.Members, func(x Member) bool { return sameMember(x, m) })
	g.Members = append(g.Members, m)
}

// RemoveMember removes the member with this ID or email from a group.
func (c *Customer) RemoveMember(groupID, memberKey string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.groups[groupID]; ok {
		g.Members = slices.DeleteFunc(g.Members, func(x Member) bool { return x.ID == memberKey || strings.EqualFold(x.Email, memberKey) })
	}
}

func sameMember(a, b Member) bool {
	return (a.ID != "" && a.ID == b.ID) || (a.Email != "" && strings.EqualFold(a.Email, b.Email))
}

// userByKey finds a user by ID, primary email or alias; c.mu is held.
func (c *Customer) userByKey(key string) *User {
	if u, ok := c.users[key]; ok {
		return u
	}
	c.reindex()
	return c.users[c.index[strings.ToLower(key)]]
}

// groupByKey finds a group by ID, email or alias; c.mu is held.
func (c *Customer) groupByKey(key string) *Group {
	if g, ok := c.groups[key]; ok {
		return g
	}
	c.reindex()
	return c.groups[c.index[strings.ToLower(key)]]
}

// reindex rebuilds the address index after a change (so a 100k-user
// directory is not scanned per lookup); c.mu is held.
func (c *Customer) reindex() {
	if c.index != nil {
		return
	}
	c.index = map[string]string{}
	for _, u := range c.users {
		for _, a := range append([]string{u.PrimaryEmail}, u.Aliases...) {
			c.index[strings.ToLower(a)] = u.ID
		}
	}
	for _, g := range c.groups {
		for _, a := range append([]string{g.Email}, g.Aliases...) {
			c.index[strings.ToLower(a)] = g.ID
		}
	}
}

// domainOf returns the lower-cased domain of an address.
func domainOf(email string) string {
	_, d, _ := strings.Cut(email, "@")
	return strings.ToLower(d)
}

// object is a rendered API resource; etag adds its etag.
type object map[string]any

// withETag sets o's etag from its content.
func (o object) withETag() object {
	delete(o, "etag")
	o["etag"] = etagOf(o)
	return o
}

// etagOf is a quoted hash of v's JSON, so it changes exactly when the
// content does.
func etagOf(v any) string {
	js, err := json.Marshal(v)
	if err != nil {
		panic("fakegoogle: encoding for an etag: " + err.Error())
	}
	sum := sha256.Sum256(js)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

const timeFormat = "2006-01-02T15:04:05.000Z"

// userObject renders u as the API does; c.mu is held.
func (c *Customer) userObject(u *User, projection string, mask []string, deleted time.Time) object {
	full := u.FullName
	if full == "" {
		full = strings.TrimSpace(u.GivenName + " " + u.FamilyName)
	}
	emails := []any{map[string]any{"address": u.PrimaryEmail, "primary": true}}
	for _, a := range u.Aliases {
		emails = append(emails, map[string]any{"address": a})
	}
	o := object{
		"kind": "admin#directory#user", "id": u.ID, "primaryEmail": u.PrimaryEmail,
		"name":    map[string]any{"givenName": u.GivenName, "familyName": u.FamilyName, "fullName": full},
		"isAdmin": u.IsAdmin, "isDelegatedAdmin": false, "agreedToTerms": true,
		"suspended": u.Suspended, "archived": u.Archived, "changePasswordAtNextLogin": false,
		"ipWhitelisted": false, "emails": emails, "customerId": c.id, "orgUnitPath": u.OrgUnitPath,
		"isMailboxSetup": true, "isEnrolledIn2Sv": false, "isEnforcedIn2Sv": false,
		"includeInGlobalAddressList": true, "creationTime": "2024-01-15T08:00:00.000Z",
		"lastLoginTime": "1970-01-01T00:00:00.000Z",
	}
	if u.Suspended {
		o["suspensionReason"] = "ADMIN"
	}
	if len(u.Aliases) > 0 {
		o["aliases"] = u.Aliases
	}
	if len(u.NonEditableAliases) > 0 {
		o["nonEditableAliases"] = u.NonEditableAliases
	}
	if !deleted.IsZero() {
		o["deletionTime"] = deleted.UTC().Format(timeFormat)
	}
	if schemas := customSchemas(u, projection, mask); len(schemas) > 0 {
		o["customSchemas"] = schemas
	}
	return o.withETag()
}

func customSchemas(u *User, projection string, mask []string) map[string]map[string]any {
	switch projection {
	case "full":
		return u.CustomSchemas
	case "custom":
		out := map[string]map[string]any{}
		for _, s := range mask {
			if v, ok := u.CustomSchemas[s]; ok {
				out[s] = v
			}
		}
		return out
	}
	return nil
}

// groupObject renders g; c.mu is held.
func groupObject(g *Group) object {
	o := object{
		"kind": "admin#directory#group", "id": g.ID, "email": g.Email, "name": g.Name,
		"description": g.Description, "adminCreated": true,
		"directMembersCount": strconv.Itoa(len(g.Members)),
	}
	if len(g.Aliases) > 0 {
		o["aliases"] = g.Aliases
	}
	if len(g.NonEditableAliases) > 0 {
		o["nonEditableAliases"] = g.NonEditableAliases
	}
	return o.withETag()
}

// resolveMember fills in what Google derives for a member; c.mu is held.
func (c *Customer) resolveMember(m Member) Member {
	if m.Role == "" {
		m.Role = "MEMBER"
	}
	switch m.Type {
	case "USER":
		key := m.ID
		if key == "" {
			key = m.Email
		}
		if u := c.userByKey(key); u != nil {
			m.ID, m.Email = u.ID, u.PrimaryEmail
			if m.Status == "" {
				m.Status = "ACTIVE"
				if u.Suspended {
					m.Status = "SUSPENDED"
				}
			}
		}
	case "GROUP":
		key := m.ID
		if key == "" {
			key = m.Email
		}
		if g := c.groupByKey(key); g != nil {
			m.ID, m.Email = g.ID, g.Email
		}
	case "CUSTOMER":
		m.ID, m.Email = c.id, ""
	}
	return m
}

// memberObject renders a resolved member.
func memberObject(m Member) object {
	o := object{"kind": "admin#directory#member", "role": m.Role, "type": m.Type}
	for k, v := range map[string]string{"id": m.ID, "email": m.Email, "status": m.Status} {
		if v != "" {
			o[k] = v
		}
	}
	return o.withETag()
}
