package ldapsource

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/dirtype"
	dirsync "github.com/dirgate/dirgate/sync"
)

// Active Directory over LDAP: objectGUID as the stable ID,
// userAccountControl for disabled accounts, proxyAddresses for aliases,
// ranged member values for large groups, and incremental sync with the
// DirSync control (when the account holds "Replicating Directory Changes")
// or uSNChanged polling pinned to one DC's invocationId.

// oidShowDeleted makes tombstones visible to a search.
const oidShowDeleted = "1.2.840.113556.1.4.417"

var activeDirectory = dialect{
	Type:        dirtype.ActiveDirectoryType,
	id:          func(e *ldap.Entry) string { return cache.FormatGUID(e.GetRawAttributeValue("objectGUID")) },
	operational: []string{"objectGUID", "userAccountControl", "pwdLastSet", "accountExpires", "lockoutTime"},
	kind: func(e *ldap.Entry) cache.Kind {
		var user, group, computer bool
		for _, oc := range e.GetEqualFoldAttributeValues("objectClass") {
			switch strings.ToLower(oc) {
			case "user", "inetorgperson":
				user = true
			case "group":
				group = true
			case "computer":
				computer = true
			}
		}
		switch {
		case group:
			return cache.KindGroup
		case user && !computer:
			return cache.KindUser
		}
		return 0
	},
	volatile: map[string]bool{
		"lastlogon": true, "lastlogontimestamp": true, "lastlogoff": true, "logoncount": true,
		"badpwdcount": true, "badpasswordtime": true, "dscorepropagationdata": true,
		"usnchanged": true, "whenchanged": true,
	},
	cursor: adCursor,
}

// guidFilterValue escapes a binary GUID for an (objectGUID=...) filter.
func guidFilterValue(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "\\%02x", c)
	}
	return sb.String()
}

// completeRanges fetches the rest of a multi-valued attribute the server
// returned in ranges (member;range=0-1499): AD returns at most MaxValRange
// values per request. It rewrites le so that the attribute holds every
// value untagged. With a forced step (servers that do not enforce ranges,
// and tests) the attribute is always read range by range.
func (s *Source) completeRanges(ctx context.Context, conn *ldap.Conn, le *ldap.Entry, attr string) error {
	var (
		values []string
		next   = -1
		found  bool
	)
	kept := le.Attributes[:0]
	for _, a := range le.Attributes {
		name, _, hi, ok := parseRange(a.Name)
		switch {
		case ok && strings.EqualFold(name, attr):
			found = true
			values = append(values, a.Values...)
			if hi >= 0 {
				next = hi + 1
			}
		case s.rangeStep > 0 && strings.EqualFold(a.Name, attr):
			found, next = true, 0
		default:
			kept = append(kept, a)
		}
	}
	if !found {
		return nil
	}
	for next >= 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := "*"
		if s.rangeStep > 0 {
			hi = strconv.Itoa(next + s.rangeStep - 1)
		}
		req := ldap.NewSearchRequest(le.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{fmt.Sprintf("%s;range=%d-%s", attr, next, hi)}, nil)
		res, err := conn.Search(req)
		if err != nil {
			return fmt.Errorf("range retrieval of %s on %q: %w", attr, le.DN, err)
		}
		if len(res.Entries) != 1 {
			return fmt.Errorf("range retrieval of %s on %q: %d entries", attr, le.DN, len(res.Entries))
		}
		next = -1
		for _, a := range res.Entries[0].Attributes {
			name, lo, top, ok := parseRange(a.Name)
			if !ok || !strings.EqualFold(name, attr) {
				continue
			}
			s.rangeRequests++
			values = append(values, a.Values...)
			if top >= 0 && top >= lo {
				next = top + 1
			}
		}
	}
	le.Attributes = append(kept, &ldap.EntryAttribute{Name: attr, Values: values})
	return nil
}

// parseRange splits "member;range=0-1499" into ("member", 0, 1499); a "*"
// upper bound (the last chunk) gives hi = -1.
func parseRange(desc string) (name string, lo, hi int, ok bool) {
	i := strings.Index(strings.ToLower(desc), ";range=")
	if i < 0 {
		return "", 0, 0, false
	}
	name = desc[:i]
	spec := desc[i+len(";range="):]
	a, b, found := strings.Cut(spec, "-")
	if !found {
		return "", 0, 0, false
	}
	lo, err := strconv.Atoi(a)
	if err != nil {
		return "", 0, 0, false
	}
	if b == "*" {
		return name, lo, -1, true
	}
	hi, err = strconv.Atoi(b)
	if err != nil {
		return "", 0, 0, false
	}
	return name, lo, hi, true
}

// adRootDSE reads what incremental sync pins to.
func adRootDSE(conn *ldap.Conn) (usn int64, invocationID, nc string, err error) {
	res, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"highestCommittedUSN", "dsServiceName", "defaultNamingContext"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return 0, "", "", fmt.Errorf("read rootDSE: %v", err)
	}
	r := res.Entries[0]
	usn, err = strconv.ParseInt(r.GetAttributeValue("highestCommittedUSN"), 10, 64)
	if err != nil {
		return 0, "", "", fmt.Errorf("rootDSE highestCommittedUSN: %w", err)
	}
	svc := r.GetAttributeValue("dsServiceName")
	res, err = conn.Search(ldap.NewSearchRequest(svc, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"invocationId"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return 0, "", "", fmt.Errorf("read invocationId of %q: %v", svc, err)
	}
	inv := cache.FormatGUID(res.Entries[0].GetRawAttributeValue("invocationId"))
	if inv == "" {
		return 0, "", "", fmt.Errorf("no invocationId on %q", svc)
	}
	return usn, inv, r.GetAttributeValue("defaultNamingContext"), nil
}

// adCursor prefers DirSync, whose cookie needs the "Replicating Directory
// Changes" right; without it, uSNChanged polling.
func adCursor(ctx context.Context, s *Source, conn *ldap.Conn, host string) ([]byte, error) {
	usn, inv, nc, err := adRootDSE(conn)
	if err != nil {
		return nil, err
	}
	// A DirSync pass with a filter that matches nothing walks the change
	// log without returning objects and hands back a cookie for "now".
	cookie, err := s.dirSyncCookie(ctx, conn, nc)
	if s.noDirSync {
		err = errors.New("disabled for this source")
	}
	if err == nil {
		return cursor{Method: "dirsync", Host: host, Cookie: cookie, InvocationID: inv, USN: usn}.encode()
	}
	s.log.Info("DirSync not available, using uSNChanged polling", "connector", s.conn.Name, "host", host, "err", err)
	return cursor{Method: "usn", Host: host, InvocationID: inv, USN: usn}.encode()
}

func (s *Source) dirSyncCookie(ctx context.Context, conn *ldap.Conn, nc string) ([]byte, error) {
	var cookie []byte
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		req := ldap.NewSearchRequest(nc, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(&(objectClass=dirgateNothing)(!(objectClass=*)))", []string{"objectGUID"},
			[]ldap.Control{ldap.NewRequestControlDirSync(ldap.DirSyncObjectSecurity, 0, cookie)})
		res, err := conn.Search(req)
		if err != nil {
			return nil, err
		}
		ctl, ok := ldap.FindControl(res.Controls, ldap.ControlTypeDirSync).(*ldap.ControlDirSync)
		if !ok {
			return nil, errors.New("the server returned no DirSync control")
		}
		cookie = ctl.Cookie
		if ctl.Flags == 0 {
			return cookie, nil
		}
	}
}

// adChanges reads what changed since c with DirSync or uSNChanged.
func (s *Source) adChanges(ctx context.Context, c cursor, known dirsync.Known, emit func(dirsync.Change) error) (dirsync.ChangeSet, error) {
	conn, host, err := s.connect(ctx)
	cs := dirsync.ChangeSet{Host: host, Method: c.Method}
	if err != nil {
		return cs, err
	}
	defer conn.Close()
	usn, inv, nc, err := adRootDSE(conn)
	if err != nil {
		return cs, fmt.Errorf("connector %s: %w", s.conn.Name, err)
	}
	if c.Host != host || c.InvocationID != inv {
		// USNs and DirSync cookies are per DC database: on another DC, or a
		// restored one, they mean something else.
		return cs, fmt.Errorf("%w: cursor from %s (invocationId %s), connected to %s (%s)", dirsync.ErrCursorInvalid, c.Host, c.InvocationID, host, inv)
	}
	var changed changedSet // objects to re-read
	deleted := map[string]bool{}
	next := cursor{Method: c.Method, Host: host, InvocationID: inv, USN: usn}
	switch c.Method {
	case "dirsync":
		cookie := c.Cookie
		for {
			req := ldap.NewSearchRequest(nc, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
				// Samba reports a changed object only when a changed attribute
				// is among those requested, and evaluates the filter on them:
				// ask for everything that is synced.
				s.query(), append(s.attributes(), "isDeleted", "objectCategory"),
				[]ldap.Control{ldap.NewRequestControlDirSync(ldap.DirSyncObjectSecurity, 0, cookie)})
			res, err := conn.Search(req)
			if err != nil {
				return cs, fmt.Errorf("connector %s: DirSync: %w", s.conn.Name, err)
			}
			for _, e := range res.Entries {
				cs.Read++
				raw := e.GetRawAttributeValue("objectGUID")
				if strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE") {
					deleted[cache.FormatGUID(raw)] = true
					continue
				}
				changed.add(s, e)
			}
			ctl, ok := ldap.FindControl(res.Controls, ldap.ControlTypeDirSync).(*ldap.ControlDirSync)
			if !ok {
				return cs, errors.New("DirSync: the server returned no control")
			}
			cookie = ctl.Cookie
			if ctl.Flags == 0 {
				break
			}
		}
		next.Cookie = cookie
	case "usn":
		q := fmt.Sprintf("(&%s(uSNChanged>=%d))", s.query(), c.USN+1)
		err := s.paged(ctx, conn, s.conn.RootDN, q, []string{"objectGUID"}, func(e *ldap.Entry) error {
			cs.Read++
			changed.add(s, e)
			return nil
		})
		if err != nil {
			return cs, err
		}
	default:
		return cs, fmt.Errorf("%w: unknown method %q", dirsync.ErrCursorInvalid, c.Method)
	}
	if err := s.movedContainerEntries(ctx, conn, nc, adMovedContainers(c.USN), &cs, &changed); err != nil {
		return cs, err
	}
	// Tombstones keep their objectGUID; both methods find deletions this
	// way (a DirSync filter on object classes does not match a tombstone,
	// which loses objectCategory). The account needs read access to
	// CN=Deleted Objects.
	req := ldap.NewSearchRequest("CN=Deleted Objects,"+nc, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		fmt.Sprintf("(&(isDeleted=TRUE)(uSNChanged>=%d))", c.USN+1), []string{"objectGUID"},
		[]ldap.Control{ldap.NewControlString(oidShowDeleted, true, "")})
	res, err := conn.Search(req)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return cs, fmt.Errorf("connector %s: read deleted objects (does the account have List/Read on CN=Deleted Objects?): %w", s.conn.Name, err)
	}
	if res != nil {
		for _, e := range res.Entries {
			cs.Read++
			deleted[cache.FormatGUID(e.GetRawAttributeValue("objectGUID"))] = true
		}
	}
	for id := range deleted {
		if known.Has(id) {
			if err := emit(dirsync.Change{DeleteID: id}); err != nil {
				return cs, err
			}
		}
	}
	// DirSync returns only the changed attributes: re-read each changed
	// object whole, within the root DN (an object moved out of it is a
	// deletion for this connector).
	if err := s.reread(ctx, conn, changed.order, known, &cs, emit); err != nil {
		return cs, err
	}
	cs.Cursor, err = next.encode()
	return cs, err
}

// attidName is the attribute ID of "name" (the RDN) in replPropertyMetaData.
// Renaming an object and moving it both change it: AD replicates a move as
// a change of name, with the new parent.
const attidName = 0x00090001

// adMovedContainers finds the OUs and container objects renamed or moved
// since USN since (see movedContainerEntries): AD raises the uSNChanged of
// the container alone, and DirSync reports it alone. A container whose
// other attributes changed (a GPO link, a description) is told apart by the
// version metadata of its name, so it costs nothing.
func adMovedContainers(since int64) containerQuery {
	return containerQuery{
		filter: fmt.Sprintf("(&(|(objectClass=organizationalUnit)(objectClass=container))(uSNChanged>=%d))", since+1),
		attrs:  []string{"replPropertyMetaData"},
		moved: func(e *ldap.Entry) bool {
			// Without readable metadata, the container may have moved.
			usn, ok := metaDataLocalUSN(e.GetRawAttributeValue("replPropertyMetaData"), attidName)
			return !ok || usn > since
		},
	}
}

// metaDataLocalUSN returns the local USN at which the attribute attid last
// changed, from a replPropertyMetaData value (PROPERTY_META_DATA_VECTOR,
// version 1: a 16-byte header with the count, then 48-byte records of
// attid, version, change time, invocation ID, originating USN, local USN,
// little-endian). ok is false when the value is not in that form or does
// not list attid.
func metaDataLocalUSN(b []byte, attid uint32) (usn int64, ok bool) {
	const header, record = 16, 48
	if len(b) < header || binary.LittleEndian.Uint32(b) != 1 {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if uint64(len(b)-header) < uint64(n)*record {
		return 0, false
	}
	for i := range int(n) {
		r := b[header+i*record:]
		if binary.LittleEndian.Uint32(r) == attid {
			return int64(binary.LittleEndian.Uint64(r[40:])), true
		}
	}
	return 0, false
}
