package proxy

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/dn"
	"github.com/dirgate/dirgate/filter"
)

// maxSearchTime bounds any search, whatever time limit the client asks for.
const maxSearchTime = 2 * time.Minute

// searchError is a search refused before any entry was sent.
type searchError struct {
	code int
	msg  string
}

func (l *listener) search(w *gldap.ResponseWriter, r *gldap.Request) {
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	m, err := r.GetSearchMessage()
	if err != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		done.SetDiagnosticMessage("malformed search request")
		l.write(w, done)
		return
	}
	if m.BaseDN == "" && m.Scope == gldap.BaseObject {
		l.rootDSE(w, r, m, done)
		return
	}
	start := time.Now()
	sent, serr := l.runSearch(w, r, m, done)
	if serr != nil {
		done.SetResultCode(serr.code)
		done.SetDiagnosticMessage(serr.msg)
	}
	l.answer(w, opLabel(r), done)
	if l.s.log.Enabled(context.Background(), slog.LevelDebug) {
		l.s.log.Debug("ldap search", "remote", remote(r), "base", m.BaseDN, "scope", int(m.Scope),
			"filter", m.Filter, "entries", sent, "duration", time.Since(start).String())
	}
}

// query is a parsed, authorised search.
type query struct {
	baseKey   string
	scope     gldap.Scope
	filter    *filter.Filter
	attrs     attrRequest
	typesOnly bool
	keep      func(name string) bool // see projection
}

func (l *listener) runSearch(w *gldap.ResponseWriter, r *gldap.Request, m *gldap.SearchMessage, done *gldap.SearchResponseDone) (int, *searchError) {
	if kind, _ := l.session(r.ConnectionID()).get(); kind == bindAnonymous && !l.s.settings().cfg.AllowAnonymous {
		return 0, &searchError{gldap.ResultInsufficientAccessRights, "bind as a service account or user before searching"}
	}
	// Critical controls other than paging were refused before the handler
	// ran (critical in server.go).
	var paging *gldap.ControlPaging
	for _, c := range m.Controls {
		if p, ok := c.(*gldap.ControlPaging); ok {
			paging = p
		}
	}
	f, err := filter.Parse(m.Filter, filter.Limits{})
	switch {
	case errors.Is(err, filter.ErrLimit):
		return 0, &searchError{gldap.ResultAdminLimitExceeded, "filter refused: " + err.Error()}
	case err != nil:
		return 0, &searchError{gldap.ResultProtocolError, "filter refused: " + err.Error()}
	}
	baseKey, err := dn.Key(m.BaseDN)
	if err != nil {
		return 0, &searchError{gldap.ResultInvalidDNSyntax, "invalid base DN"}
	}
	attrs, aerr := parseAttrRequest(m.Attributes, maxAttrDescs)
	if aerr != nil {
		return 0, aerr
	}
	q := &query{baseKey: baseKey, scope: m.Scope, filter: f, attrs: attrs, typesOnly: m.TypesOnly}
	q.keep = q.projection()

	limit := m.TimeLimit
	timeout := maxSearchTime
	if limit > 0 && time.Duration(limit)*time.Second < timeout {
		timeout = time.Duration(limit) * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	if paging != nil {
		return l.pagedSearch(ctx, w, r, m, q, paging, done)
	}
	sizeLimit := l.s.settings().cfg.SizeLimit
	if m.SizeLimit > 0 && int(m.SizeLimit) < sizeLimit {
		sizeLimit = int(m.SizeLimit)
	}
	sent := 0
	var serr *searchError
	err = l.s.store.View(ctx, func(v *cache.View) error {
		if e := l.checkBase(v, q); e != nil {
			serr = e
			return nil
		}
		return l.matches(ctx, v, q, func(ev *entryView) (bool, error) {
			if sent >= sizeLimit {
				serr = &searchError{gldap.ResultSizeLimitExceeded, "size limit exceeded; use the paged results control"}
				return false, nil
			}
			if err := l.sendEntry(w, r, ev, q); err != nil {
				return false, err
			}
			sent++
			return true, nil
		})
	})
	if serr != nil {
		return sent, serr
	}
	return sent, searchFailure(err)
}

func searchFailure(err error) *searchError {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return &searchError{gldap.ResultTimeLimitExceeded, "time limit exceeded"}
	default:
		return &searchError{gldap.ResultOperationsError, "search failed"}
	}
}

// checkBase refuses a base that is neither an entry, a container of
// entries, nor a configured naming context.
func (l *listener) checkBase(v *cache.View, q *query) *searchError {
	// The usual base is a configured root: no lookup needed.
	if l.s.settings().rootKeys[q.baseKey] {
		return nil
	}
	ok, err := v.Exists(q.baseKey)
	if err != nil {
		return searchFailure(err)
	}
	if !ok {
		return &searchError{gldap.ResultNoSuchObject, "no such object"}
	}
	return nil
}

// matches calls fn for every entry in scope that matches the filter, using
// an attribute index for candidates when the filter allows it.
func (l *listener) matches(ctx context.Context, v *cache.View, q *query, fn func(*entryView) (bool, error)) error {
	v.Project(q.keep)
	visit := func(e *cache.Entry) (bool, error) {
		key := e.DNKey
		if key == "" {
			key = dnKeyOf(e.DN)
		}
		if !inScope(key, q) {
			return true, nil
		}
		ev := &entryView{e: e, v: v}
		if !q.filter.Match(ev) {
			return true, ev.err
		}
		return fn(ev)
	}
	hints, ok := q.filter.Hints(func(attr string) bool { return cache.IndexedAttrs[attr] })
	if !ok {
		return v.Scan(q.baseKey, visit)
	}
	seen := map[string]bool{}
	for _, h := range hints {
		cands, err := v.ByAttrKey(h.Attr, h.Value)
		if err != nil {
			return err
		}
		for _, e := range cands {
			k := e.Connector + "\x00" + e.ID
			if seen[k] {
				continue
			}
			seen[k] = true
			if more, err := visit(e); err != nil || !more {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

func dnKeyOf(s string) string {
	k, err := dn.Key(s)
	if err != nil {
		return strings.ToLower(s)
	}
	return k
}

func inScope(key string, q *query) bool {
	switch q.scope {
	case gldap.BaseObject:
		return key == q.baseKey
	case gldap.SingleLevel:
		return dn.Parent(key) == q.baseKey && key != q.baseKey
	default:
		return dn.Under(key, q.baseKey)
	}
}

// entryView is a cached entry as LDAP clients see it: with computed
// attributes (memberOf, entryDN) that are not stored.
type entryView struct {
	e        *cache.Entry
	v        *cache.View
	memberOf []string
	loaded   bool
	err      error
}

// Values implements filter.Entry.
func (x *entryView) Values(name string) []string {
	switch strings.ToLower(name) {
	case "memberof":
		if !x.loaded {
			x.loaded = true
			x.memberOf, x.err = x.v.MemberOf(x.e)
		}
		return x.memberOf
	case "entrydn":
		return []string{x.e.DN}
	}
	return x.e.Values(name)
}

// DN implements the filter's optional DN interface (for :dn: matching).
func (x *entryView) DN() string { return x.e.DN }

func (l *listener) sendEntry(w *gldap.ResponseWriter, r *gldap.Request, ev *entryView, q *query) error {
	out := r.NewSearchResponseEntry(ev.e.DN)
	add := func(name string, values []string) {
		rng, ok := q.attrs.pick(name)
		if !ok {
			return
		}
		if rng != nil {
			name, values = rng.cut(name, values)
		}
		if q.typesOnly {
			values = nil
		}
		out.AddAttribute(name, values)
	}
	for _, a := range ev.e.Attrs {
		add(a.Name, a.Values)
	}
	if _, ok := q.attrs.pick("memberOf"); ok && ev.e.Values("memberOf") == nil {
		if mo := ev.Values("memberOf"); len(mo) > 0 {
			add("memberOf", mo)
		}
		if ev.err != nil {
			return ev.err
		}
	}
	add("entryDN", []string{ev.e.DN})
	return w.Write(out)
}

// escapeAssertion escapes a compare value for a filter string.
func escapeAssertion(v string) string { return ldap.EscapeFilter(v) }

// chainLimit bounds a transitive membership walk (cycles are tracked; this
// stops pathological group graphs from making one search expensive).
const chainLimit = 10000

// InChain evaluates LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941)
// from the cache's membership index: memberOf follows groups upwards,
// member follows members downwards.
func (x *entryView) InChain(attr, target string) (match, supported bool) {
	want, err := dn.Key(target)
	if err != nil {
		return false, true
	}
	switch attr {
	case "memberof":
		return x.walk(want, func(e *cache.Entry) ([]*cache.Entry, error) { return x.v.Groups(e) }), true
	case "member":
		return x.walk(want, func(e *cache.Entry) ([]*cache.Entry, error) { return x.v.Members(e) }), true
	}
	return false, false
}

func (x *entryView) walk(want string, next func(*cache.Entry) ([]*cache.Entry, error)) bool {
	seen := map[string]bool{x.e.Connector + "\x00" + x.e.ID: true}
	queue := []*cache.Entry{x.e}
	for len(queue) > 0 && len(seen) < chainLimit {
		cur := queue[0]
		queue = queue[1:]
		rel, err := next(cur)
		if err != nil {
			x.err = err
			return false
		}
		for _, r := range rel {
			k := r.Connector + "\x00" + r.ID
			if seen[k] {
				continue
			}
			seen[k] = true
			if dnKeyOf(r.DN) == want {
				return true
			}
			if r.Kind == cache.KindGroup {
				queue = append(queue, r)
			}
		}
	}
	return false
}
