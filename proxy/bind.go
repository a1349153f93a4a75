package proxy

import (
	"context"
	"errors"
	"time"

	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/authn"
	"github.com/dirgate/dirgate/dn"
)

// bindTimeout bounds a pass-through bind; authn bounds the upstream part
// (auth.bind_timeout) and adds the throttle delay after a failure.
const bindTimeout = 30 * time.Second

func (l *listener) bind(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultInvalidCredentials))
	code := gldap.ResultInvalidCredentials
	setCode := func(c int) { code = c; resp.SetResultCode(c) }
	defer func() { l.write(w, resp); count("bind", code) }()
	sess := l.session(r.ConnectionID())
	// RFC 4511 4.2.1: a bind, even a failed one, first drops the previous
	// authentication.
	sess.set(bindAnonymous, "", "")

	m, err := r.GetSimpleBindMessage()
	if err != nil {
		setCode(gldap.ResultAuthMethodNotSupported)
		resp.SetDiagnosticMessage("only simple bind is supported")
		return
	}
	name, password := m.UserName, string(m.Password)
	switch {
	case name == "" && password == "":
		if !l.s.settings().cfg.AllowAnonymous {
			setCode(gldap.ResultInappropriateAuthentication)
			resp.SetDiagnosticMessage("anonymous bind is disabled")
			return
		}
		setCode(gldap.ResultSuccess)
		return
	case password == "":
		// An unauthenticated bind (RFC 4513 5.1.2) would look like success
		// to careless clients; refuse it.
		setCode(gldap.ResultUnwillingToPerform)
		resp.SetDiagnosticMessage("unauthenticated bind (name with an empty password) is not allowed")
		return
	case l.s.settings().cfg.RequireTLSForBind && !r.IsTLS():
		setCode(gldap.ResultConfidentialityRequired)
		resp.SetDiagnosticMessage("use LDAPS or StartTLS before sending a password")
		return
	}

	if key, err := dn.Key(name); err == nil {
		if acct, ok := l.s.settings().accounts[key]; ok {
			log := l.s.log.With("remote", remote(r), "login", name, "tls", r.IsTLS())
			if !l.s.verify.Check(key, password, acct.Verify) {
				log.Info("ldap bind", "result", "invalid_credentials", "account", "service")
				resp.SetDiagnosticMessage("invalid credentials")
				return
			}
			sess.set(bindService, acct.DN, name)
			log.Info("ldap bind", "result", "success", "account", "service")
			setCode(gldap.ResultSuccess)
			return
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), bindTimeout)
	defer cancel()
	// authn logs the attempt ("auth attempt"), whatever its outcome.
	id, err := l.s.auth.Login(ctx, authn.Attempt{Login: name, Password: password, Remote: remote(r), Protocol: "ldap"})
	if err != nil {
		if authn.ReasonOf(err) == authn.ReasonUnavailable {
			setCode(gldap.ResultUnavailable)
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
	sess.set(bindUser, id.Entry.DN, name)
	setCode(gldap.ResultSuccess)
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
