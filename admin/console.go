package admin

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dirgate/dirgate/state"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/testconn"
)

// The console is server-rendered: every action is a plain form POST that
// redirects (post/redirect/get) to a page showing its outcome, kept once in
// the session. A few lines of inline script only announce that a long
// action is running and stop double submissions.

// flash is the outcome of a console action.
type flash struct {
	Connector string
	From      string // "list" or "detail": where the action was started
	Action    string // "sync", "apply", "test", "consent"
	Status    string // sync: ok, dry_run, blocked, running, failed
	Error     string
	Result    *dirsync.Result
	Report    *testconn.Report
	Consent   string       // "consent": Microsoft's answer in plain words
	Enroll    *EnrollToken // "agents": a new enrollment token, shown once
}

// page is what every console template receives.
type page struct {
	Title   string
	Nav     string // the active navigation entry
	Role    string // leader or standby in cluster mode, else empty
	Agents  bool   // the hub has an agent listener: the Agents page is in the navigation
	CSRF    string
	Version string
	Nonce   string
	Flash   *flash
	Now     time.Time // the server's clock, for relative times
	Data    any
}

// consoleHandler serves a console request of a signed-in session.
type consoleHandler func(w http.ResponseWriter, r *http.Request, sess *session)

func (s *server) consoleRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.loginSubmit)
	m.HandleFunc("POST /logout", s.action(s.logout))
	m.HandleFunc("GET /{$}", s.page(s.listPage))
	m.HandleFunc("GET /connectors/{name}", s.page(s.detailPage))
	m.HandleFunc("POST /connectors/{name}/sync", s.action(s.syncAction))
	m.HandleFunc("POST /connectors/{name}/test", s.action(s.testAction))
	m.HandleFunc("GET /connectors/{name}/blocked/confirm", s.page(s.confirmPage))
	m.HandleFunc("POST /connectors/{name}/blocked/apply", s.action(s.applyAction))
	s.consentRoutes(m)
	m.HandleFunc("GET /browse", s.page(s.browsePage))
	m.HandleFunc("GET /lookup", s.page(s.lookupPage))
	m.HandleFunc("GET /cluster", s.page(s.clusterPage))
	s.agentRoutes(m)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, nil, http.StatusNotFound, "Page not found", "There is no console page at "+r.URL.Path+".")
	})
}

// securityHeaders forbid framing, caching and every external resource.
func securityHeaders(w http.ResponseWriter, nonce string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-"+nonce+"'; "+
		"img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

func (s *server) render(w http.ResponseWriter, status int, name string, p page) {
	p.Version = s.o.Version
	p.Role = s.role()
	p.Agents = s.o.Agents != nil
	p.Now = s.now()
	p.Nonce = randomID()[:22]
	securityHeaders(w, p.Nonce)
	w.WriteHeader(status)
	if err := templates[name].ExecuteTemplate(w, "layout", p); err != nil {
		s.log.Error("admin console: render", "page", name, "err", err)
	}
}

func (s *server) errorPage(w http.ResponseWriter, r *http.Request, sess *session, status int, title, msg string) {
	p := page{Title: title, Data: msg}
	if sess != nil {
		p.CSRF = sess.csrf
	}
	s.render(w, status, "error", p)
}

// sessionOf returns the signed-in session of r, or nil.
func (s *server) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	return s.sessions.get(c.Value)
}

// page wraps a GET handler that needs a signed-in session.
func (s *server) page(h consoleHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.sessionOf(r)
		if sess == nil {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r, sess)
	}
}

var crossOrigin = http.NewCrossOriginProtection()

// action wraps a state-changing POST: a signed-in session, a same-origin
// request and the session's CSRF token are all required.
func (s *server) action(h consoleHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		sess := s.sessionOf(r)
		if sess == nil {
			http.Redirect(w, r, "/login?expired=1", http.StatusSeeOther)
			return
		}
		if err := crossOrigin.Check(r); err != nil || !sess.validCSRF(r.PostFormValue("csrf")) {
			s.log.Warn("admin console: refused a form without a valid CSRF token", "path", r.URL.Path, "remote", r.RemoteAddr)
			s.errorPage(w, r, sess, http.StatusForbidden, "Form refused",
				"This form did not come from this console session, or the session changed since the page was loaded. Nothing was done. Go back, reload the page and try again.")
			return
		}
		h(w, r, sess)
	}
}

// localPath keeps a post-sign-in redirect on this site.
// Browsers drop tabs and newlines from URLs and read a backslash as a
// slash, so any of them could turn "/x" into "//host": all are refused.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') ||
		strings.IndexFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return "/"
	}
	return next
}

type loginData struct {
	Next, LoginCSRF, Error, Notice string
}

func (s *server) loginForm(w http.ResponseWriter, r *http.Request, status int, next, errMsg, notice string) {
	tok := randomID()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	s.render(w, status, "login", page{Title: "Sign in", Data: loginData{Next: localPath(next), LoginCSRF: tok, Error: errMsg, Notice: notice}})
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.sessionOf(r) != nil {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	notice := ""
	switch {
	case r.URL.Query().Get("expired") != "":
		notice = "Your session has expired. Sign in again; the action was not carried out."
	case r.URL.Query().Get("out") != "":
		notice = "You are signed out."
	}
	s.loginForm(w, r, http.StatusOK, r.URL.Query().Get("next"), "", notice)
}

func (s *server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	next := r.PostFormValue("next")
	c, err := r.Cookie(loginCookie)
	if crossOrigin.Check(r) != nil || err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		s.loginForm(w, r, http.StatusForbidden, next, "The sign-in form expired or did not come from this console. Try again.", "")
		return
	}
	client := clientKey(r)
	if s.limiter.blocked(client) > 0 {
		s.loginForm(w, r, http.StatusTooManyRequests, next, "Too many failed attempts from your address. Wait 15 minutes and try again.", "")
		return
	}
	if !s.checkToken(strings.TrimSpace(r.PostFormValue("token"))) {
		s.limiter.fail(client)
		s.log.Warn("admin console: failed sign-in", "remote", r.RemoteAddr)
		time.Sleep(250 * time.Millisecond)
		s.loginForm(w, r, http.StatusUnauthorized, next, "That is not the admin token. Check admin.token_env or admin.token_file in the dirgate configuration.", "")
		return
	}
	sess := s.sessions.create()
	s.log.Info("admin console: signed in", "remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: sess.id, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, localPath(next), http.StatusSeeOther)
}

func (s *server) logout(w http.ResponseWriter, r *http.Request, sess *session) {
	s.sessions.delete(sess.id)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login?out=1", http.StatusSeeOther)
}

// connRow is a connector in the console, with what the page computes.
type connRow struct {
	dirsync.ConnectorStatus
	CacheAge time.Duration // 0 when never synced; at least a second otherwise
	Blocked  *dirsync.Result
}

func (s *server) rows(sts []dirsync.ConnectorStatus) []connRow {
	out := make([]connRow, len(sts))
	for i, st := range sts {
		out[i].ConnectorStatus = st
		if !st.LastSuccess.IsZero() {
			out[i].CacheAge = max(st.CacheAge, time.Second)
		}
		if res, ok := s.b.Blocked(st.Name); ok {
			out[i].Blocked = res
		}
	}
	return out
}

func (s *server) listPage(w http.ResponseWriter, r *http.Request, sess *session) {
	sts, err := s.b.Status(r.Context())
	if err != nil {
		s.errorPage(w, r, sess, http.StatusInternalServerError, "Status unavailable", err.Error())
		return
	}
	sort.SliceStable(sts, func(i, j int) bool { return sts[i].Name < sts[j].Name })
	s.render(w, http.StatusOK, "list", page{Title: "Directory synchronization", Nav: "connectors", CSRF: sess.csrf,
		Flash: s.sessions.takeFlash(sess), Data: s.rows(sts)})
}

type detailData struct {
	Conn  connRow
	Runs  []state.Run
	Entra bool // offers "Connect Entra ID"
}

// connectorPage resolves {name} for a console page; on failure it has
// answered.
func (s *server) connectorPage(w http.ResponseWriter, r *http.Request, sess *session) (*dirsync.ConnectorStatus, bool) {
	st, err := s.findConnector(r.Context(), r.PathValue("name"))
	if errors.Is(err, ErrUnknownConnector) {
		s.errorPage(w, r, sess, http.StatusNotFound, "No such connector", "No connector named \""+r.PathValue("name")+"\" is configured.")
		return nil, false
	}
	if err != nil {
		s.errorPage(w, r, sess, http.StatusInternalServerError, "Status unavailable", err.Error())
		return nil, false
	}
	return st, true
}

func (s *server) detailPage(w http.ResponseWriter, r *http.Request, sess *session) {
	st, ok := s.connectorPage(w, r, sess)
	if !ok {
		return
	}
	runs, err := s.b.Runs(r.Context(), st.Name, defaultRuns)
	if err != nil {
		s.errorPage(w, r, sess, http.StatusInternalServerError, "Sync history unavailable", err.Error())
		return
	}
	f := s.sessions.takeFlash(sess)
	if f != nil && f.Connector != st.Name {
		f = nil
	}
	s.render(w, http.StatusOK, "detail", page{Title: "Connector " + st.Name, Nav: "connectors", CSRF: sess.csrf, Flash: f,
		Data: detailData{Conn: s.rows([]dirsync.ConnectorStatus{*st})[0], Runs: runs, Entra: s.isEntra(st.Name)}})
}

// back redirects to where a connector action was started.
func back(w http.ResponseWriter, r *http.Request, name, from string) {
	target := "/connectors/" + url.PathEscape(name) + "#result"
	if from == "list" {
		target = "/#result"
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (s *server) syncAction(w http.ResponseWriter, r *http.Request, sess *session) {
	st, ok := s.connectorPage(w, r, sess)
	if !ok {
		return
	}
	so := syncOptions{DryRun: r.PostFormValue("dry_run") == "1", Mode: r.PostFormValue("mode")}
	o, err := so.toDirsync("console")
	if err != nil {
		s.errorPage(w, r, sess, http.StatusBadRequest, "Invalid request", err.Error())
		return
	}
	_, out, res := s.runSync(r, st.Name, o)
	from := r.PostFormValue("from")
	s.sessions.setFlash(sess, syncFlash(st.Name, from, "sync", out, res))
	back(w, r, st.Name, from)
}

// syncFlash turns a sync outcome into the flash the page shows.
func syncFlash(name, from, action string, out syncResponse, res *dirsync.Result) *flash {
	f := &flash{Connector: name, From: from, Action: action, Status: out.Status, Error: out.Error, Result: res}
	if out.Status == "blocked" {
		f.Error = out.Blocked
	}
	return f
}

func (s *server) testAction(w http.ResponseWriter, r *http.Request, sess *session) {
	st, ok := s.connectorPage(w, r, sess)
	if !ok {
		return
	}
	s.log.Info("admin: connection test requested", "connector", st.Name, "remote", r.RemoteAddr)
	rep, err := s.b.TestConnection(r.Context(), st.Name)
	f := &flash{Connector: st.Name, From: "detail", Action: "test", Report: rep}
	if err != nil {
		f.Error, f.Report = err.Error(), nil
	}
	s.sessions.setFlash(sess, f)
	back(w, r, st.Name, "detail")
}

type confirmData struct {
	Conn    dirsync.ConnectorStatus
	Pending *dirsync.Result
}

// pendingPlan returns the connector's blocked plan; without one it answers
// with an error page ending in detail.
func (s *server) pendingPlan(w http.ResponseWriter, r *http.Request, sess *session, name, detail string) (*dirsync.Result, bool) {
	pending, ok := s.b.Blocked(name)
	if !ok || pending == nil {
		s.errorPage(w, r, sess, http.StatusNotFound, "No blocked plan", "No blocked plan is waiting for review for "+name+detail)
		return nil, false
	}
	return pending, true
}

func (s *server) confirmPage(w http.ResponseWriter, r *http.Request, sess *session) {
	st, ok := s.connectorPage(w, r, sess)
	if !ok {
		return
	}
	pending, ok := s.pendingPlan(w, r, sess, st.Name, ". It may have been applied already, or a later run replaced it.")
	if !ok {
		return
	}
	s.render(w, http.StatusOK, "confirm", page{Title: "Apply the blocked plan of " + st.Name, Nav: "connectors", CSRF: sess.csrf,
		Data: confirmData{Conn: *st, Pending: pending}})
}

func (s *server) applyAction(w http.ResponseWriter, r *http.Request, sess *session) {
	st, ok := s.connectorPage(w, r, sess)
	if !ok {
		return
	}
	pending, ok := s.pendingPlan(w, r, sess, st.Name, "; nothing was applied.")
	if !ok {
		return
	}
	_, out, res := s.runSync(r, st.Name, applyOptions(pending, "console"))
	s.sessions.setFlash(sess, syncFlash(st.Name, "detail", "apply", out, res))
	back(w, r, st.Name, "detail")
}

type browseData struct {
	Query      browseQuery
	KindValue  string
	Connectors []string
	Result     *browseResult
	Error      string
	Prev, Next string // page links, "" when none
	First      int    // 1-based index of the first entry shown
	Last       int
}

func (s *server) browsePage(w http.ResponseWriter, r *http.Request, sess *session) {
	d := browseData{KindValue: r.URL.Query().Get("kind")}
	q, err := parseBrowse(r)
	if err != nil {
		d.Error = err.Error()
	} else {
		d.Query = q
		if d.Result, err = s.browse(r.Context(), q); err != nil {
			s.errorPage(w, r, sess, http.StatusInternalServerError, "Cache unavailable", err.Error())
			return
		}
		d.Query.Limit, d.Query.Offset = d.Result.Limit, d.Result.Offset
		d.First = min(d.Result.Offset+1, d.Result.Total)
		d.Last = d.Result.Offset + len(d.Result.Entries)
		link := func(offset int) string {
			v := url.Values{}
			for _, kv := range [][2]string{{"q", q.Q}, {"kind", d.KindValue}, {"connector", q.Connector}} {
				if kv[1] != "" {
					v.Set(kv[0], kv[1])
				}
			}
			if d.Result.Limit != defaultBrowseLimit {
				v.Set("limit", strconv.Itoa(d.Result.Limit))
			}
			if offset > 0 {
				v.Set("offset", strconv.Itoa(offset))
			}
			return "/browse?" + v.Encode()
		}
		if d.Result.Offset > 0 {
			d.Prev = link(max(d.Result.Offset-d.Result.Limit, 0))
		}
		if d.Last < d.Result.Total {
			d.Next = link(d.Last)
		}
	}
	if sts, err := s.b.Status(r.Context()); err == nil {
		for _, st := range sts {
			d.Connectors = append(d.Connectors, st.Name)
		}
		sort.Strings(d.Connectors)
	}
	status := http.StatusOK
	if d.Error != "" {
		status = http.StatusBadRequest
	}
	s.render(w, status, "browse", page{Title: "Browse users and groups", Nav: "browse", CSRF: sess.csrf, Data: d})
}

type lookupData struct {
	Email  string
	Result *lookupResult
}

func (s *server) lookupPage(w http.ResponseWriter, r *http.Request, sess *session) {
	d := lookupData{Email: strings.TrimSpace(r.URL.Query().Get("email"))}
	if d.Email != "" {
		var err error
		if d.Result, err = s.lookup(r.Context(), d.Email); err != nil {
			s.errorPage(w, r, sess, http.StatusInternalServerError, "Cache unavailable", err.Error())
			return
		}
	}
	s.render(w, http.StatusOK, "lookup", page{Title: "Look up an email address", Nav: "lookup", CSRF: sess.csrf, Data: d})
}
