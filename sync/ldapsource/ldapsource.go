// Package ldapsource reads users and groups from an upstream LDAP directory
// (OpenLDAP today; the AD and Domino dialects build on the same reader) with
// a paged search, and turns each object into a cache entry keyed by the
// directory's immutable ID.
package ldapsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/filter"
	"github.com/dirgate/dirgate/internal/readahead"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/upstream"
)

// dialect holds what differs between directory products over LDAP: the
// type's registry entry (ID, member and address attributes, disabled
// accounts, whether it syncs incrementally), and what only this package
// needs to read it.
type dialect struct {
	dirtype.Type
	// operational attributes to request by name ("*" does not return them)
	operational []string
	// id, when set, reads the stable ID (AD's binary objectGUID);
	// otherwise the text of the type's stable ID attribute is used.
	id func(e *ldap.Entry) string
	// kind, when set, classifies entries instead of the connector's user
	// and group filters (AD filters use objectCategory short names that only
	// the server can evaluate).
	kind func(e *ldap.Entry) cache.Kind
	// volatile attributes change without the object changing (logon
	// counters); they are not cached, so they do not look like updates.
	volatile map[string]bool
	// cursor, when set, returns the incremental-sync cursor of the state
	// the upstream is in now.
	cursor func(ctx context.Context, s *Source, conn *ldap.Conn, host string) ([]byte, error)
}

var openLDAP = dialect{
	Type: dirtype.OpenLDAPType,
	operational: []string{"entryUUID", "entryCSN", "pwdAccountLockedTime", "pwdChangedTime", "createTimestamp",
		"modifyTimestamp", "creatorsName", "modifiersName", "structuralObjectClass"},
	cursor: syncreplCursor,
}

// dialects maps the LDAP directory types to how this package reads them.
var dialects = map[string]dialect{
	dirtype.OpenLDAP:        openLDAP,
	dirtype.ActiveDirectory: activeDirectory,
	dirtype.Domino:          domino,
}

// secretAttrs are never copied into the cache, whatever the upstream lets
// the bind account read: dirgate does not store passwords.
var secretAttrs = map[string]bool{
	"userpassword": true, "authpassword": true, "unicodepwd": true, "dbcspwd": true,
	"ntpwdhistory": true, "lmpwdhistory": true, "supplementalcredentials": true,
	"httppassword": true, "sambantpassword": true, "sambalmpassword": true,
}

// Source reads one connector's upstream.
type Source struct {
	conn    *config.Connector
	target  *upstream.Target
	dialect dialect
	users   *filter.Filter
	groups  *filter.Filter
	domains map[string]bool
	log     *slog.Logger
	// rangeStep > 0 reads member values range by range even when the
	// server would return them all (see WithMemberRangeStep).
	rangeStep int
	// rangeRequests counts ranged reads, for tests and logs.
	rangeRequests int
	// noDirSync makes AD incremental syncs poll uSNChanged (WithoutDirSync).
	noDirSync bool
	// deny holds the DN keys of deny-group members during a read (Domino).
	deny map[string]bool
}

// WithoutDirSync makes an AD source poll uSNChanged instead of using the
// DirSync control, as it does when the server refuses DirSync.
func WithoutDirSync() Option { return func(s *Source) { s.noDirSync = true } }

// Option adjusts a Source.
type Option func(*Source)

// WithMemberRangeStep makes the source read group members in ranges of n
// values (member;range=0-(n-1), ...), as Active Directory forces above
// MaxValRange (1500). Samba does not force ranges, so tests use this to run
// the same code path; it can also keep single responses small.
func WithMemberRangeStep(n int) Option { return func(s *Source) { s.rangeStep = n } }

// New prepares a source for the connector; it does not connect.
func New(c *config.Connector, log *slog.Logger, opts ...Option) (*Source, error) {
	d, ok := dialects[c.Type]
	if !ok {
		return nil, fmt.Errorf("connector %s: type %q is not supported by this build", c.Name, c.Type)
	}
	t, err := upstream.FromConnector(c)
	if err != nil {
		return nil, err
	}
	uf, err := filter.Parse(c.UserFilter, filter.Limits{})
	if err != nil {
		return nil, fmt.Errorf("connector %s: user_filter: %w", c.Name, err)
	}
	gf, err := filter.Parse(c.GroupFilter, filter.Limits{})
	if err != nil {
		return nil, fmt.Errorf("connector %s: group_filter: %w", c.Name, err)
	}
	s := &Source{conn: c, target: t, dialect: d, users: uf, groups: gf, log: log}
	for _, o := range opts {
		o(s)
	}
	if len(c.EmailDomains) > 0 {
		s.domains = map[string]bool{}
		for _, dom := range c.EmailDomains {
			s.domains[strings.ToLower(dom)] = true
		}
	}
	return s, nil
}

// Target returns where the source connects.
func (s *Source) Target() *upstream.Target { return s.target }

// connect dials the upstream (failover) and binds as the service account.
func (s *Source) connect(ctx context.Context) (*ldap.Conn, string, error) {
	conn, host, err := s.target.Dial(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("connector %s: %w", s.conn.Name, err)
	}
	if s.conn.BindDN != "" {
		if err := conn.Bind(s.conn.BindDN, s.conn.BindPassword.Reveal()); err != nil {
			conn.Close()
			return nil, host, fmt.Errorf("connector %s: service account bind on %s: %w", s.conn.Name, host, err)
		}
	}
	return conn, host, nil
}

func (s *Source) attributes() []string {
	attrs := append([]string{"*"}, s.dialect.operational...)
	return append(attrs, s.conn.Attributes...)
}

func (s *Source) query() string {
	return fmt.Sprintf("(|%s%s)", s.conn.UserFilter, s.conn.GroupFilter)
}

// Full reads every in-scope user and group and passes each to emit. A
// listing that ends early (size limit, a paging error) is an error, never a
// short success: the sync engine would otherwise take the missing entries
// for deletions.
func (s *Source) Full(ctx context.Context, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	conn, host, err := s.connect(ctx)
	if err != nil {
		return dirsync.Listing{Host: host}, err
	}
	defer conn.Close()
	listing := dirsync.Listing{Host: host}
	if s.deny, err = s.denied(ctx, conn); err != nil {
		return listing, err
	}
	if s.dialect.cursor != nil {
		// Taken before the read: a change made while reading is then seen
		// again by the next incremental run rather than lost.
		if listing.Cursor, err = s.dialect.cursor(ctx, s, conn, host); err != nil {
			s.log.Info("incremental sync unavailable, full syncs only", "connector", s.conn.Name, "host", host, "err", err)
		}
	}
	err = s.paged(ctx, conn, s.conn.RootDN, s.query(), s.attributes(), func(le *ldap.Entry) error {
		for _, m := range s.dialect.Mapping.Members {
			if err := s.completeRanges(ctx, conn, le, m); err != nil {
				return err
			}
		}
		e, err := s.convert(le)
		if err != nil || e == nil {
			return err
		}
		return emit(e)
	})
	return listing, err
}

// paged runs a paged subtree search, streaming entries page by page so a
// large directory is never held in memory. A server that refuses paging
// (some Domino servers) is read with one unpaged search; if that one hits
// the server's size limit the read fails rather than return a partial
// listing.
//
// Reading runs ahead of fn by up to two pages in its own goroutine: the
// next page is requested while fn still works on the last one, so the
// upstream and the cache writes proceed side by side instead of taking
// turns.
func (s *Source) paged(ctx context.Context, conn *ldap.Conn, base, query string, attrs []string, fn func(*ldap.Entry) error) error {
	return readahead.Run(ctx, 2*max(s.conn.PageSize, 1), func(ctx context.Context, yield func(*ldap.Entry) error) error {
		return s.readPages(ctx, conn, base, query, attrs, yield)
	}, fn)
}

// readPages is paged's reading half: it passes every entry of every page
// to fn, in order.
func (s *Source) readPages(ctx context.Context, conn *ldap.Conn, base, query string, attrs []string, fn func(*ldap.Entry) error) error {
	paging := ldap.NewControlPaging(uint32(s.conn.PageSize))
	for first := true; ; first = false {
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			query, attrs, []ldap.Control{paging})
		res := conn.SearchAsync(ctx, req, s.conn.PageSize)
		var cookie []byte
		sent := 0
		for res.Next() {
			if e := res.Entry(); e != nil {
				sent++
				if err := fn(e); err != nil {
					return err
				}
			}
			if c := ldap.FindControl(res.Controls(), ldap.ControlTypePaging); c != nil {
				if pc, ok := c.(*ldap.ControlPaging); ok {
					cookie = pc.Cookie
				}
			}
		}
		if err := res.Err(); err != nil {
			if first && sent == 0 && pagingRefused(err) {
				s.log.Info("upstream refuses paged results, reading unpaged", "connector", s.conn.Name, "err", err)
				return s.unpaged(ctx, conn, base, query, attrs, fn)
			}
			return fmt.Errorf("connector %s: search %q under %q: %w", s.conn.Name, query, base, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(cookie) == 0 {
			return nil
		}
		paging.SetCookie(cookie)
	}
}

func pagingRefused(err error) bool {
	return ldap.IsErrorAnyOf(err, ldap.LDAPResultUnavailableCriticalExtension, ldap.LDAPResultAdminLimitExceeded,
		ldap.LDAPResultUnwillingToPerform)
}

func (s *Source) unpaged(ctx context.Context, conn *ldap.Conn, base, query string, attrs []string, fn func(*ldap.Entry) error) error {
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, query, attrs, nil)
	res := conn.SearchAsync(ctx, req, s.conn.PageSize)
	n := 0
	for res.Next() {
		if e := res.Entry(); e != nil {
			n++
			if err := fn(e); err != nil {
				return err
			}
		}
	}
	if err := res.Err(); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return fmt.Errorf("connector %s: the upstream supports no paging and stopped after %d entries (size limit): "+
				"raise its limit of entries returned (Domino: \"Maximum number of entries returned\" in the Server document) "+
				"or enable paged results; nothing was changed: %w", s.conn.Name, n, err)
		}
		return fmt.Errorf("connector %s: search %q under %q: %w", s.conn.Name, query, base, err)
	}
	return nil
}

// ErrNoStableID means an entry came without the dialect's immutable ID,
// usually because the bind account may not read operational attributes.
var ErrNoStableID = errors.New("entry has no stable ID")

// ldapEntry adapts a go-ldap entry to the filter package.
type ldapEntry struct{ *ldap.Entry }

func (e ldapEntry) Values(name string) []string { return e.GetEqualFoldAttributeValues(name) }
func (e ldapEntry) DN() string                  { return e.Entry.DN }

// stableID returns le's stable ID as the cache keys it: the dialect's own
// reading when it has one (AD's binary objectGUID), else the mapped
// attribute's text lower-cased. It is "" when le has none.
func (s *Source) stableID(le *ldap.Entry) string {
	if s.dialect.id != nil {
		return s.dialect.id(le)
	}
	return strings.ToLower(le.GetEqualFoldAttributeValue(s.dialect.Mapping.StableID))
}

func (s *Source) convert(le *ldap.Entry) (*cache.Entry, error) {
	id := s.stableID(le)
	if id == "" {
		return nil, fmt.Errorf("connector %s: %q: %w (%s); can the bind account read operational attributes?",
			s.conn.Name, le.DN, ErrNoStableID, s.dialect.Mapping.StableID)
	}
	e := &cache.Entry{ID: id, DN: le.DN}
	switch {
	case s.dialect.kind != nil:
		e.Kind = s.dialect.kind(le)
	case s.users.Match(ldapEntry{le}):
		e.Kind = cache.KindUser
	case s.groups.Match(ldapEntry{le}):
		e.Kind = cache.KindGroup
	}
	if e.Kind == 0 || s.excluded(le) {
		return nil, nil // out of scope
	}
	for _, a := range le.Attributes {
		ln := strings.ToLower(a.Name)
		if secretAttrs[ln] || s.dialect.volatile[ln] || strings.Contains(ln, ";range=") {
			continue
		}
		e.Attrs = append(e.Attrs, cache.Attr{Name: a.Name, Values: a.Values})
	}
	if e.Kind == cache.KindGroup {
		for _, m := range s.dialect.Mapping.Members {
			e.Members = append(e.Members, le.GetEqualFoldAttributeValues(m)...)
		}
		return e, nil
	}
	e.Addresses = s.addresses(le)
	if s.domains != nil && len(e.Addresses) == 0 {
		return nil, nil // no address in the connector's email domains
	}
	// The deny-group check parses the DN: only when there are deny groups.
	e.Disabled = s.conn.AcknowledgeDisabledAccounts && (s.dialect.Disabled(le.GetAttributeValue) || (len(s.deny) > 0 && s.deny[dnKey(le.DN)]))
	return e, nil
}

// addresses returns the user's login addresses, primary first, limited to
// the connector's email domains.
func (s *Source) addresses(le *ldap.Entry) []string {
	var out []string
	seen := map[string]bool{}
	add := func(a string, primary bool) {
		a = cache.NormalizeAddress(a)
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 || seen[a] {
			return
		}
		if s.domains != nil && !s.domains[a[at+1:]] {
			return
		}
		seen[a] = true
		if primary {
			out = append([]string{a}, out...)
		} else {
			out = append(out, a)
		}
	}
	for _, m := range le.GetEqualFoldAttributeValues(s.conn.MailAttribute) {
		add(m, false)
	}
	for _, attr := range append(append([]string(nil), s.conn.AliasAttributes...), s.dialect.Mapping.Addresses...) {
		for _, v := range le.GetEqualFoldAttributeValues(attr) {
			addr, primary, ok := parseProxyAddress(v)
			if ok {
				add(addr, primary)
			}
		}
	}
	return out
}

// parseProxyAddress reads an AD proxyAddresses value: "SMTP:" marks the
// primary address, "smtp:" an alias, other prefixes (X500:, SIP:) are not
// email. A value without a prefix (Domino uid, plain mail aliases) is an
// alias as is.
func parseProxyAddress(v string) (addr string, primary, ok bool) {
	i := strings.IndexByte(v, ':')
	if i < 0 {
		return v, false, true
	}
	prefix := v[:i]
	if !strings.EqualFold(prefix, "smtp") {
		return "", false, false
	}
	return v[i+1:], prefix == "SMTP", true
}
