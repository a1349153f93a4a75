package fakegoogle

import (
	"cmp"
	"slices"
	"strings"
)

func (c *Customer) listGroups(req *request) (response, *apiError) {
	q := req.q
	if e := onlyParams(q, "customer", "domain", "userKey", "maxResults", "pageToken", "query", "orderBy", "sortOrder"); e != nil {
		return response{}, e
	}
	userKey := q.Get("userKey")
	dom, e := c.scope(q, userKey == "")
	if e != nil {
		return response{}, e
	}
	size, e := maxResults(q, 200, 200)
	if e != nil {
		return response{}, e
	}
	if o := q.Get("orderBy"); o != "" && o != "email" {
		return response{}, badParam("orderBy", "Invalid value '%s'. Values must be one of email.", o)
	}
	dir := 1
	switch q.Get("sortOrder") {
	case "", "ASCENDING":
	case "DESCENDING":
		dir = -1
	default:
		return response{}, badParam("sortOrder", "Invalid value '%s'.", q.Get("sortOrder"))
	}
	match, e := parseGroupQuery(q.Get("query"))
	if e != nil {
		return response{}, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var member *User
	if userKey != "" {
		if member = c.userByKey(userKey); member == nil {
			return response{}, notFound("userKey")
		}
	}
	keys, next, e := c.page(q, "groups", size, func() []string {
		var gs []*Group
		for _, g := range c.groups {
			if (dom == "" || domainOf(g.Email) == dom) && match(g) && (member == nil || c.hasDirectMember(g, member)) {
				gs = append(gs, g)
			}
		}
		slices.SortFunc(gs, func(a, b *Group) int {
			return dir * cmp.Or(cmp.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email)), cmp.Compare(a.ID, b.ID))
		})
		ids := make([]string, len(gs))
		for i, g := range gs {
			ids[i] = g.ID
		}
		return ids
	})
	if e != nil {
		return response{}, e
	}
	var items []any
	for _, id := range keys {
		if g := c.groups[id]; g != nil {
			items = append(items, groupObject(g))
		}
	}
	return listObject("admin#directory#groups", "groups", items, next), nil
}

// hasDirectMember reports whether u is a direct USER member of g; c.mu is
// held.
func (c *Customer) hasDirectMember(g *Group, u *User) bool {
	return slices.ContainsFunc(g.Members, func(m Member) bool {
		return m.Type == "USER" && c.resolveMember(m).ID == u.ID
	})
}

// parseGroupQuery supports email: and name: clauses (prefix with a
// trailing *, else exact), ANDed.
func parseGroupQuery(raw string) (func(*Group) bool, *apiError) {
	clauses, ok := splitQuery(raw)
	bad := badParam("query", "Invalid Input: query %q", raw)
	if !ok {
		return nil, bad
	}
	var preds []func(*Group) bool
	for _, cl := range clauses {
		field, val, ok := strings.Cut(cl, ":")
		get := map[string]func(*Group) string{
			"email": func(g *Group) string { return g.Email }, "name": func(g *Group) string { return g.Name },
		}[field]
		if !ok || get == nil {
			return nil, bad
		}
		val = strings.ToLower(strings.Trim(val, "'"))
		prefix, isPrefix := strings.CutSuffix(val, "*")
		preds = append(preds, func(g *Group) bool {
			v := strings.ToLower(get(g))
			return v == val || (isPrefix && strings.HasPrefix(v, prefix))
		})
	}
	return func(g *Group) bool {
		for _, p := range preds {
			if !p(g) {
				return false
			}
		}
		return true
	}, nil
}

func (c *Customer) getGroup(req *request) (response, *apiError) {
	if e := onlyParams(req.q); e != nil {
		return response{}, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groupByKey(req.path[1])
	if g == nil {
		return response{}, notFound("groupKey")
	}
	return single(req.r, groupObject(g)), nil
}

func (c *Customer) listMembers(req *request) (response, *apiError) {
	q := req.q
	if e := onlyParams(q, "maxResults", "pageToken", "roles", "includeDerivedMembership"); e != nil {
		return response{}, e
	}
	size, e := maxResults(q, 200, 200)
	if e != nil {
		return response{}, e
	}
	var roles []string
	if raw := q.Get("roles"); raw != "" {
		for _, r := range strings.Split(raw, ",") {
			r = strings.ToUpper(strings.TrimSpace(r))
			if r != "OWNER" && r != "MANAGER" && r != "MEMBER" {
				return response{}, badParam("roles", "Invalid Input: roles %q", raw)
			}
			roles = append(roles, r)
		}
	}
	derived := q.Get("includeDerivedMembership")
	if derived != "" && derived != "true" && derived != "false" {
		return response{}, badParam("includeDerivedMembership", "Invalid value '%s'.", derived)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groupByKey(req.path[1])
	if g == nil {
		return response{}, notFound("groupKey")
	}
	members := c.members(g, derived == "true")
	members = slices.DeleteFunc(members, func(m Member) bool { return roles != nil && !slices.Contains(roles, m.Role) })
	byKey := map[string]Member{}
	keys, next, e := c.page(q, "members:"+g.ID, size, func() []string {
		ks := make([]string, len(members))
		for i, m := range members {
			ks[i] = memberKey(m)
		}
		return ks
	})
	if e != nil {
		return response{}, e
	}
	for _, m := range members {
		byKey[memberKey(m)] = m
	}
	var items []any
	for _, k := range keys {
		// A member removed since the enumeration started is left out.
		if m, ok := byKey[k]; ok {
			items = append(items, memberObject(m))
		}
	}
	return listObject("admin#directory#members", "members", items, next), nil
}

// memberKey identifies a resolved member within a group.
func memberKey(m Member) string { return m.Type + ":" + cmp.Or(m.ID, strings.ToLower(m.Email)) }

// members returns g's members resolved, in a stable order (by email, then
// ID); derived adds the members of nested groups, each once, following
// loops only once; c.mu is held.
func (c *Customer) members(g *Group, derived bool) []Member {
	var out []Member
	seen := map[string]bool{}
	visited := map[string]bool{}
	var walk func(g *Group)
	walk = func(g *Group) {
		visited[g.ID] = true
		for _, m := range g.Members {
			m = c.resolveMember(m)
			if k := memberKey(m); !seen[k] {
				seen[k] = true
				out = append(out, m)
			}
			if derived && m.Type == "GROUP" {
				if sub := c.groups[m.ID]; sub != nil && !visited[sub.ID] {
					walk(sub)
				}
			}
		}
	}
	walk(g)
	slices.SortStableFunc(out, func(a, b Member) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email)), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (c *Customer) getMember(req *request) (response, *apiError) {
	if e := onlyParams(req.q); e != nil {
		return response{}, e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groupByKey(req.path[1])
	if g == nil {
		return response{}, notFound("groupKey")
	}
	key := req.path[3]
	for _, m := range c.members(g, false) {
		if m.ID == key || strings.EqualFold(m.Email, key) {
			return single(req.r, memberObject(m)), nil
		}
	}
	return response{}, notFound("memberKey")
}
