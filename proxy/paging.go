package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/cache"
)

// pager keeps the server side of paged-results searches (RFC 2696): the
// matching entries computed at the first page, handed out page by page.
// Cookies are random, bound to the connection and the exact search, and
// expire.
type pager struct {
	ttl     time.Duration
	perConn int

	mu      sync.Mutex
	cursors map[string]*cursor
}

type cursor struct {
	l       *listener
	conn    int
	search  string // fingerprint of base, scope, filter, attributes
	refs    []ref
	expires time.Time
}

type ref struct{ conn, id string }

func newPager(ttl time.Duration, perConn int) *pager {
	return &pager{ttl: ttl, perConn: perConn, cursors: map[string]*cursor{}}
}

func (p *pager) put(c *cursor) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	cookie := hex.EncodeToString(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	open := 0
	for k, o := range p.cursors {
		if now.After(o.expires) {
			delete(p.cursors, k)
			continue
		}
		if o.l == c.l && o.conn == c.conn {
			open++
		}
	}
	if open >= p.perConn {
		return "", errors.New("too many paged searches open on this connection")
	}
	c.expires = now.Add(p.ttl)
	p.cursors[cookie] = c
	return cookie, nil
}

func (p *pager) take(cookie string, l *listener, conn int) (*cursor, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.cursors[cookie]
	if !ok || c.l != l || c.conn != conn || time.Now().After(c.expires) {
		return nil, false
	}
	delete(p.cursors, cookie)
	return c, true
}

func (p *pager) dropConn(l *listener, conn int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.cursors {
		if c.l == l && c.conn == conn {
			delete(p.cursors, k)
		}
	}
}

func fingerprint(m *gldap.SearchMessage) string {
	return fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%t", strings.ToLower(m.BaseDN), m.Scope, m.Filter,
		strings.ToLower(strings.Join(m.Attributes, ",")), m.TypesOnly)
}

func (l *listener) pagedSearch(ctx context.Context, w *gldap.ResponseWriter, r *gldap.Request, m *gldap.SearchMessage,
	q *query, ctl *gldap.ControlPaging, done *gldap.SearchResponseDone) (int, *searchError) {
	size := int(ctl.PagingSize)
	if size <= 0 || size > l.s.settings().cfg.MaxPageSize {
		size = l.s.settings().cfg.MaxPageSize
	}
	var cur *cursor
	if len(ctl.Cookie) > 0 {
		c, ok := l.s.pages.take(string(ctl.Cookie), l, r.ConnectionID())
		if !ok {
			return 0, &searchError{gldap.ResultUnwillingToPerform, "unknown or expired paged results cookie"}
		}
		if c.search != fingerprint(m) {
			return 0, &searchError{gldap.ResultUnwillingToPerform, "paged results cookie belongs to another search"}
		}
		if ctl.PagingSize == 0 {
			// RFC 2696: a zero size with a cookie abandons the search.
			done.SetControls(&gldap.ControlPaging{})
			return 0, nil
		}
		cur = c
	}

	sent := 0
	var serr *searchError
	err := l.s.store.View(ctx, func(v *cache.View) error {
		if cur == nil {
			if e := l.checkBase(v, q); e != nil {
				serr = e
				return nil
			}
			cur = &cursor{l: l, conn: r.ConnectionID(), search: fingerprint(m)}
			if err := l.matches(ctx, v, q, func(ev *entryView) (bool, error) {
				cur.refs = append(cur.refs, ref{ev.e.Connector, ev.e.ID})
				return true, nil
			}); err != nil {
				return err
			}
		}
		for len(cur.refs) > 0 && sent < size {
			rf := cur.refs[0]
			cur.refs = cur.refs[1:]
			e, err := v.Get(rf.conn, rf.id)
			if errors.Is(err, cache.ErrNotFound) {
				continue // deleted by a sync between two pages
			}
			if err != nil {
				return err
			}
			if err := l.sendEntry(w, r, &entryView{e: e, v: v}, q); err != nil {
				return err
			}
			sent++
		}
		return nil
	})
	if serr != nil {
		return sent, serr
	}
	if e := searchFailure(err); e != nil {
		return sent, e
	}
	resp := &gldap.ControlPaging{}
	if len(cur.refs) > 0 {
		cookie, err := l.s.pages.put(cur)
		if err != nil {
			return sent, &searchError{gldap.ResultAdminLimitExceeded, err.Error()}
		}
		resp.Cookie = []byte(cookie)
	}
	done.SetControls(resp)
	return sent, nil
}
