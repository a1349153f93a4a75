package testconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/upstream"
)

// This file turns failures into a detail (what happened) and a fix (what
// to do), following the troubleshooting guide of the hosted service dirgate
// is modelled on: firewall, credentials, LDAP service down, special
// characters in the bind DN or password, certificate issues.

// escapeHint is the RFC 4514 reminder for DNs.
const escapeHint = `special characters inside a DN value must be escaped per RFC 4514: ` +
	`\, for a comma (cn=Doe\, John), and \+ \" \\ \< \> \; likewise, \# or \20 at the start of a value`

func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// stopped reports whether the caller cancelled the test (as opposed to the
// step timing out).
func stopped(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), context.DeadlineExceeded)
}

func explainTimeout(ctx context.Context, what string, timeout time.Duration) outcome {
	if stopped(ctx) {
		return fail(what+": the test was stopped", "")
	}
	return fail(fmt.Sprintf("%s: no answer within %s", what, fmtDuration(timeout)),
		"the server is overloaded or the network drops traffic; raise timeout if the directory is large or slow")
}

func explainDNS(host string, err error, timeout time.Duration) outcome {
	var de *net.DNSError
	switch {
	case errors.As(err, &de) && de.IsNotFound:
		return fail(fmt.Sprintf("%s: no such host name", host),
			"check host (and alternate_host) for typos; if the name is internal, make sure this machine uses the DNS "+
				"servers that know it (or use the IP address and set server_name to the name in the certificate)")
	case timedOut(err) || (errors.As(err, &de) && de.IsTimeout):
		return fail(fmt.Sprintf("%s: the DNS server did not answer within %s", host, fmtDuration(timeout)),
			"check this machine's DNS configuration (/etc/resolv.conf) and that a firewall lets DNS queries (port 53) through")
	}
	return fail(fmt.Sprintf("%s: name resolution failed: %v", host, err),
		"check host and this machine's DNS configuration")
}

func explainTCP(ctx context.Context, host string, port int, err error, timeout time.Duration) outcome {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	p := strconv.Itoa(port)
	switch {
	case stopped(ctx):
		return fail("connecting to "+addr+": the test was stopped", "")
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail("connection refused by "+addr,
			"nothing listens on "+addr+": is the LDAP service running? is a firewall blocking port "+p+"? "+
				"(check also port: LDAPS usually listens on 636, LDAP and StartTLS on 389)")
	case timedOut(err):
		return fail(fmt.Sprintf("no answer from %s within %s", addr, fmtDuration(timeout)),
			"a firewall is probably dropping the traffic: allow TCP port "+p+" from this machine to "+host+
				"; check also that the host is up and the address is right")
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fail(fmt.Sprintf("%s is unreachable: %v", addr, errors.Unwrap(err)),
			"no route to the host: check the address, this machine's network and routing, and firewalls on the way "+
				"(port "+p+")")
	}
	return fail("connecting to "+addr+": "+err.Error(),
		"check host and port, that the LDAP service is running, and that no firewall blocks port "+p)
}

func explainStartTLS(ctx context.Context, port int, err error, timeout time.Duration) outcome {
	var le *ldap.Error
	switch {
	case stopped(ctx):
		return fail("StartTLS: the test was stopped", "")
	case errors.As(err, &le):
		return fail("the server refused StartTLS: "+ldapErrText(err),
			"the server does not offer StartTLS on port "+strconv.Itoa(port)+" (it needs a certificate for that): "+
				"install one on the server, or use tls_mode: ldaps (port 636)")
	case timedOut(err):
		return fail(fmt.Sprintf("StartTLS: no answer within %s", fmtDuration(timeout)),
			"port "+strconv.Itoa(port)+" may not speak plain LDAP (an LDAPS port?): use tls_mode: ldaps for port 636, "+
				"or port 389 for StartTLS")
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return fail("the server closed the connection on the StartTLS request",
			"port "+strconv.Itoa(port)+" may be an LDAPS port: use tls_mode: ldaps for port 636, or port 389 for StartTLS")
	}
	return fail("StartTLS: "+err.Error(), "use tls_mode: ldaps (port 636), or check the server's StartTLS support")
}

// explainTLS explains a failed handshake. The certificate rules are
// upstream's (TLSConfig, CheckKeyStrength, Explain); this only words the
// advice.
func explainTLS(ctx context.Context, r *hostRun, starttls bool, err error) outcome {
	err = upstream.Explain(err)
	p := strconv.Itoa(r.port())
	var (
		weak *upstream.WeakKeyError
		inv  x509.CertificateInvalidError
		hn   x509.HostnameError
		ua   x509.UnknownAuthorityError
		rec  tls.RecordHeaderError
		alrt tls.AlertError
	)
	switch {
	case stopped(ctx):
		return fail("TLS handshake: the test was stopped", "")
	case errors.As(err, &weak):
		return fail(weak.Error(),
			"replace the server certificate with one whose key is RSA 2048 bits or more (or ECDSA); "+
				"or use encryption: relaxed, which does not verify the certificate")
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		c := inv.Cert
		if time.Now().Before(c.NotBefore) {
			return fail(fmt.Sprintf("certificate not yet valid: valid from %s (issued for %s)", c.NotBefore.UTC().Format(time.DateOnly), certNames(c)),
				"check the clock of this machine and of the server")
		}
		return fail(fmt.Sprintf("certificate expired on %s (issued for %s)", c.NotAfter.UTC().Format(time.DateOnly), certNames(c)),
			"renew the server certificate, or check this machine's clock; encryption: relaxed would accept it unverified")
	case errors.As(err, &hn):
		name := r.tlsName()
		return fail(fmt.Sprintf("certificate name mismatch: the certificate is for %s, not %s", certNames(hn.Certificate), name),
			"connect with a name the certificate lists (host: or server_name:), or reissue the certificate with "+
				name+" among its subject alternative names; encryption: relaxed would accept it unverified")
	case errors.As(err, &ua):
		d := "certificate signed by an unknown CA"
		if ua.Cert != nil {
			d += fmt.Sprintf(" (issuer %q)", ua.Cert.Issuer.String())
		}
		fix := "set ca_file to the CA that signed the server certificate, or encryption: relaxed"
		if r.c.CAFile != "" {
			fix = "ca_file " + r.c.CAFile + " does not hold the CA that signed the server certificate: " + fix
		}
		return fail(d, fix)
	case errors.As(err, &inv):
		return fail("certificate rejected: "+inv.Error(),
			"the server certificate must be valid for TLS server authentication (extended key usage serverAuth) with a "+
				"complete chain; or use encryption: relaxed")
	case errors.As(err, &rec):
		if starttls {
			return fail("the server did not answer in TLS after StartTLS", "check the server's TLS configuration")
		}
		return fail("port "+p+" does not speak TLS (it answered in plain LDAP?)",
			"use the LDAPS port (usually 636), or tls_mode: starttls for a plain LDAP port such as 389")
	case errors.As(err, &alrt) && (alrt == 70 || alrt == 71), strings.Contains(err.Error(), "unsupported protocol version"):
		return fail("the server supports no TLS version this client accepts (TLS 1.2 or 1.3): "+err.Error(),
			"enable TLS 1.2 or later on the server")
	case timedOut(err):
		return fail(fmt.Sprintf("TLS handshake: no answer within %s", fmtDuration(r.timeout)),
			"port "+p+" may speak plain LDAP: use tls_mode: starttls, or the LDAPS port (usually 636)")
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return fail("the server closed the connection during the TLS handshake",
			"check that port "+p+" is the LDAPS port and that the server has a certificate installed "+
				"(AD: LDAPS needs a domain controller certificate)")
	}
	return fail("TLS handshake failed: "+err.Error(),
		"check the server certificate and TLS configuration; or use encryption: relaxed")
}

func (r *hostRun) tlsName() string {
	if r.c.ServerName != "" {
		return r.c.ServerName
	}
	return r.host
}

// describeTLS words a successful handshake, saying whether the certificate
// was verified.
func describeTLS(r *hostRun, cs tls.ConnectionState) outcome {
	var b strings.Builder
	b.WriteString(tls.VersionName(cs.Version))
	if r.c.TLSMode == config.TLSModeStartTLS {
		b.WriteString(" via StartTLS")
	}
	if len(cs.PeerCertificates) == 0 {
		b.WriteString(", no server certificate")
		return outcome{ok: true, detail: b.String()}
	}
	c := cs.PeerCertificates[0]
	fmt.Fprintf(&b, ", certificate for %s", certNames(c))
	if r.c.Encryption == config.EncryptionStrict {
		fmt.Fprintf(&b, " verified (strict), valid until %s", c.NotAfter.UTC().Format(time.DateOnly))
		if left := time.Until(c.NotAfter); left < 30*24*time.Hour {
			fmt.Fprintf(&b, "; it expires in %d days: renew it", int(left.Hours()/24))
		}
		return outcome{ok: true, detail: b.String()}
	}
	b.WriteString(" NOT verified (encryption: relaxed): the connection is encrypted, but the server's identity is not checked")
	var notes []string
	if time.Now().After(c.NotAfter) {
		notes = append(notes, "it expired on "+c.NotAfter.UTC().Format(time.DateOnly))
	}
	var weak *upstream.WeakKeyError
	if errors.As(upstream.CheckKeyStrength(c), &weak) {
		notes = append(notes, fmt.Sprintf("its %d-bit RSA key would be refused by strict mode", weak.Bits))
	}
	if len(notes) > 0 {
		b.WriteString("; " + strings.Join(notes, "; "))
	}
	return outcome{ok: true, detail: b.String()}
}

// certNames lists the names a certificate is for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "an unknown name"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = []string{c.Subject.CommonName}
	}
	if len(names) == 0 {
		return "no name (" + c.Subject.String() + ")"
	}
	const show = 3
	s := strings.Join(names[:min(show, len(names))], ", ")
	if len(names) > show {
		s += fmt.Sprintf(" and %d more", len(names)-show)
	}
	return s
}

func explainBind(r *hostRun, err error) outcome {
	src := r.passwordSource()
	var le *ldap.Error
	if !errors.As(err, &le) {
		return fail("bind failed: "+err.Error(), "check the server's logs")
	}
	switch le.ResultCode {
	case ldap.LDAPResultInvalidCredentials:
		diag := ""
		if le.Err != nil {
			diag = le.Err.Error()
		}
		if f, ok := dirtype.DecodeBindFailure(diag); ok {
			if f.What != "" {
				return fail(f.Label+": "+f.What, strings.NewReplacer("{password}", src, "{dn-escaping}", escapeHint).Replace(f.Fix))
			}
			return fail(f.Label+": "+ldapErrText(err), "check bind_dn and the password in "+src)
		}
		return fail(ldapErrText(err),
			"the bind DN does not exist or the password is wrong: check bind_dn and the password in "+src+
				"; "+escapeHint+"; the password is used exactly as stored (no quotes, no trailing spaces)")
	case ldap.LDAPResultStrongAuthRequired, ldap.LDAPResultConfidentialityRequired:
		return fail(ldapErrText(err)+": the server refuses simple binds on an unencrypted connection",
			"use LDAPS or StartTLS (encryption: strict or relaxed), or relax the DC policy "+
				"(\"Domain controller: LDAP server signing requirements\"; Samba: ldap server require strong auth)")
	case ldap.LDAPResultInvalidDNSyntax:
		return fail(ldapErrText(err)+": bind_dn is not a valid DN", "fix bind_dn: "+escapeHint)
	case ldap.LDAPResultUnwillingToPerform:
		return fail(ldapErrText(err),
			"the server refuses this bind: the account may be locked or disabled, or the server forbids simple binds; "+
				"check the account and the server's logs")
	case ldap.LDAPResultInappropriateAuthentication:
		return fail(ldapErrText(err), "the account cannot bind with a password: check bind_dn, or use another account")
	case ldap.LDAPResultBusy, ldap.LDAPResultUnavailable:
		return fail(ldapErrText(err), "the LDAP service is starting, stopping or overloaded: retry later, or check the server")
	case ldap.ErrorNetwork:
		if timedOut(err) || strings.Contains(err.Error(), "timeout") {
			return fail("bind: no answer within "+fmtDuration(r.timeout),
				"the LDAP service is not answering: check that it is running and not overloaded")
		}
		return fail("bind: the connection broke: "+errText(le),
			"the server closed the connection: check that the LDAP service is running and the server's logs")
	}
	return fail("bind failed: "+ldapErrText(err), "check bind_dn, the password in "+src+" and the server's logs")
}

func explainRootDN(r *hostRun, err error) outcome {
	var le *ldap.Error
	errors.As(err, &le)
	switch {
	case le != nil && le.ResultCode == ldap.LDAPResultNoSuchObject:
		d := fmt.Sprintf("root_dn %q does not exist on this server", r.c.RootDN)
		if le.MatchedDN != "" {
			d += fmt.Sprintf(" (the closest existing entry is %q)", le.MatchedDN)
		}
		return fail(d, "check root_dn: it must be the DN of an existing entry, e.g. dc=example,dc=com "+
			"(AD: the domain's DN such as DC=corp,DC=example,DC=com), readable by "+r.account())
	case le != nil && le.ResultCode == ldap.LDAPResultInvalidDNSyntax:
		return fail(ldapErrText(err), "fix root_dn: "+escapeHint)
	case le != nil && (le.ResultCode == ldap.LDAPResultInsufficientAccessRights || le.ResultCode == ldap.LDAPResultOperationsError):
		return fail(ldapErrText(err), r.account()+" may not read root_dn: grant it read access, or bind as another account")
	case le != nil && le.ResultCode == ldap.LDAPResultReferral:
		return fail(ldapErrText(err), "root_dn is held by another server: point host at the server holding "+r.c.RootDN)
	}
	return fail("reading root_dn: "+ldapErrText(err), "check root_dn and the server's logs")
}

func explainSearch(r *hostRun, err error) outcome {
	var le *ldap.Error
	errors.As(err, &le)
	switch {
	case le != nil && le.ResultCode == ldap.LDAPResultNoSuchObject:
		return fail("search: "+ldapErrText(err), "check root_dn")
	case le != nil && le.ResultCode == ldap.LDAPResultInsufficientAccessRights:
		return fail("search: "+ldapErrText(err), r.account()+" may not search under root_dn: grant it read access")
	case le != nil && le.ResultCode == ldap.LDAPResultTimeLimitExceeded:
		return fail("search: "+ldapErrText(err), "the server's time limit stopped the search: raise it, or narrow user_filter")
	case le != nil && le.ResultCode == ldap.LDAPResultFilterError:
		return fail("search: "+ldapErrText(err), "the server refuses user_filter "+r.c.UserFilter+": fix it")
	}
	return fail("search: "+ldapErrText(err), "check root_dn, user_filter and the server's logs")
}

// ldapErrText words an LDAP error as "invalid credentials (49): diagnostic".
func ldapErrText(err error) string {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return err.Error()
	}
	name := strings.ToLower(ldap.LDAPResultCodeMap[le.ResultCode])
	if name == "" {
		name = "result"
	}
	s := fmt.Sprintf("%s (%d)", name, le.ResultCode)
	if d := errText(le); d != "" && !strings.EqualFold(d, name) {
		s += ": " + d
	}
	return s
}

func errText(le *ldap.Error) string {
	if le.Err == nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimRight(le.Err.Error(), "\x00"))
}
