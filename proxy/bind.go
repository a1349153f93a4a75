package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dn"
)

// bindTimeout bounds a bind; authn bounds the upstream part
// (auth.bind_timeout) and answers a failure after the throttle delay.
const bindTimeout = 30 * time.Second

func (l *listener) bind(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultInvalidCredentials))
	op := "bind"
	defer func() { l.answer(w, op, resp) }()
	sess := l.session(r.ConnectionID())
	// RFC 4511 4.2.1: a bind, even a failed one, first drops the previous
	// authentication.
	sess.set(bindAnonymous, "", "")

	m, err := r.GetSimpleBindMessage()
	if err != nil {
		resp.SetResultCode(gldap.ResultAuthMethodNotSupported)
		resp.SetDiagnosticMessage("only simple bind is supported")
		return
	}
	name, password := m.UserName, string(m.Password)
	switch {
	case name == "" && password == "":
		// RFC 4513 5.1.1: an anonymous bind establishes no identity, so it
		// succeeds whatever allow_anonymous says; search and compare refuse
		// an anonymous session everything but the root DSE while it is off.
		// `ldapsearch -x` binds so before reading the root DSE, and load
		// balancers' LDAP health checks (HAProxy's ldap-check) send nothing
		// else, often: logged at Debug only.
		op = "bind_anonymous"
		resp.SetResultCode(gldap.ResultSuccess)
		l.s.log.Debug("ldap bind", "remote", remote(r), "result", "success", "account", "anonymous")
		return
	case password == "":
		// An unauthenticated bind (RFC 4513 5.1.2) would look like success
		// to careless clients; refuse it.
		resp.SetResultCode(gldap.ResultUnwillingToPerform)
		resp.SetDiagnosticMessage("unauthenticated bind (name with an empty password) is not allowed")
		return
	case l.s.settings().cfg.RequireTLSForBind && !r.IsTLS():
		resp.SetResultCode(gldap.ResultConfidentialityRequired)
		resp.SetDiagnosticMessage("use LDAPS or StartTLS before sending a password")
		return
	}

	at := authn.Attempt{Login: name, Password: password, Remote: remote(r), Protocol: "ldap"}
	// A service account's password is checked locally, but through authn
	// like a user's: throttled, delayed on failure, audited and counted.
	var svc config.ServiceAccount
	if key, err := dn.Key(name); err == nil {
		if acct, ok := l.s.settings().accounts[key]; ok {
			svc = acct
			at.Local = &authn.LocalAccount{Key: key, DN: acct.DN, Verify: func(pw string) bool {
				return l.s.verify.Check(key, pw, acct.Verify)
			}}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), bindTimeout)
	defer cancel()
	// authn logs the attempt ("auth attempt"), whatever its outcome.
	id, err := l.s.auth.Login(ctx, at)
	if err != nil {
		if authn.ReasonOf(err) == authn.ReasonUnavailable {
			resp.SetResultCode(gldap.ResultUnavailable)
			resp.SetDiagnosticMessage("the directory is unavailable, try again later")
			return
		}
		// Wrong password, unknown user, disabled, ambiguous or throttled
		// all read the same to the client: an answer must not reveal
		// whether an account exists. Only a refusal the upstream made after
		// accepting the password says why, so the user can act on it.
		resp.SetDiagnosticMessage(clientMessage(err))
		return
	}
	if id.Local {
		sess.set(bindService, svc.DN, name)
	} else {
		sess.set(bindUser, id.Entry.DN, name)
	}
	// An identity ends first_request_timeout: the connection may now idle
	// for idle_timeout (see critical for anonymous sessions).
	r.MarkEstablished()
	resp.SetResultCode(gldap.ResultSuccess)
}

func (s *session) set(k bindKind, dn, login string) {
	s.mu.Lock()
	s.kind, s.dn, s.login = k, dn, login
	s.mu.Unlock()
}

func (s *session) get() (bindKind, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kind, s.dn
}

// clientMessage is the diagnostic a client sees for a failed bind.
func clientMessage(err error) string {
	var ae *authn.Error
	if !errors.As(err, &ae) || !ae.PasswordVerified {
		return "invalid credentials"
	}
	switch ae.Reason {
	case authn.ReasonPasswordExpired:
		return "invalid credentials: the password has expired"
	case authn.ReasonMustChangePassword:
		return "invalid credentials: the password must be changed before signing in"
	case authn.ReasonAccountExpired:
		return "invalid credentials: the account has expired"
	case authn.ReasonDisabled:
		return "invalid credentials: the account is disabled"
	case authn.ReasonRestricted:
		return "invalid credentials: signing in is not allowed at this time or from here"
	}
	return "invalid credentials"
}
