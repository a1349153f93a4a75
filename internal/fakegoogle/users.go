package fakegoogle

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

func (c *Customer) listUsers(req *request) (response, *apiError) {
	q := req.q
	if e := onlyParams(q, "customer", "domain", "maxResults", "pageToken", "projection", "customFieldMask",
		"showDeleted", "viewType", "query", "orderBy", "sortOrder"); e != nil {
		return response{}, e
	}
	dom, e := c.scope(q, true)
	if e != nil {
		return response{}, e
	}
	size, e := maxResults(q, 100, 500)
	if e != nil {
		return response{}, e
	}
	projection, mask, e := parseProjection(q)
	if e != nil {
		return response{}, e
	}
	if v := q.Get("viewType"); v != "" && v != "admin_view" {
		return response{}, badParam("viewType", "Invalid value '%s'. The fake serves viewType=admin_view only.", v)
	}
	showDeleted := q.Get("showDeleted")
	if showDeleted != "" && showDeleted != "true" && showDeleted != "false" {
		return response{}, badParam("showDeleted", "Invalid value '%s'.", showDeleted)
	}
	match, e := parseUserQuery(q.Get("query"))
	if e != nil {
		return response{}, e
	}
	less, e := userOrder(q.Get("orderBy"), q.Get("sortOrder"))
	if e != nil {
		return response{}, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// lookup finds a user in the current state of the list's population.
	lookup := func(id string) (*User, time.Time) {
		if showDeleted == "true" {
			d, ok := c.deleted[id]
			if !ok {
				return nil, time.Time{}
			}
			return &d.user, d.deleted
		}
		return c.users[id], time.Time{}
	}
	keys, next, e := c.page(q, "users", size, func() []string {
		var us []*User
		if showDeleted == "true" {
			for _, d := range c.deleted {
				us = append(us, &d.user)
			}
		} else {
			for _, u := range c.users {
				us = append(us, u)
			}
		}
		us = slices.DeleteFunc(us, func(u *User) bool { return (dom != "" && domainOf(u.PrimaryEmail) != dom) || !match(u) })
		slices.SortFunc(us, less)
		ids := make([]string, len(us))
		for i, u := range us {
			ids[i] = u.ID
		}
		return ids
	})
	if e != nil {
		return response{}, e
	}
	var items []any
	for _, id := range keys {
		// A user deleted since the enumeration started is left out.
		if u, deleted := lookup(id); u != nil {
			items = append(items, c.userObject(u, projection, mask, deleted))
		}
	}
	return listObject("admin#directory#users", "users", items, next), nil
}

func (c *Customer) getUser(req *request) (response, *apiError) {
	if e := onlyParams(req.q, "projection", "customFieldMask", "viewType"); e != nil {
		return response{}, e
	}
	projection, mask, e := parseProjection(req.q)
	if e != nil {
		return response{}, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.userByKey(req.path[1])
	if u == nil {
		return response{}, notFound("userKey")
	}
	return single(req.r, c.userObject(u, projection, mask, time.Time{})), nil
}

func parseProjection(q map[string][]string) (string, []string, *apiError) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	p := get("projection")
	switch p {
	case "", "basic":
		return "basic", nil, nil
	case "full":
		return p, nil, nil
	case "custom":
		if get("customFieldMask") == "" {
			return "", nil, badParam("customFieldMask", "Invalid Input: customFieldMask is required with projection=custom")
		}
		return p, strings.Split(get("customFieldMask"), ","), nil
	}
	return "", nil, badParam("projection", "Invalid value '%s'. Values must be one of basic, custom, full.", p)
}

func userOrder(orderBy, sortOrder string) (func(a, b *User) int, *apiError) {
	key := map[string]func(*User) string{
		"": func(u *User) string { return strings.ToLower(u.PrimaryEmail) }, "email": func(u *User) string { return strings.ToLower(u.PrimaryEmail) },
		"givenName": func(u *User) string { return u.GivenName }, "familyName": func(u *User) string { return u.FamilyName },
	}[orderBy]
	if key == nil {
		return nil, badParam("orderBy", "Invalid value '%s'. Values must be one of email, familyName, givenName.", orderBy)
	}
	dir := 1
	switch sortOrder {
	case "", "ASCENDING", "ascending":
	case "DESCENDING", "descending":
		dir = -1
	default:
		return nil, badParam("sortOrder", "Invalid value '%s'.", sortOrder)
	}
	return func(a, b *User) int {
		return dir * cmp.Or(cmp.Compare(key(a), key(b)), cmp.Compare(a.ID, b.ID))
	}, nil
}

// parseUserQuery supports the search clauses a sync uses, ANDed:
// isSuspended=, isArchived=, isAdmin= (true|false), orgUnitPath= (the unit
// and every unit beneath it), email:/givenName:/familyName: (prefix with a
// trailing *, else exact) and email= (exact). Values may be single-quoted.
func parseUserQuery(raw string) (func(*User) bool, *apiError) {
	clauses, ok := splitQuery(raw)
	bad := badParam("query", "Invalid Input: query %q", raw)
	if !ok {
		return nil, bad
	}
	var preds []func(*User) bool
	for _, cl := range clauses {
		i := strings.IndexAny(cl, "=:")
		if i <= 0 {
			return nil, bad
		}
		field, op, val := cl[:i], cl[i], strings.Trim(cl[i+1:], "'")
		var p func(*User) bool
		switch field {
		case "isSuspended", "isArchived", "isAdmin":
			if op != '=' || (val != "true" && val != "false") {
				return nil, bad
			}
			want := val == "true"
			get := map[string]func(*User) bool{
				"isSuspended": func(u *User) bool { return u.Suspended }, "isArchived": func(u *User) bool { return u.Archived },
				"isAdmin": func(u *User) bool { return u.IsAdmin },
			}[field]
			p = func(u *User) bool { return get(u) == want }
		case "orgUnitPath":
			if op != '=' || !strings.HasPrefix(val, "/") {
				return nil, bad
			}
			p = func(u *User) bool { return underOrgUnit(u.OrgUnitPath, val) }
		case "email", "givenName", "familyName":
			get := map[string]func(*User) string{
				"email": func(u *User) string { return u.PrimaryEmail }, "givenName": func(u *User) string { return u.GivenName },
				"familyName": func(u *User) string { return u.FamilyName },
			}[field]
			p = textMatch(get, val, op == ':')
		default:
			return nil, bad
		}
		preds = append(preds, p)
	}
	return func(u *User) bool {
		for _, p := range preds {
			if !p(u) {
				return false
			}
		}
		return true
	}, nil
}

// textMatch matches case-insensitively: a prefix when the value ends in *
// and prefix matching is allowed, else the exact value.
func textMatch(get func(*User) string, val string, prefixOK bool) func(*User) bool {
	val = strings.ToLower(val)
	if p, ok := strings.CutSuffix(val, "*"); ok && prefixOK {
		return func(u *User) bool { return strings.HasPrefix(strings.ToLower(get(u)), p) }
	}
	return func(u *User) bool { return strings.ToLower(get(u)) == val }
}

func underOrgUnit(path, unit string) bool {
	unit = strings.TrimSuffix(unit, "/")
	return unit == "" || strings.EqualFold(path, unit) || strings.HasPrefix(strings.ToLower(path), strings.ToLower(unit)+"/")
}

// splitQuery splits a query at spaces outside single quotes; it reports
// false for an unterminated quote.
func splitQuery(raw string) ([]string, bool) {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range raw {
		switch {
		case r == '\'':
			quoted = !quoted
			cur.WriteRune(r)
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, !quoted
}
