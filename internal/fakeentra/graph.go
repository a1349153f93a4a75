package fakeentra

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dirgate/dirgate/internal/fakecloud"
)

// Application permissions that grant each Graph resource (least privileged
// first).
var (
	usersRoles  = []string{"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	groupsRoles = []string{"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
	orgRoles    = []string{"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)

// graphErr is a Graph error: status, code, message and extra headers.
type graphErr struct {
	status  int
	code    string
	msg     string
	headers map[string]string
}

func badRequest(code, msg string) *graphErr { return &graphErr{status: 400, code: code, msg: msg} }

type throttle struct {
	n          int
	status     int
	retryAfter time.Duration
}

// Throttle makes the next n Graph requests (after authentication) answer
// status (429 or 503), with Retry-After in whole seconds, or without the
// header when retryAfter is 0.
func (t *Tenant) Throttle(n int, status int, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.throttle = throttle{n, status, retryAfter}
}

func (t *Tenant) serveGraph(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	t.requests++
	t.mu.Unlock()
	w.Header().Set("request-id", fakecloud.NewGUID())
	if id := r.Header.Get("client-request-id"); id != "" {
		w.Header().Set("client-request-id", id)
	}
	if e := t.graph1(w, r); e != nil {
		t.writeGraphError(w, r, e)
	}
}

// graph1 serves one Graph request or returns the error to answer.
func (t *Tenant) graph1(w http.ResponseWriter, r *http.Request) *graphErr {
	if r.Method != http.MethodGet {
		return &graphErr{status: 405, code: "Request_BadRequest", msg: "Specified HTTP method is not allowed for the request target."}
	}
	roles, e := t.bearer(r)
	if e != nil {
		return e
	}
	if e := t.throttled(); e != nil {
		return e
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("BadRequest", "The query string is malformed: "+err.Error())
	}
	var need []string
	var serve func() *graphErr
	switch p := r.URL.Path; p {
	case "/v1.0/users/delta", "/v1.0/users/microsoft.graph.delta":
		need, serve = usersRoles, func() *graphErr { return t.serveDelta(w, r, q, kindUser) }
	case "/v1.0/groups/delta", "/v1.0/groups/microsoft.graph.delta":
		need, serve = groupsRoles, func() *graphErr { return t.serveDelta(w, r, q, kindGroup) }
	case "/v1.0/users":
		need, serve = usersRoles, func() *graphErr { return t.serveUsers(w, r, q) }
	case "/v1.0/organization":
		need, serve = orgRoles, func() *graphErr { return t.serveOrganization(w, r, q) }
	default:
		return badRequest("BadRequest", "Resource not found for the segment '"+strings.TrimPrefix(p, "/v1.0/")+"'.")
	}
	if !slices.ContainsFunc(need, func(role string) bool { return slices.Contains(roles, role) }) {
		return &graphErr{status: 403, code: "Authorization_RequestDenied", msg: "Insufficient privileges to complete the operation."}
	}
	return serve()
}

// bearer checks the access token and returns its roles.
func (t *Tenant) bearer(r *http.Request) ([]string, *graphErr) {
	unauth := func(msg string) *graphErr {
		return &graphErr{status: 401, code: "InvalidAuthenticationToken", msg: msg,
			headers: map[string]string{"WWW-Authenticate": `Bearer realm="", authorization_uri="` + t.AuthorityURL() + `/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`}}
	}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		return nil, unauth("Access token is empty.")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, unauth("IDX14100: JWT is not well formed.")
	}
	var c struct {
		Aud   string   `json:"aud"`
		Tid   string   `json:"tid"`
		Exp   int64    `json:"exp"`
		Nbf   int64    `json:"nbf"`
		Roles []string `json:"roles"`
	}
	if err := tok.Claims(t.PublicKey(), &c); err != nil {
		return nil, unauth("Access token validation failure. Invalid signature.")
	}
	now := t.now().Unix()
	switch {
	case c.Aud != t.resource:
		return nil, unauth("Invalid audience.")
	case c.Tid != t.id:
		return nil, unauth("Access token validation failure. Invalid tenant.")
	case c.Exp <= now:
		return nil, unauth("Lifetime validation failed, the token is expired.")
	case c.Nbf > now:
		return nil, unauth("Lifetime validation failed, the token is not yet valid.")
	}
	return c.Roles, nil
}

func (t *Tenant) throttled() *graphErr {
	t.mu.Lock()
	defer t.mu.Unlock()
	th := &t.throttle
	if th.n <= 0 {
		return nil
	}
	th.n--
	e := &graphErr{status: th.status, headers: map[string]string{}}
	if th.status == http.StatusTooManyRequests {
		e.code, e.msg = "TooManyRequests", "Too many requests."
		e.headers["x-ms-throttle-scope"] = "Tenant_Application/ReadWrite/" + t.id
		e.headers["x-ms-throttle-information"] = "ResourceUnitLimitExceeded"
	} else {
		e.code, e.msg = "serviceNotAvailable", "The service is temporarily unavailable."
	}
	if th.retryAfter > 0 {
		e.headers["Retry-After"] = strconv.Itoa(int(math.Ceil(th.retryAfter.Seconds())))
	}
	return e
}

// writeGraphError writes e in Graph's error body shape.
func (t *Tenant) writeGraphError(w http.ResponseWriter, r *http.Request, e *graphErr) {
	for k, v := range e.headers {
		w.Header().Set(k, v)
	}
	body := map[string]any{"error": map[string]any{
		"code": e.code, "message": e.msg,
		"innerError": map[string]any{
			"date": t.now().UTC().Format("2006-01-02T15:04:05"), "request-id": w.Header().Get("request-id"),
			"client-request-id": r.Header.Get("client-request-id"),
		},
	}}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(body)
}

// writeJSON answers 200 with a pre-encoded body and its resource-unit cost.
func writeJSON(w http.ResponseWriter, body []byte, cost int) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("x-ms-resource-unit", strconv.Itoa(cost))
	_, _ = w.Write(body)
}

// onlyParams refuses any query parameter not in allowed; $top, $expand and
// $orderby get Graph's "unsupported query" error.
func onlyParams(q url.Values, allowed ...string) *graphErr {
	for k, v := range q {
		if len(v) != 1 {
			return badRequest("BadRequest", "Query option '"+k+"' was specified more than once.")
		}
		if !slices.Contains(allowed, k) {
			return badRequest("Request_UnsupportedQuery", "Unsupported query option '"+k+"' on this resource.")
		}
	}
	return nil
}

// parseSelect resolves $select against the properties of k (names are
// case-insensitive in Graph); id is always included.
func parseSelect(raw string, k objKind) ([]string, *graphErr) {
	if raw == "" {
		if k == kindGroup {
			return defaultGroupSelect, nil
		}
		return defaultUserSelect, nil
	}
	sel := []string{"id"}
	for _, name := range strings.Split(raw, ",") {
		name = strings.TrimSpace(name)
		canon := ""
		if k == kindGroup && strings.EqualFold(name, membersProp) {
			canon = membersProp
		}
		for _, p := range propsOf(k) {
			if strings.EqualFold(p.name, name) {
				canon = p.name
			}
		}
		if canon == "" {
			return nil, badRequest("BadRequest", "Could not find a property named '"+name+"' on type 'microsoft.graph."+strings.TrimSuffix(k.String(), "s")+"'.")
		}
		if !slices.Contains(sel, canon) {
			sel = append(sel, canon)
		}
	}
	return sel, nil
}

// appendObject appends the JSON of o with the properties sel: never-set
// properties are omitted, cleared ones are null ([] for collections).
func appendObject(b []byte, o *object, sel []string, members []memberDelta, isGroup func(string) bool) []byte {
	switch o.state {
	case stateSoftDeleted:
		return appendRemoved(b, o.id(), "changed")
	case stateHardDeleted:
		return appendRemoved(b, o.id(), "deleted")
	}
	b = append(b, '{')
	first := true
	for _, p := range propsOf(o.kind) {
		if !slices.Contains(sel, p.name) {
			continue
		}
		v := p.get(o)
		switch {
		case !isEmpty(v) || p.always:
		case !o.everSet[p.name]:
			continue
		case isCollection(v):
			v = []string{}
		default:
			v = nil
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendKV(b, p.name, v)
	}
	if len(members) > 0 {
		b = append(b, `,"members@delta":[`...)
		for i, m := range members {
			if i > 0 {
				b = append(b, ',')
			}
			typ := "#microsoft.graph.user"
			if isGroup(m.id) {
				typ = "#microsoft.graph.group"
			}
			b = append(b, `{"@odata.type":"`+typ+`",`...)
			b = appendKV(b, "id", m.id)
			if m.removed {
				b = append(b, `,"@removed":{"reason":"deleted"}`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func isCollection(v any) bool { _, ok := v.([]string); return ok }

func appendRemoved(b []byte, id, reason string) []byte {
	b = append(b, '{')
	b = appendKV(b, "id", id)
	return append(b, `,"@removed":{"reason":"`+reason+`"}}`...)
}

func appendKV(b []byte, k string, v any) []byte {
	b = strconv.AppendQuote(b, k)
	b = append(b, ':')
	enc, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings, string slices and bools always encode
	}
	return append(b, enc...)
}

// appendPage appends the page envelope around values with the link key
// ("@odata.nextLink" or "@odata.deltaLink") set to link.
func appendPage(b []byte, context string, values [][]byte, linkKey, link string) []byte {
	b = append(b, '{')
	b = appendKV(b, "@odata.context", context)
	if linkKey != "" {
		b = append(b, ',')
		b = appendKV(b, linkKey, link)
	}
	b = append(b, `,"value":[`...)
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, v...)
	}
	return append(b, "]}"...)
}

func (t *Tenant) metadata(k objKind, sel []string) string {
	return t.GraphURL() + "/v1.0/$metadata#" + k.String() + "(" + strings.Join(sel, ",") + ")"
}

// serveUsers is GET /v1.0/users: pages of existing users, $top 1..999.
func (t *Tenant) serveUsers(w http.ResponseWriter, r *http.Request, q url.Values) *graphErr {
	if e := onlyParams(q, "$top", "$select", "$skiptoken"); e != nil {
		return e
	}
	st := tokenState{Typ: "l", Kind: kindUser.String(), Page: 100}
	if tok := q.Get("$skiptoken"); tok != "" {
		if len(q) != 1 {
			return badRequest("BadRequest", "A $skiptoken link must be used verbatim; other query options are not allowed with it.")
		}
		if !t.sealer.Open(tok, &st) || st.Typ != "l" {
			return badRequest("BadRequest", "Invalid $skiptoken.")
		}
	} else {
		if top := q.Get("$top"); top != "" {
			n, err := strconv.Atoi(top)
			if err != nil || n < 1 || n > 999 {
				return badRequest("Request_BadRequest", "Invalid page size specified: '"+top+"'. Must be between 1 and 999 inclusive.")
			}
			st.Page = n
		}
		sel, e := parseSelect(q.Get("$select"), kindUser)
		if e != nil {
			return e
		}
		st.Sel = sel
	}
	t.mu.Lock()
	var values [][]byte
	next := 0
	for i := st.Off; i < len(t.userOrder); i++ {
		o := t.users[t.userOrder[i]]
		if o.state != statePresent {
			continue
		}
		if len(values) == st.Page {
			next = i
			break
		}
		values = append(values, appendObject(nil, o, st.Sel, nil, nil))
	}
	t.mu.Unlock()
	link, linkKey := "", ""
	if next > 0 {
		st.Off = next
		linkKey, link = "@odata.nextLink", t.GraphURL()+r.URL.Path+"?$skiptoken="+t.sealer.Seal(st)
	}
	cost := 2
	if q.Has("$select") {
		cost = 1
	}
	writeJSON(w, appendPage(nil, t.metadata(kindUser, st.Sel), values, linkKey, link), cost)
	return nil
}

// serveOrganization is GET /v1.0/organization: the tenant and its domains.
func (t *Tenant) serveOrganization(w http.ResponseWriter, _ *http.Request, q url.Values) *graphErr {
	if e := onlyParams(q, "$select"); e != nil {
		return e
	}
	var doms []map[string]any
	for i, d := range t.domains {
		doms = append(doms, map[string]any{"name": d, "isDefault": i == 0, "isInitial": strings.HasSuffix(d, ".onmicrosoft.com"), "type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline"})
	}
	body, err := json.Marshal(map[string]any{
		"@odata.context": t.GraphURL() + "/v1.0/$metadata#organization",
		"value":          []any{map[string]any{"id": t.id, "displayName": "Fake tenant " + t.domains[0], "tenantType": "AAD", "verifiedDomains": doms}},
	})
	if err != nil {
		return &graphErr{status: 500, code: "generalException", msg: err.Error()}
	}
	writeJSON(w, body, 1)
	return nil
}
