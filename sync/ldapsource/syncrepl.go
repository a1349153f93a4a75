package ldapsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	dirsync "github.com/dirgate/dirgate/sync"
)

// OpenLDAP incremental sync: RFC 4533 content synchronization in
// refreshOnly mode with a stored cookie (the syncprov overlay must run on
// the upstream; its session log lets it report deletions as an ID set).

// cursor is what dirgate stores between runs, for every dialect.
type cursor struct {
	Method string `json:"method"`           // syncrepl, dirsync, usn
	Host   string `json:"host,omitempty"`   // upstream the cursor belongs to
	Cookie []byte `json:"cookie,omitempty"` // syncrepl or DirSync cookie
	// uSNChanged polling, pinned to one DC's database (invocationId).
	InvocationID string `json:"invocation_id,omitempty"`
	USN          int64  `json:"usn,omitempty"`
}

func (c cursor) encode() ([]byte, error) { return json.Marshal(c) }

func decodeCursor(b []byte) (cursor, error) {
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %v", dirsync.ErrCursorInvalid, err)
	}
	return c, nil
}

// resultSyncRefreshRequired is RFC 4533's e-syncRefreshRequired (4096).
const resultSyncRefreshRequired = 4096

// syncreplCursor asks for a cookie with a filter that matches nothing:
// the server answers with the cookie of its current state and no entries.
func syncreplCursor(ctx context.Context, s *Source, conn *ldap.Conn, host string) ([]byte, error) {
	req := ldap.NewSearchRequest(s.conn.RootDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=*)(!(objectClass=*)))", []string{"1.1"}, nil)
	res := conn.Syncrepl(ctx, req, 16, ldap.SyncRequestModeRefreshOnly, nil, false)
	var cookie []byte
	for res.Next() {
		cookie = syncCookie(res.Controls(), cookie)
	}
	if err := res.Err(); err != nil {
		return nil, fmt.Errorf("syncrepl cookie: %w", err)
	}
	if len(cookie) == 0 {
		return nil, errors.New("syncrepl: the upstream returned no cookie (is the syncprov overlay loaded?)")
	}
	return cursor{Method: "syncrepl", Host: host, Cookie: cookie}.encode()
}

// syncCookie returns the newest cookie carried by controls, or prev.
func syncCookie(controls []ldap.Control, prev []byte) []byte {
	for _, c := range controls {
		switch c := c.(type) {
		case *ldap.ControlSyncDone:
			if len(c.Cookie) > 0 {
				prev = c.Cookie
			}
		case *ldap.ControlSyncInfo:
			switch {
			case c.NewCookie != nil && len(c.NewCookie.Cookie) > 0:
				prev = c.NewCookie.Cookie
			case c.RefreshDelete != nil && len(c.RefreshDelete.Cookie) > 0:
				prev = c.RefreshDelete.Cookie
			case c.RefreshPresent != nil && len(c.RefreshPresent.Cookie) > 0:
				prev = c.RefreshPresent.Cookie
			case c.SyncIdSet != nil && len(c.SyncIdSet.Cookie) > 0:
				prev = c.SyncIdSet.Cookie
			}
		case *ldap.ControlSyncState:
			if len(c.Cookie) > 0 {
				prev = c.Cookie
			}
		}
	}
	return prev
}

// Changes reads what changed since cur.
func (s *Source) Changes(ctx context.Context, cur []byte, known dirsync.Known, emit func(dirsync.Change) error) (dirsync.ChangeSet, error) {
	c, err := decodeCursor(cur)
	if err != nil {
		return dirsync.ChangeSet{}, err
	}
	switch c.Method {
	case "syncrepl":
		return s.syncreplChanges(ctx, c, known, emit)
	case "dirsync", "usn":
		return s.adChanges(ctx, c, known, emit)
	}
	return dirsync.ChangeSet{}, fmt.Errorf("%w: unknown method %q", dirsync.ErrCursorInvalid, c.Method)
}

func (s *Source) syncreplChanges(ctx context.Context, c cursor, known dirsync.Known, emit func(dirsync.Change) error) (dirsync.ChangeSet, error) {
	conn, host, err := s.connect(ctx)
	cs := dirsync.ChangeSet{Host: host, Method: "syncrepl"}
	if err != nil {
		return cs, err
	}
	defer conn.Close()
	if c.Host != host {
		// A cookie describes one server's state; after a failover it means
		// nothing to the other server.
		return cs, fmt.Errorf("%w: cookie from %s, connected to %s", dirsync.ErrCursorInvalid, c.Host, host)
	}
	since, ok := cookieCSNs(c.Cookie)
	if !ok {
		// Without the cookie's CSNs, containers renamed since it cannot be
		// told from the others (see syncreplMovedContainers).
		return cs, fmt.Errorf("%w: the cookie %q carries no change sequence number", dirsync.ErrCursorInvalid, c.Cookie)
	}
	req := ldap.NewSearchRequest(s.conn.RootDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		s.query(), s.attributes(), nil)
	res := conn.Syncrepl(ctx, req, 64, ldap.SyncRequestModeRefreshOnly, c.Cookie, false)
	cookie := c.Cookie
	// In the present phase the server lists what is unchanged instead of
	// what was deleted; then everything cached but neither present nor
	// changed is gone.
	present := map[string]bool{}
	presentPhase := false
	handled := map[string]bool{} // sent changed or deleted by the refresh
	for res.Next() {
		cookie = syncCookie(res.Controls(), cookie)
		for _, ctl := range res.Controls() {
			info, ok := ctl.(*ldap.ControlSyncInfo)
			if !ok {
				continue
			}
			switch {
			case info.SyncIdSet != nil:
				for _, u := range info.SyncIdSet.SyncUUIDs {
					id := strings.ToLower(u.String())
					if info.SyncIdSet.RefreshDeletes {
						handled[id] = true
						if err := emit(dirsync.Change{DeleteID: id}); err != nil {
							return cs, err
						}
					} else {
						presentPhase = true
						present[id] = true
					}
				}
			case info.RefreshPresent != nil:
				presentPhase = true
			}
		}
		le := res.Entry()
		if le == nil {
			continue
		}
		state := syncState(res.Controls())
		if state == nil {
			continue
		}
		id := strings.ToLower(state.EntryUUID.String())
		switch state.State {
		case ldap.SyncStatePresent:
			presentPhase = true
			present[id] = true
		case ldap.SyncStateDelete:
			handled[id] = true
			if err := emit(dirsync.Change{DeleteID: id}); err != nil {
				return cs, err
			}
		default:
			cs.Read++
			present[id], handled[id] = true, true
			e, err := s.convert(le)
			if err != nil {
				return cs, err
			}
			if e == nil {
				// Still in the upstream but no longer in scope (domain
				// filter, user/group filters).
				err = emit(dirsync.Change{DeleteID: id})
			} else {
				err = emit(dirsync.Change{Upsert: e})
			}
			if err != nil {
				return cs, err
			}
		}
	}
	if err := res.Err(); err != nil {
		if ldap.IsErrorWithCode(err, resultSyncRefreshRequired) {
			return cs, fmt.Errorf("%w: the upstream asks for a full refresh", dirsync.ErrCursorInvalid)
		}
		return cs, fmt.Errorf("connector %s: syncrepl: %w", s.conn.Name, err)
	}
	// The refresh reports a renamed container alone, or nothing when the
	// filter leaves containers out, never the entries beneath it.
	nc, err := namingContext(conn, s.conn.RootDN)
	if err != nil {
		return cs, fmt.Errorf("connector %s: %w", s.conn.Name, err)
	}
	var changed changedSet
	if err := s.movedContainerEntries(ctx, conn, nc, syncreplMovedContainers(since), &cs, &changed); err != nil {
		return cs, err
	}
	refs := changed.order[:0]
	for _, r := range changed.order {
		// The refresh sent these whole already; a container renamed after
		// it has a CSN past the new cookie, for the next run to find.
		if !handled[r.id] {
			refs = append(refs, r)
		}
	}
	err = s.reread(ctx, conn, refs, known, &cs, func(ch dirsync.Change) error {
		if ch.Upsert != nil {
			present[ch.Upsert.ID] = true
		}
		return emit(ch)
	})
	if err != nil {
		return cs, err
	}
	if presentPhase {
		for id := range known {
			if !present[id] {
				if err := emit(dirsync.Change{DeleteID: id}); err != nil {
					return cs, err
				}
			}
		}
	}
	cs.Cursor, err = cursor{Method: "syncrepl", Host: host, Cookie: cookie}.encode()
	return cs, err
}

func syncState(controls []ldap.Control) *ldap.ControlSyncState {
	for _, c := range controls {
		if s, ok := c.(*ldap.ControlSyncState); ok {
			return s
		}
	}
	return nil
}

// syncreplMovedContainers finds the entries with entries beneath them
// (organizational units, organizations, any non-leaf entry) changed since
// the cookie's CSNs (see movedContainerEntries). OpenLDAP keeps no history
// of an entry's name: a rename changes the container's entryCSN as any
// other modification does, so every container changed since the cursor is
// taken for moved, and the entries beneath a container whose description
// changed are re-read too, costing what a rename of it would. Containers
// change rarely, and keeping their DNs in the cursor to compare would grow
// it with the directory's tree for no gain in correctness. The server
// evaluates hasSubordinates (back-mdb, and the hdb and bdb backends
// syncprov also runs on, compute it), so the search returns no leaves. It
// asks from the smallest of the cookie's CSNs; each container found is then
// held against the CSN of the server that made its change.
func syncreplMovedContainers(since map[string]string) containerQuery {
	oldest := ""
	for _, c := range since {
		if oldest == "" || c < oldest {
			oldest = c
		}
	}
	return containerQuery{
		filter: "(&(hasSubordinates=TRUE)(entryCSN>=" + ldap.EscapeFilter(oldest) + "))",
		attrs:  []string{"entryCSN"},
		moved:  func(e *ldap.Entry) bool { return csnAfter(e.GetAttributeValue("entryCSN"), since) },
	}
}

// namingContext returns the server's naming context that holds root.
func namingContext(conn *ldap.Conn, root string) (string, error) {
	res, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"namingContexts"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return "", fmt.Errorf("read rootDSE: %v", err)
	}
	return namingContextOf(root, res.Entries[0].GetAttributeValues("namingContexts")), nil
}

// cookieCSNs returns the CSNs of a syncrepl cookie
// ("rid=001,sid=002,csn=<csn>;<csn>"), keyed by the server ID in each (one
// per provider of a multi-provider setup). ok is false when the cookie
// holds none, or one that is not a CSN.
func cookieCSNs(cookie []byte) (csns map[string]string, ok bool) {
	for _, part := range strings.Split(string(cookie), ",") {
		v, found := strings.CutPrefix(part, "csn=")
		if !found {
			continue
		}
		for _, c := range strings.Split(v, ";") {
			sid, ok := csnSID(c)
			if !ok {
				return nil, false
			}
			if csns == nil {
				csns = map[string]string{}
			}
			if c > csns[sid] {
				csns[sid] = c
			}
		}
	}
	return csns, len(csns) > 0
}

// csnSID returns the server ID of a CSN, "<time>Z#<count>#<sid>#<mod>"
// ("20261206205121.261320Z#000000#000#000000"; before OpenLDAP 2.3 the time
// had no fraction and the server ID two digits). Within one server ID CSNs
// order as strings.
func csnSID(csn string) (sid string, ok bool) {
	f := strings.Split(csn, "#")
	if len(f) != 4 || !csnTime(f[0]) {
		return "", false
	}
	for _, h := range f[1:] {
		if h == "" || len(h) > 6 || strings.Trim(h, "0123456789abcdefABCDEF") != "" {
			return "", false
		}
	}
	return f[2], true
}

// csnTime checks a CSN's generalized time: 14 digits, an optional
// fraction, "Z".
func csnTime(t string) bool {
	t, ok := strings.CutSuffix(t, "Z")
	if !ok {
		return false
	}
	whole, frac, hasFrac := strings.Cut(t, ".")
	digits := func(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
	return len(whole) == 14 && digits(whole) && (!hasFrac || (len(frac) <= 6 && digits(frac)))
}

// csnAfter reports whether csn is newer than the cookie's CSN of the same
// server ID; a CSN of a server the cookie does not know, or one that does
// not parse, counts as newer.
func csnAfter(csn string, cookie map[string]string) bool {
	sid, ok := csnSID(csn)
	if !ok {
		return true
	}
	seen, ok := cookie[sid]
	return !ok || csn > seen
}

var _ dirsync.IncrementalSource = (*Source)(nil)
