package admin

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/internal/pending"
)

// EntraApp is what "Connect Entra ID" needs to send an administrator to a
// tenant's admin-consent page for dirgate's app registration.
type EntraApp struct {
	// AuthorityURL is the cloud's sign-in host, e.g.
	// https://login.microsoftonline.com.
	AuthorityURL string
	// Tenant is the tenant ID or a verified domain.
	Tenant   string
	ClientID string
}

// consentTTL bounds the administrator's round trip through Microsoft.
const consentTTL = 10 * time.Minute

// consentCookie binds a consent round trip to the browser that started it.
// It is SameSite=Lax, unlike the session cookie: Microsoft's redirect back
// is a cross-site navigation, which carries Lax cookies only.
const consentCookie = "dirgate_admin_consent"

// consentState is one "Connect Entra ID" round trip, keyed by its state.
type consentState struct {
	session, connector, binding string
}

// consentsPerSession bounds the round trips one console session has in
// progress: an administrator starts one at a time, perhaps retries a few.
const consentsPerSession = 16

// consentStates are the round trips in progress: single use, short-lived
// (consentTTL), bounded overall and per session, swept in bulk.
type consentStates struct{ t *pending.Table[consentState] }

func newConsentStates() consentStates {
	return consentStates{pending.New[consentState](maxSessions, consentsPerSession)}
}

// put stores s under a new state, which it returns; false when the table
// or the session's share of it is full.
func (c consentStates) put(now time.Time, s consentState) (string, bool) {
	id := randomID()
	return id, c.t.Put(now, id, s.session, s, now.Add(consentTTL))
}

func (c consentStates) take(now time.Time, id string) (consentState, bool) {
	return c.t.Take(now, id)
}

func (s *server) consentRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /connectors/{name}/consent", s.action(s.consentAction))
	m.HandleFunc("GET /connectors/{name}/consent/callback", s.consentCallback)
}

func (s *server) entraApp(name string) (EntraApp, bool) {
	a, ok := s.o.EntraApps[name]
	return a, ok
}

// consentAction sends the administrator to the tenant's admin-consent page.
func (s *server) consentAction(w http.ResponseWriter, r *http.Request, sess *session) {
	st, ok := s.connectorPage(w, r, sess)
	if !ok {
		return
	}
	app, ok := s.entraApp(st.Name)
	if !ok {
		s.errorPage(w, r, sess, http.StatusNotFound, "Not an Entra ID connector", "Connector "+st.Name+" is not of type entra: there is nothing to consent to.")
		return
	}
	binding := randomID()
	state, ok := s.consents.put(s.now(), consentState{session: sess.id, connector: st.Name, binding: binding})
	if !ok {
		s.errorPage(w, r, sess, http.StatusServiceUnavailable, "Busy", "Too many consent requests are in progress. Try again in a few minutes.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: consentCookie, Value: binding, Path: s.callbackPath(st.Name), HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: int(consentTTL.Seconds())})
	q := url.Values{"client_id": {app.ClientID}, "redirect_uri": {s.consentRedirect(r, st.Name)}, "state": {state}}
	s.log.Info("admin: sending the administrator to admin consent", "connector", st.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, strings.TrimSuffix(app.AuthorityURL, "/")+"/"+url.PathEscape(app.Tenant)+"/adminconsent?"+q.Encode(), http.StatusSeeOther)
}

func (s *server) callbackPath(name string) string {
	return "/connectors/" + url.PathEscape(name) + "/consent/callback"
}

// consentRedirect is the callback URL, which the app registration must
// list as a redirect URI: under Options.PublicURL, or else the address the
// administrator reached the console at.
func (s *server) consentRedirect(r *http.Request, name string) string {
	base := strings.TrimSuffix(s.o.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + s.callbackPath(name)
}

// consentCallback is where Microsoft sends the administrator back. The
// state must be one this console issued, for this connector, to this
// browser (the Lax cookie), in a session still signed in, and unused; then
// the outcome is decoded and Test Connection runs, and the connector's
// page shows both.
func (s *server) consentCallback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	q := r.URL.Query()
	st, ok := s.consents.take(s.now(), q.Get("state"))
	cookie, err := r.Cookie(consentCookie)
	var sess *session
	if ok && err == nil && st.connector == name && subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(st.binding)) == 1 {
		sess = s.sessions.get(st.session)
	}
	if sess == nil {
		s.log.Warn("admin console: refused a consent callback with an unknown, used or foreign state", "connector", name, "remote", r.RemoteAddr)
		s.errorPage(w, r, s.sessionOf(r), http.StatusBadRequest, "Consent response refused",
			"This answer from Microsoft does not belong to a \"Connect Entra ID\" started in this browser and console session, or it was already used or is older than 10 minutes. Nothing was changed. Open the connector's page and press \"Connect Entra ID\" again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: consentCookie, Value: "", Path: s.callbackPath(name), MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	f := &flash{Connector: name, From: "detail", Action: "consent"}
	app, _ := s.entraApp(name)
	f.Status, f.Consent = consentOutcome(q, app.Tenant)
	s.log.Info("admin: admin consent answered", "connector", name, "outcome", f.Status, "error", q.Get("error"))
	rep, err := s.b.TestConnection(r.Context(), name)
	f.Report = rep
	if err != nil {
		f.Error, f.Report = err.Error(), nil
	}
	s.sessions.setFlash(sess, f)
	// Rendered here rather than redirected: the session cookie is
	// SameSite=Strict, and a redirect at the end of Microsoft's chain
	// would not carry it either.
	s.detailPage(w, r, sess)
}

// consentOutcome decodes Microsoft's answer: admin_consent=True, or an
// error with an AADSTS code, in plain words. Consent granted in another
// tenant than the connector's (configured by its ID) is refused: an
// administrator signed in to the wrong tenant, and the connector's tenant
// still lacks it. A tenant configured by domain name cannot be compared.
func consentOutcome(q url.Values, tenant string) (status, msg string) {
	if q.Get("error") == "" && strings.EqualFold(q.Get("admin_consent"), "true") {
		if got := q.Get("tenant"); config.IsGUID(tenant) && got != "" && !strings.EqualFold(got, tenant) {
			return "failed", "Admin consent was granted in another tenant (" + got + ") than this connector's (" + tenant +
				"): the administrator probably signed in to the wrong tenant. Press \"Connect Entra ID\" again and sign in as an administrator of tenant " + tenant + "."
		}
		msg = "An administrator granted admin consent to the app"
		if t := q.Get("tenant"); t != "" {
			msg += " for tenant " + t
		}
		return "ok", msg + "."
	}
	if q.Get("error") == "" {
		return "failed", "Microsoft's answer says neither that consent was granted nor why not."
	}
	e := entra.DecodeAuthorizeError(q.Get("error"), q.Get("error_description"))
	msg = "Admin consent was not granted: " + e.What + " (" + e.Label() + ")."
	if e.Fix != "" {
		msg += " Fix: " + e.Fix + "."
	}
	return "failed", msg
}

func (s *server) isEntra(name string) bool {
	_, ok := s.entraApp(name)
	return ok
}
