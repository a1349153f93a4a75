package fakegoogle

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dirgate/dirgate/internal/fakecloud"
)

// apiBase is the Directory API's path prefix.
const apiBase = "/admin/directory/v1/"

// apiError is a Directory API error in Google's JSON error shape.
type apiError struct {
	status          int
	reason, message string
	domain          string // default "global"
	location        string // the parameter at fault, if any
}

func badParam(param, format string, args ...any) *apiError {
	return &apiError{status: 400, reason: "invalid", message: fmt.Sprintf(format, args...), location: param}
}

func notFound(what string) *apiError {
	return &apiError{status: 404, reason: "notFound", message: "Resource Not Found: " + what}
}

func forbidden() *apiError {
	return &apiError{status: 403, reason: "forbidden", message: "Not Authorized to access this resource/api"}
}

// statusNames are the canonical status strings of Google's error bodies.
var statusNames = map[int]string{
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
	405: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE",
	503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

// usageReasons are the reasons Google reports in the usageLimits domain.
var usageReasons = []string{"userRateLimitExceeded", "quotaExceeded", "rateLimitExceeded", "dailyLimitExceeded", "accessNotConfigured"}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	domain := e.domain
	if domain == "" {
		domain = "global"
		if slices.Contains(usageReasons, e.reason) {
			domain = "usageLimits"
		}
	}
	item := map[string]any{"message": e.message, "domain": domain, "reason": e.reason}
	if e.location != "" {
		item["location"], item["locationType"] = e.location, "parameter"
	}
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/", error="invalid_token"`)
		item["location"], item["locationType"] = "Authorization", "header"
	}
	status := statusNames[e.status]
	if status == "" {
		status = "UNKNOWN"
	}
	fakecloud.WriteJSON(w, e.status, map[string]any{"error": map[string]any{
		"code": e.status, "message": e.message, "errors": []any{item}, "status": status,
	}})
}

// request is one authenticated Directory request.
type request struct {
	r    *http.Request
	q    url.Values
	tok  accessToken
	path []string // the path below apiBase, split at "/"
}

// response is a handler's answer: the object to send and whether it was a
// list page with a next page (which triggers MutateBetweenPages).
type response struct {
	body    object
	hasNext bool
}

func (c *Customer) serveDirectory(w http.ResponseWriter, r *http.Request) {
	resp, e := c.directory1(r)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	if resp.body == nil { // 304
		w.WriteHeader(http.StatusNotModified)
		return
	}
	etag, _ := resp.body["etag"].(string)
	body, e := selectFields(resp.body, r.URL.Query().Get("fields"))
	if e != nil {
		writeAPIError(w, e)
		return
	}
	w.Header().Set("ETag", etag)
	fakecloud.WriteJSON(w, http.StatusOK, body)
	if resp.hasNext {
		c.mu.Lock()
		f := c.mutate
		c.mutate = nil
		c.mu.Unlock()
		if f != nil {
			f()
		}
	}
}

func (c *Customer) directory1(r *http.Request) (response, *apiError) {
	c.mu.Lock()
	c.requests++
	c.times = append(c.times, c.now())
	c.mu.Unlock()
	rest, ok := strings.CutPrefix(r.URL.Path, apiBase)
	if !ok || rest == "" {
		return response{}, notFound(r.URL.Path)
	}
	if r.Method != http.MethodGet {
		return response{}, &apiError{status: 405, reason: "badRequest", message: "The fake Directory API serves GET only."}
	}
	tok, e := c.authenticate(r)
	if e != nil {
		return response{}, e
	}
	req := &request{r: r, q: r.URL.Query(), tok: tok, path: strings.Split(rest, "/")}
	if e := checkStandardParams(req.q); e != nil {
		return response{}, e
	}
	switch p := req.path; {
	case len(p) == 1 && p[0] == "users":
		return c.withScope(req, c.listUsers, ScopeUserReadonly, ScopeUser)
	case len(p) == 2 && p[0] == "users":
		return c.withScope(req, c.getUser, ScopeUserReadonly, ScopeUser)
	case len(p) == 1 && p[0] == "groups":
		return c.withScope(req, c.listGroups, ScopeGroupReadonly, ScopeGroup)
	case len(p) == 2 && p[0] == "groups":
		return c.withScope(req, c.getGroup, ScopeGroupReadonly, ScopeGroup)
	case len(p) == 3 && p[0] == "groups" && p[2] == "members":
		return c.withScope(req, c.listMembers, ScopeGroupMemberReadonly, ScopeGroupMember, ScopeGroupReadonly, ScopeGroup)
	case len(p) == 4 && p[0] == "groups" && p[2] == "members":
		return c.withScope(req, c.getMember, ScopeGroupMemberReadonly, ScopeGroupMember, ScopeGroupReadonly, ScopeGroup)
	}
	return response{}, notFound(r.URL.Path)
}

// authenticate checks the bearer token; an unknown or expired one is 401.
func (c *Customer) authenticate(r *http.Request) (accessToken, *apiError) {
	unauth := &apiError{status: 401, reason: "authError",
		message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."}
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || raw == "" {
		unauth.message = "Login Required."
		unauth.reason = "required"
		return accessToken{}, unauth
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tok, ok := c.tokens[raw]
	if !ok || tok.oidc || !c.now().Before(tok.expires) {
		return accessToken{}, unauth
	}
	return tok, nil
}

// withScope runs h if the token holds one of scopes and its subject may
// use the API, after the injected faults and the per-minute quota.
func (c *Customer) withScope(req *request, h func(*request) (response, *apiError), scopes ...string) (response, *apiError) {
	if !slices.ContainsFunc(req.tok.scopes, func(s string) bool { return slices.Contains(scopes, s) }) {
		return response{}, &apiError{status: 403, reason: "insufficientPermissions", message: "Request had insufficient authentication scopes."}
	}
	c.mu.Lock()
	e := c.admit(req.tok)
	c.mu.Unlock()
	if e != nil {
		return response{}, e
	}
	return h(req)
}

// admit applies the API switch, the subject check, injected faults and the
// per-minute quota; c.mu is held.
func (c *Customer) admit(tok accessToken) *apiError {
	if c.apiOff {
		return &apiError{status: 403, reason: "accessNotConfigured",
			message: "Admin SDK API has not been used in project fake-project before or it is disabled. Enable it by visiting the API console, then retry."}
	}
	if u, ok := c.users[tok.subject]; !ok || !u.IsAdmin {
		return forbidden()
	}
	if c.fault.n > 0 {
		c.fault.n--
		msg := map[string]string{
			"rateLimitExceeded": "Rate Limit Exceeded", "backendError": "Backend Error",
			"quotaExceeded": "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'.",
		}[c.fault.reason]
		if msg == "" {
			msg = c.fault.reason
		}
		return &apiError{status: c.fault.status, reason: c.fault.reason, message: msg}
	}
	if c.perMinute > 0 {
		key := tok.subject + "@" + strconv.FormatInt(c.now().Unix()/60, 10)
		c.minute[key]++
		if c.minute[key] > c.perMinute {
			return &apiError{status: 403, reason: "userRateLimitExceeded",
				message: "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com'."}
		}
	}
	return nil
}

// standardParams are Google's system parameters every method accepts.
var standardParams = []string{"fields", "prettyPrint", "quotaUser", "alt", "key", "userIp", "$.xgafv"}

func checkStandardParams(q url.Values) *apiError {
	for k, v := range q {
		if len(v) != 1 {
			return badParam(k, "Parameter %s was given more than once.", k)
		}
	}
	if alt := q.Get("alt"); alt != "" && alt != "json" {
		return badParam("alt", "Invalid value '%s'. The fake serves alt=json only.", alt)
	}
	return nil
}

// onlyParams refuses a parameter neither standard nor in allowed.
func onlyParams(q url.Values, allowed ...string) *apiError {
	for k := range q {
		if !slices.Contains(allowed, k) && !slices.Contains(standardParams, k) {
			return badParam(k, "Unknown parameter: %s", k)
		}
	}
	return nil
}

// maxResults parses maxResults within 1..limit (default def).
func maxResults(q url.Values, def, limit int) (int, *apiError) {
	raw := q.Get("maxResults")
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, badParam("maxResults", "Invalid value '%s'. Values must match the following regular expression: '-?\\d+'", raw)
	}
	if n < 1 || n > limit {
		return 0, badParam("maxResults", "Invalid value '%d'. Values must be within the range: [1, %d]", n, limit)
	}
	return n, nil
}

// scope resolves customer/domain: the domain to restrict to ("" = all of
// the customer's).
func (c *Customer) scope(q url.Values, required bool) (string, *apiError) {
	cust, dom := q.Get("customer"), strings.ToLower(q.Get("domain"))
	if cust == "" && dom == "" {
		if required {
			return "", &apiError{status: 400, reason: "badRequest", message: "Bad Request"}
		}
		return "", nil
	}
	if cust != "" && cust != "my_customer" && cust != c.id {
		return "", &apiError{status: 400, reason: "badRequest", message: "Bad Request", location: "customer"}
	}
	if dom != "" && !slices.Contains(c.domains, dom) {
		return "", forbidden()
	}
	return dom, nil
}

// pageState is what a pageToken carries; the token is sealed.
type pageState struct {
	Kind  string `json:"k"` // users, groups, members
	Query string `json:"q"` // fingerprint of the list's parameters
	Snap  int64  `json:"s"`
	Off   int    `json:"o"`
}

// maxSnapshots bounds the page snapshots kept; an evicted one makes its
// tokens invalid, as an expired cursor would.
const maxSnapshots = 1024

// fingerprint is the list's parameters that a page token is bound to.
func fingerprint(q url.Values) string {
	v := url.Values{}
	for k, vs := range q {
		switch k {
		case "pageToken", "maxResults", "fields", "prettyPrint", "quotaUser", "alt", "key", "userIp", "$.xgafv":
		default:
			v[k] = vs
		}
	}
	return v.Encode()
}

// page returns the keys of the page a request asks for and the next page's
// token ("" on the last page). The order is fixed when the enumeration
// starts (list runs then) and kept for its later pages; c.mu is held.
func (c *Customer) page(q url.Values, kind string, size int, list func() []string) (keys []string, next string, e *apiError) {
	st := pageState{Kind: kind, Query: fingerprint(q)}
	var all []string
	if raw := q.Get("pageToken"); raw != "" {
		var got pageState
		snap, ok := []string(nil), c.sealer.Open(raw, &got)
		if ok {
			snap, ok = c.snapshots[got.Snap]
		}
		if !ok || got.Kind != st.Kind || got.Query != st.Query {
			return nil, "", &apiError{status: 400, reason: "badRequest", message: "Invalid Input: pageToken", location: "pageToken"}
		}
		st, all = got, snap
	} else {
		all = list()
	}
	end := min(st.Off+size, len(all))
	keys = all[st.Off:end]
	if end == len(all) {
		return keys, "", nil
	}
	if q.Get("pageToken") == "" {
		c.nextSnap++
		st.Snap = c.nextSnap
		c.snapshots[st.Snap] = all
		c.snapOrder = append(c.snapOrder, st.Snap)
		if len(c.snapOrder) > maxSnapshots {
			delete(c.snapshots, c.snapOrder[0])
			c.snapOrder = c.snapOrder[1:]
		}
	}
	st.Off = end
	return keys, c.sealer.Seal(st), nil
}

// listObject is a list response: kind, items under key (absent when
// empty), the list's etag and nextPageToken (absent on the last page).
func listObject(kind, key string, items []any, next string) response {
	o := object{"kind": kind}
	if len(items) > 0 {
		o[key] = items
	}
	if next != "" {
		o["nextPageToken"] = next
	}
	return response{body: o.withETag(), hasNext: next != ""}
}

// single answers a single GET, 304 when If-None-Match names its etag.
func single(r *http.Request, o object) response {
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == o["etag"] {
		return response{}
	}
	return response{body: o}
}
