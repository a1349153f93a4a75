// Package testconn is "Test Connection": a step-by-step diagnostic of a
// connector's upstream directory, run against the primary and the alternate
// host alike. For each host it resolves the name, opens the TCP connection,
// negotiates TLS (LDAPS or StartTLS) under the connector's certificate
// policy, binds as the service account, reads the root DN, samples the users
// the connector would sync and checks that the server pages results. Every
// step reports its duration, whether it passed, what happened and, when it
// failed, what to do about it in plain language (firewall, credentials, LDAP
// service down, special characters in the bind DN or password, certificate
// problems), so that an administrator can fix a connector without reading
// LDAP result codes.
//
// An Entra ID connector is tested through Microsoft's APIs instead
// (entra.go): the authority knows the tenant, the app gets a token (an
// AADSTS refusal decoded with its fix), Graph grants the permissions, a
// sample page of users, delta queries, and what LDAP binds of its users do.
//
// The test reads from the directory and never writes to it. The bind
// password is sent to the upstream and appears in no step.
package testconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/upstream"
)

// Step names, in the order the steps run for each host.
const (
	StepDNS      = "dns"
	StepTCP      = "tcp"
	StepTLS      = "tls"      // LDAPS handshake, or the encryption: none notice
	StepStartTLS = "starttls" // StartTLS extended operation and handshake
	StepBind     = "bind"
	StepRootDN   = "root_dn"
	StepSearch   = "search"
	StepPaging   = "paging"
)

// maxSample caps the page of users the search step reads.
const maxSample = 50

// Step is the outcome of one step of the test against one host. The JSON
// tags are the admin API's wire form (see MarshalJSON for Duration).
type Step struct {
	Host     string        `json:"host"`
	Name     string        `json:"name"` // one of the Step* constants
	OK       bool          `json:"ok"`
	Skipped  bool          `json:"skipped,omitempty"` // not run because an earlier step on the same host failed
	Duration time.Duration `json:"-"`                 // duration_ms on the wire
	// Detail says what happened, e.g. "connected to 127.0.0.1:636 in 2ms",
	// "certificate signed by an unknown CA", "AD error 52e: wrong password".
	Detail string `json:"detail,omitempty"`
	// Fix is the plain-language next step when the step failed; "" when it
	// passed or was skipped.
	Fix string `json:"fix,omitempty"`
}

// Report is the result of a test of one connector. It is also the answer
// of the admin API's POST /api/v1/connectors/{name}/test and what the CLI's
// API client decodes.
type Report struct {
	Connector string `json:"connector"`
	// OK is true when at least one host passed every step: the connector
	// can sync (through failover when only the alternate passed).
	OK bool `json:"ok"`
	// Steps holds every step of the primary host, then every step of the
	// alternate host, if any.
	Steps []Step `json:"steps"`
}

// Run tests every host of the connector (primary, then alternate; both are
// tested, concurrently) and returns the report; an Entra ID connector is
// tested through its cloud APIs instead (runEntra). It never fails as a whole:
// each problem is a failed step. Each network operation is bounded by the
// connector's timeout; cancelling ctx stops the test, and the steps not run
// are reported as failed or skipped. A connector read through a sync agent
// (via: agent) cannot be tested from here: its report says to use
// RunAgent, which the hub runs.
func Run(ctx context.Context, c *config.Connector) *Report {
	if c.ViaAgent() {
		return RunAgent(ctx, c, nil)
	}
	if c.Type == dirtype.Entra {
		return runEntra(ctx, c, nil)
	}
	if c.Type == dirtype.Google {
		return runGoogle(ctx, c, nil)
	}
	hosts := []string{c.Host}
	if c.AlternateHost != "" {
		hosts = append(hosts, c.AlternateHost)
	}
	target, terr := upstream.FromConnector(c)
	timeout := c.Timeout.Std()
	if target != nil {
		timeout = target.Timeout
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	results := make([][]Step, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			r := &hostRun{c: c, target: target, targetErr: terr, host: h, timeout: timeout}
			r.run(ctx)
			results[i] = r.steps
		})
	}
	wg.Wait()
	rep := &Report{Connector: c.Name}
	// No step quotes the password, but a server's diagnostic could: mask
	// it. (Passwords of fewer than 4 characters would mask parts of words
	// rather than protect anything.)
	secret := c.BindPassword.Reveal()
	for _, steps := range results {
		all := true
		for _, s := range steps {
			if len(secret) >= 4 {
				s.Detail = strings.ReplaceAll(s.Detail, secret, "[redacted]")
				s.Fix = strings.ReplaceAll(s.Fix, secret, "[redacted]")
			}
			all = all && s.OK
			rep.Steps = append(rep.Steps, s)
		}
		if all && len(steps) > 0 {
			rep.OK = true
		}
	}
	return rep
}

// hostRun is the test of one host.
type hostRun struct {
	c         *config.Connector
	target    *upstream.Target
	targetErr error // from upstream.FromConnector: reported at the TLS step
	host      string
	timeout   time.Duration

	steps  []Step
	failed string // name of the step that failed; later steps are skipped

	raw  net.Conn   // after tcp
	conn *ldap.Conn // after tls / starttls

	// search step results the paging step reports on
	sample sampleResult
}

// outcome is what a step function returns.
type outcome struct {
	ok     bool
	detail string
	fix    string
}

func pass(format string, args ...any) outcome {
	return outcome{ok: true, detail: fmt.Sprintf(format, args...)}
}

func fail(detail, fix string) outcome { return outcome{detail: detail, fix: fix} }

// do runs one step, or records it as skipped when an earlier one failed.
// A step that does not apply to the connector's type is left out.
func (r *hostRun) do(ctx context.Context, name string, fn func(ctx context.Context) outcome) {
	if !r.applies(name) {
		return
	}
	if r.failed != "" {
		r.steps = append(r.steps, Step{Host: r.host, Name: name, Skipped: true,
			Detail: "not run: the " + r.failed + " step failed"})
		return
	}
	if err := context.Cause(ctx); err != nil {
		r.steps = append(r.steps, Step{Host: r.host, Name: name, Detail: "not run: the test was stopped (" + err.Error() + ")"})
		r.failed = name
		return
	}
	sctx, cancel := context.WithTimeout(ctx, r.timeout)
	start := time.Now()
	o := fn(sctx)
	d := time.Since(start)
	cancel()
	s := Step{Host: r.host, Name: name, OK: o.ok, Duration: d, Detail: o.detail}
	if !o.ok {
		s.Fix = o.fix
		r.failed = name
	}
	r.steps = append(r.steps, s)
}

func (r *hostRun) run(ctx context.Context) {
	defer func() {
		if r.conn != nil {
			r.conn.Close()
		} else if r.raw != nil {
			r.raw.Close()
		}
	}()
	r.do(ctx, StepDNS, r.dns)
	r.do(ctx, StepTCP, r.tcp)
	tlsStep := StepTLS
	if r.c.Encryption != config.EncryptionNone && r.c.TLSMode == config.TLSModeStartTLS {
		tlsStep = StepStartTLS
	}
	r.do(ctx, tlsStep, r.tls)
	if r.conn != nil {
		// Closing the connection interrupts a blocked LDAP operation when
		// the caller cancels.
		stop := context.AfterFunc(ctx, func() { r.conn.Close() })
		defer stop()
	}
	r.do(ctx, StepBind, r.bind)
	r.do(ctx, StepRootDN, r.rootDN)
	r.do(ctx, StepSearch, r.search)
	r.do(ctx, StepPaging, r.paging)
}

func (r *hostRun) port() int { return r.c.Port }

func (r *hostRun) addr() string { return net.JoinHostPort(r.host, strconv.Itoa(r.port())) }

// dns resolves the host name; an IP address needs no resolution.
func (r *hostRun) dns(ctx context.Context) outcome {
	if net.ParseIP(r.host) != nil {
		return pass("IP address")
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, r.host)
	if err != nil {
		return explainDNS(r.host, err, r.timeout)
	}
	const show = 4
	list := strings.Join(addrs[:min(show, len(addrs))], ", ")
	if len(addrs) > show {
		list += fmt.Sprintf(" and %d more", len(addrs)-show)
	}
	return pass("%s resolves to %s", r.host, list)
}

// tcp opens the connection to host:port.
func (r *hostRun) tcp(ctx context.Context) outcome {
	var d net.Dialer
	start := time.Now()
	raw, err := d.DialContext(ctx, "tcp", r.addr())
	if err != nil {
		return explainTCP(ctx, r.host, r.port(), err, r.timeout)
	}
	r.raw = raw
	return pass("connected to %s in %s", raw.RemoteAddr(), fmtDuration(time.Since(start)))
}

// tls negotiates LDAPS or StartTLS, or notes that the connection is not
// encrypted. On success r.conn is an LDAP connection ready to bind.
func (r *hostRun) tls(ctx context.Context) outcome {
	if r.c.Encryption == config.EncryptionNone {
		r.conn = r.newConn(r.raw, false)
		return pass("not encrypted (encryption: none): the bind password and all directory data cross the network " +
			"in clear text; use encryption: strict with LDAPS or StartTLS where the server offers it")
	}
	if r.targetErr != nil {
		return fail(r.targetErr.Error(), "check ca_file: it must be a readable PEM file holding the certificate "+
			"of the CA that signed the server certificate")
	}
	starttls := r.c.TLSMode == config.TLSModeStartTLS
	if deadline, ok := ctx.Deadline(); ok {
		_ = r.raw.SetDeadline(deadline)
	}
	// A cancelled ctx must interrupt a read blocked on the server.
	stop := context.AfterFunc(ctx, func() { _ = r.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if starttls {
		if err := startTLS(r.raw); err != nil {
			return explainStartTLS(ctx, r.port(), err, r.timeout)
		}
	}
	tc := tls.Client(r.raw, r.target.TLSConfig(r.host))
	if err := tc.HandshakeContext(ctx); err != nil {
		return explainTLS(ctx, r, starttls, err)
	}
	if !stop() {
		return fail("the test was stopped", "")
	}
	_ = r.raw.SetDeadline(time.Time{})
	r.raw = tc
	r.conn = r.newConn(tc, true)
	return describeTLS(r, tc.ConnectionState())
}

func (r *hostRun) newConn(c net.Conn, isTLS bool) *ldap.Conn {
	conn := ldap.NewConn(c, isTLS)
	conn.Start()
	conn.SetTimeout(r.timeout)
	return conn
}

// startTLS sends the StartTLS extended operation (RFC 4511 4.14) on a raw
// connection and reads the answer. go-ldap's own StartTLS flattens the
// handshake error into a string, which would lose the certificate failure's
// type (expired, unknown CA, ...), so the handshake is done separately.
func startTLS(raw net.Conn) error {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(1), "MessageID"))
	req := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "Start TLS")
	req.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, "1.3.6.1.4.1.1466.20037", "TLS Extended Command"))
	p.AppendChild(req)
	if _, err := raw.Write(p.Bytes()); err != nil {
		return err
	}
	resp, err := ber.ReadPacket(raw)
	if err != nil {
		return err
	}
	if len(resp.Children) < 2 || resp.Children[1].Tag != ldap.ApplicationExtendedResponse {
		return errors.New("unexpected answer to the StartTLS request")
	}
	return ldap.GetLDAPError(resp)
}

// bind authenticates as the connector's service account.
func (r *hostRun) bind(ctx context.Context) outcome {
	if r.c.BindDN == "" {
		return pass("no bind_dn: reading anonymously (only what the server shows anonymous clients)")
	}
	pw := r.c.BindPassword.Reveal()
	if pw == "" {
		return fail("the bind password is empty", "set "+r.passwordSource()+" to the password of "+r.c.BindDN)
	}
	if err := r.conn.Bind(r.c.BindDN, pw); err != nil {
		return explainBind(r, err)
	}
	if r.c.Encryption == config.EncryptionNone {
		return pass("bound as %s (the password crossed the network in clear text)", r.c.BindDN)
	}
	return pass("bound as %s", r.c.BindDN)
}

func (r *hostRun) passwordSource() string {
	switch {
	case r.c.BindPasswordEnv != "":
		return "the environment variable " + r.c.BindPasswordEnv + " (bind_password_env)"
	case r.c.BindPasswordFile != "":
		return "the file " + r.c.BindPasswordFile + " (bind_password_file)"
	}
	return "bind_password_env or bind_password_file"
}

// rootDN checks that root_dn names an entry the account can read.
func (r *hostRun) rootDN(ctx context.Context) outcome {
	if r.c.RootDN == "" {
		return pass(`root_dn is "": the whole directory (usual for Domino, whose groups live at the root)`)
	}
	req := ldap.NewSearchRequest(r.c.RootDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil)
	n := 0
	res := r.conn.SearchAsync(ctx, req, 1)
	for res.Next() {
		if res.Entry() != nil {
			n++
		}
	}
	if err := res.Err(); err != nil {
		return explainRootDN(r, err)
	}
	if err := ctx.Err(); err != nil {
		return explainTimeout(ctx, "reading root_dn", r.timeout)
	}
	if n == 0 {
		return fail(fmt.Sprintf("root_dn %q is not visible to the bind account", r.c.RootDN),
			"check root_dn, and that "+r.account()+" may read it")
	}
	return pass("%s exists", r.c.RootDN)
}

func (r *hostRun) account() string {
	if r.c.BindDN == "" {
		return "anonymous clients"
	}
	return r.c.BindDN
}

// sampleResult is what the search step saw.
type sampleResult struct {
	pageSize    int
	users       int
	refused     error // the paged-results control was refused with this error
	responded   bool  // the server answered with a paged-results control
	cookie      bool  // ... carrying a cookie: more pages follow
	overflow    bool  // more entries than the page size: paging ignored
	serverLimit bool  // the unpaged fallback hit the server's size limit early
}

// search reads the first page of the users the connector would sync and
// counts the address attributes.
func (r *hostRun) search(ctx context.Context) outcome {
	size := min(r.c.PageSize, maxSample)
	if size <= 0 {
		size = maxSample
	}
	s := &r.sample
	s.pageSize = size
	attrs := r.addressAttrs()
	counts := make([]int, len(attrs))
	count := func(e *ldap.Entry) {
		s.users++
		for i, a := range attrs {
			if len(e.GetEqualFoldAttributeValues(a)) > 0 {
				counts[i]++
			}
		}
	}

	paging := ldap.NewControlPaging(uint32(size))
	req := ldap.NewSearchRequest(r.c.RootDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		r.c.UserFilter, attrs, []ldap.Control{paging})
	pctx, cancel := context.WithCancel(ctx)
	res := r.conn.SearchAsync(pctx, req, size)
	for res.Next() {
		if e := res.Entry(); e != nil {
			if s.users == size {
				// The server ignored the page size: stop reading.
				s.overflow = true
				cancel()
				break
			}
			count(e)
		}
		if c := ldap.FindControl(res.Controls(), ldap.ControlTypePaging); c != nil {
			s.responded = true
			if pc, ok := c.(*ldap.ControlPaging); ok && len(pc.Cookie) > 0 {
				s.cookie = true
			}
		}
	}
	err := res.Err()
	cancel()
	if s.overflow {
		// Drain what the cancelled search still delivers.
		for res.Next() {
		}
		err = nil
	}
	if err != nil && s.users == 0 && pagingRefused(err) {
		// Read the sample unpaged, the way a sync would read this server.
		s.refused = err
		req := ldap.NewSearchRequest(r.c.RootDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, size, 0, false,
			r.c.UserFilter, attrs, nil)
		res := r.conn.SearchAsync(ctx, req, size)
		for res.Next() {
			if e := res.Entry(); e != nil {
				count(e)
			}
		}
		err = res.Err()
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			// Our own limit, or the server's when it stopped short of it.
			s.serverLimit = s.users < size
			err = nil
		}
	}
	if err != nil {
		return explainSearch(r, err)
	}
	if !s.overflow && ctx.Err() != nil {
		return explainTimeout(ctx, "searching users", r.timeout)
	}
	if s.users == 0 {
		return fail(fmt.Sprintf("no user found: nothing under %s matches user_filter %s", quoteDN(r.c.RootDN), r.c.UserFilter),
			"check root_dn (users must be below it), user_filter (the "+r.c.Type+" default is "+defaultFilter(r.c.Type)+
				"), and the permissions of the bind account: "+r.account()+" must be allowed to read user entries")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", s.users, plural(s.users, "user", "users"))
	for i, a := range attrs {
		fmt.Fprintf(&b, ", %d with %s", counts[i], a)
	}
	switch {
	case s.serverLimit:
		b.WriteString(" (a sample cut short by the server's size limit)")
	case s.users == size && (s.cookie || s.overflow || s.refused != nil):
		b.WriteString(" (a sample: the first page)")
	}
	if counts[0] == 0 {
		fmt.Fprintf(&b, "; no user has %s: check mail_attribute, users without an address cannot sign in", attrs[0])
	}
	return outcome{ok: true, detail: b.String()}
}

// addressAttrs is the mail attribute then the alias attributes, without
// duplicates (compared case-insensitively).
func (r *hostRun) addressAttrs() []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range append([]string{r.c.MailAttribute}, r.c.AliasAttributes...) {
		if a == "" || seen[strings.ToLower(a)] {
			continue
		}
		seen[strings.ToLower(a)] = true
		out = append(out, a)
	}
	if len(out) == 0 {
		out = []string{"mail"}
	}
	return out
}

func pagingRefused(err error) bool {
	return ldap.IsErrorAnyOf(err, ldap.LDAPResultUnavailableCriticalExtension, ldap.LDAPResultAdminLimitExceeded,
		ldap.LDAPResultUnwillingToPerform)
}

// paging reports whether the server pages results, from what the search
// step saw.
func (r *hostRun) paging(context.Context) outcome {
	s := r.sample
	const fix = "the server does not support paged results: syncs will read unpaged and fail above its size limit; " +
		"enable paged results on the server (RFC 2696, control 1.2.840.113556.1.4.319) or raise its size limit above " +
		"the number of entries to sync (Domino: \"Maximum number of entries returned\" in the Server document)"
	switch {
	case s.refused != nil:
		d := "the server refused the paged-results control: " + ldapErrText(s.refused)
		if s.serverLimit {
			d += fmt.Sprintf("; an unpaged search stopped after %d %s (the server's size limit)", s.users, plural(s.users, "entry", "entries"))
		}
		return fail(d, fix)
	case s.overflow:
		return fail(fmt.Sprintf("the server ignored the paged-results control: it sent more than %d entries in one page", s.pageSize), fix)
	case s.cookie:
		return pass("supported: the server returned a cookie for the next page (page size %d)", s.pageSize)
	case s.responded:
		return pass("supported: the search ended in one page (%d %s, page size %d)", s.users, plural(s.users, "user", "users"), s.pageSize)
	}
	return pass("the search ended in one page (%d %s, page size %d); the server sent no paged-results answer, "+
		"so paging is not confirmed", s.users, plural(s.users, "user", "users"), s.pageSize)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func quoteDN(dn string) string {
	if dn == "" {
		return `the directory root ("")`
	}
	return dn
}

// defaultFilter is the default user_filter of the connector's type.
func defaultFilter(typ string) string {
	if t, ok := dirtype.Lookup(typ); ok {
		return t.UserFilter
	}
	return dirtype.OpenLDAPType.UserFilter
}

// applies reports whether the step applies to the connector's type; a
// connector of no known type (not validated) runs every step.
func (r *hostRun) applies(step string) bool {
	t, ok := dirtype.Lookup(r.c.Type)
	return !ok || t.HasStep(step)
}
