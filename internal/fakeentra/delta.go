package fakeentra

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// tokenState is what an opaque skip or delta token carries; t.sealer
// seals it so a client cannot forge or edit one.
type tokenState struct {
	Typ    string   `json:"y"` // "s" skip, "d" delta, "l" users list
	Kind   string   `json:"k"`
	Round  int64    `json:"r,omitempty"`
	Page   int      `json:"p,omitempty"`
	Off    int      `json:"o,omitempty"`
	Sel    []string `json:"s,omitempty"`
	Filter []string `json:"f,omitempty"`
	Seq    int64    `json:"q,omitempty"`
	Issued int64    `json:"t,omitempty"`
	Expire int      `json:"e,omitempty"`
	Reset  int      `json:"x,omitempty"`
}

// round is one delta round, frozen when it starts: which objects (and
// which member changes) each page carries. Objects are rendered in their
// state at the time the page is served, as Graph does.
type round struct {
	id     int64
	kind   objKind
	sel    []string
	filter []string
	seq    int64
	reset  int
	pages  [][]item
}

type item struct {
	id      string
	members []memberDelta
}

type memberDelta struct {
	id      string
	removed bool
}

// ExpireDeltaTokens makes every delta token issued so far answer
// syncStateNotFound, as if older than the token lifetime.
func (t *Tenant) ExpireDeltaTokens() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expireEpoch++
}

// ResetSyncState makes every skip and delta token issued so far answer 410
// Gone with a Location to start over.
func (t *Tenant) ResetSyncState() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.resetEpoch++
}

// InjectEmptyPage makes the next round carry a page with no values and a
// nextLink.
func (t *Tenant) InjectEmptyPage() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.emptyPage = true
}

// InjectReplay makes the next round serve its first object a second time
// on its last page.
func (t *Tenant) InjectReplay() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.replay = true
}

var filterTerm = regexp.MustCompile(`^id eq '([^']+)'$`)

// parseFilter accepts only "id eq '…' or id eq '…'" with at most 50 ids.
func parseFilter(raw string) ([]string, *graphErr) {
	if raw == "" {
		return nil, nil
	}
	var ids []string
	for _, term := range strings.Split(raw, " or ") {
		m := filterTerm.FindStringSubmatch(strings.TrimSpace(term))
		if m == nil {
			return nil, badRequest("Request_UnsupportedQuery", "Unsupported filter: delta supports only \"id eq '…'\" terms joined by \"or\".")
		}
		ids = append(ids, m[1])
	}
	if len(ids) > 50 {
		return nil, badRequest("Request_UnsupportedQuery", "A delta filter may name at most 50 ids.")
	}
	return ids, nil
}

// serveDelta is GET /v1.0/{users|groups}/delta.
func (t *Tenant) serveDelta(w http.ResponseWriter, r *http.Request, q url.Values, k objKind) *graphErr {
	skip, delta := q.Get("$skiptoken"), q.Get("$deltatoken")
	if skip != "" || (delta != "" && delta != "latest") {
		if len(q) != 1 {
			return badRequest("BadRequest", "A nextLink or deltaLink must be used verbatim; other query options are not allowed with its token.")
		}
		var st tokenState
		if !t.sealer.Open(skip+delta, &st) || st.Kind != k.String() || (skip != "" && st.Typ != "s") || (delta != "" && st.Typ != "d") {
			return badRequest("BadRequest", "Invalid $skiptoken or $deltatoken.")
		}
		return t.serveToken1(w, r, k, st)
	}
	if e := onlyParams(q, "$select", "$filter", "$deltatoken"); e != nil {
		return e
	}
	sel, e := parseSelect(q.Get("$select"), k)
	if e != nil {
		return e
	}
	filter, e := parseFilter(q.Get("$filter"))
	if e != nil {
		return e
	}
	t.mu.Lock()
	if delta == "latest" {
		st := t.deltaState(k, sel, filter, t.seq)
		t.mu.Unlock()
		return t.writeDeltaPage(w, r, k, sel, nil, "@odata.deltaLink", st)
	}
	rd := t.buildRound(k, sel, filter, -1)
	t.mu.Unlock()
	return t.servePage(w, r, rd, 0)
}

// serveToken1 continues a round (skip token) or starts an incremental one
// (delta token).
func (t *Tenant) serveToken1(w http.ResponseWriter, r *http.Request, k objKind, st tokenState) *graphErr {
	t.mu.Lock()
	if rd := t.rounds[st.Round]; st.Typ == "s" && rd != nil {
		st.Sel, st.Filter = rd.sel, rd.filter
	}
	if st.Reset < t.resetEpoch {
		t.mu.Unlock()
		// The Location keeps $select (and $filter), so following it
		// verbatim restarts the same query.
		loc := url.Values{"$deltatoken": {""}, "$select": {strings.Join(st.Sel, ",")}}
		if len(st.Filter) > 0 {
			loc.Set("$filter", "id eq '"+strings.Join(st.Filter, "' or id eq '")+"'")
		}
		return &graphErr{status: http.StatusGone, code: "resyncRequired", msg: "The sync state was reset; restart the synchronization from the initial query.",
			headers: map[string]string{"Location": t.GraphURL() + r.URL.Path + "?" + loc.Encode()}}
	}
	if st.Typ == "s" {
		rd := t.rounds[st.Round]
		t.mu.Unlock()
		if rd == nil || st.Page >= len(rd.pages) {
			return badRequest("BadRequest", "Invalid $skiptoken.")
		}
		return t.servePage(w, r, rd, st.Page)
	}
	if st.Expire < t.expireEpoch || t.now().Sub(time.Unix(st.Issued, 0)) > t.deltaTTL {
		t.mu.Unlock()
		return badRequest("syncStateNotFound", "The sync state generation is not found. The delta token is expired and data must be synchronized again.")
	}
	rd := t.buildRound(k, st.Sel, st.Filter, st.Seq)
	t.mu.Unlock()
	return t.servePage(w, r, rd, 0)
}

func (t *Tenant) deltaState(k objKind, sel, filter []string, seq int64) tokenState {
	return tokenState{Typ: "d", Kind: k.String(), Sel: sel, Filter: filter, Seq: seq,
		Issued: t.now().Unix(), Expire: t.expireEpoch, Reset: t.resetEpoch}
}

// buildRound freezes a round: the full snapshot when from < 0, else the
// changes after sequence from, collapsed per object. The caller holds t.mu.
func (t *Tenant) buildRound(k objKind, sel, filter []string, from int64) *round {
	withMembers := k == kindGroup && slices.Contains(sel, membersProp)
	inScope := func(id string) bool { return filter == nil || slices.Contains(filter, id) }
	var items []item
	if from < 0 {
		order := t.userOrder
		if k == kindGroup {
			order = t.groupOrder
		}
		for _, id := range order {
			o := t.table(k)[id]
			if !inScope(id) || o.state == stateHardDeleted || (o.state == stateSoftDeleted && !t.initialRemoved) {
				continue
			}
			var ms []memberDelta
			if withMembers && o.state == statePresent {
				for m := range o.members {
					if u := t.users[m]; u == nil || u.state == statePresent {
						ms = append(ms, memberDelta{id: m})
					}
				}
				sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
			}
			items = t.appendItems(items, id, ms)
		}
	} else {
		items = t.changedItems(k, sel, from, inScope, withMembers)
	}
	if t.replay && len(items) > 0 {
		items, t.replay = append(items, items[0]), false
	}
	var pages [][]item
	for len(items) > t.pageSize {
		pages, items = append(pages, items[:t.pageSize]), items[t.pageSize:]
	}
	pages = append(pages, items)
	if t.emptyPage {
		at := min(1, len(pages)-1)
		pages, t.emptyPage = slices.Insert(pages, at, []item(nil)), false
	}
	t.nextRound++
	rd := &round{id: t.nextRound, kind: k, sel: sel, filter: filter, seq: t.seq, reset: t.resetEpoch, pages: pages}
	t.rounds[rd.id] = rd
	return rd
}

// changedItems collects the objects of kind k changed after from, each
// once, with the member changes of groups collapsed (last change wins).
func (t *Tenant) changedItems(k objKind, sel []string, from int64, inScope func(string) bool, withMembers bool) []item {
	start := sort.Search(len(t.log), func(i int) bool { return t.log[i].seq > from })
	var ids []string
	seen := map[string]bool{}
	memberOps := map[string]map[string]bool{} // group -> member -> removed
	for _, c := range t.log[start:] {
		if c.kind != k || !inScope(c.id) {
			continue
		}
		if !seen[c.id] {
			seen[c.id] = true
			ids = append(ids, c.id)
		}
		if c.member != "" {
			if memberOps[c.id] == nil {
				memberOps[c.id] = map[string]bool{}
			}
			memberOps[c.id][c.member] = c.removed
		}
	}
	var items []item
	for _, id := range ids {
		o := t.table(k)[id]
		if o.created > from && o.state != statePresent {
			continue // created and deleted since the last round: never seen
		}
		var ms []memberDelta
		if withMembers && o.state == statePresent {
			for m, removed := range memberOps[id] {
				ms = append(ms, memberDelta{id: m, removed: removed})
			}
			sort.Slice(ms, func(i, j int) bool { return ms[i].id < ms[j].id })
		}
		if o.stateSeq > from || len(ms) > 0 || selectedChanged(o, sel, from) {
			items = t.appendItems(items, id, ms)
		}
	}
	return items
}

func selectedChanged(o *object, sel []string, from int64) bool {
	for _, p := range sel {
		if o.propSeq[p] > from {
			return true
		}
	}
	return false
}

// appendItems adds object id, split into one item per member chunk so a
// large group repeats across items (and so across pages).
func (t *Tenant) appendItems(items []item, id string, ms []memberDelta) []item {
	if len(ms) == 0 {
		return append(items, item{id: id})
	}
	for len(ms) > 0 {
		n := min(t.memberChunk, len(ms))
		items, ms = append(items, item{id: id, members: ms[:n]}), ms[n:]
	}
	return items
}

// servePage writes page i of rd.
func (t *Tenant) servePage(w http.ResponseWriter, r *http.Request, rd *round, i int) *graphErr {
	t.mu.Lock()
	values := make([][]byte, 0, len(rd.pages[i]))
	isGroup := func(id string) bool { return t.groups[id] != nil }
	for _, it := range rd.pages[i] {
		values = append(values, appendObject(nil, t.table(rd.kind)[it.id], rd.sel, it.members, isGroup))
	}
	var st tokenState
	key := "@odata.deltaLink"
	if i+1 < len(rd.pages) {
		st, key = tokenState{Typ: "s", Kind: rd.kind.String(), Round: rd.id, Page: i + 1, Reset: rd.reset}, "@odata.nextLink"
	} else {
		st = t.deltaState(rd.kind, rd.sel, rd.filter, rd.seq)
		st.Reset = rd.reset
	}
	t.mu.Unlock()
	return t.writeDeltaPage(w, r, rd.kind, rd.sel, values, key, st)
}

func (t *Tenant) writeDeltaPage(w http.ResponseWriter, r *http.Request, k objKind, sel []string, values [][]byte, key string, st tokenState) *graphErr {
	param := "$deltatoken="
	if st.Typ == "s" {
		param = "$skiptoken="
	}
	link := t.GraphURL() + r.URL.Path + "?" + param + t.sealer.Seal(st)
	writeJSON(w, appendPage(nil, t.metadata(k, sel), values, key, link), 1)
	return nil
}
