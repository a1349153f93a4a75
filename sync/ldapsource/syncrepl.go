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
	req := ldap.NewSearchRequest(s.conn.RootDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		s.query(), s.attributes(), nil)
	res := conn.Syncrepl(ctx, req, 64, ldap.SyncRequestModeRefreshOnly, c.Cookie, false)
	cookie := c.Cookie
	// In the present phase the server lists what is unchanged instead of
	// what was deleted; then everything cached but neither present nor
	// changed is gone.
	present := map[string]bool{}
	presentPhase := false
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
			if err := emit(dirsync.Change{DeleteID: id}); err != nil {
				return cs, err
			}
		default:
			cs.Read++
			present[id] = true
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

var _ dirsync.IncrementalSource = (*Source)(nil)
