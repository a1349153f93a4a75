package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Console sessions live in memory: a restart signs everyone out.
const (
	sessionCookie   = "dirgate_admin"
	loginCookie     = "dirgate_admin_login" // pre-session CSRF for the sign-in form
	sessionIdle     = time.Hour
	sessionLifetime = 12 * time.Hour
	maxSessions     = 1000
)

// session is one signed-in console user.
type session struct {
	id       string
	csrf     string
	created  time.Time
	lastSeen time.Time
	// flash is the outcome of the last action, shown once by the page the
	// action redirected to (post/redirect/get).
	flash *flash
}

type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	now func() time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, now: now}
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics if it cannot read)
	return base64.RawURLEncoding.EncodeToString(b)
}

// expired reports whether s has outlived its idle or absolute lifetime.
func (s *session) expired(now time.Time) bool {
	return now.Sub(s.lastSeen) > sessionIdle || now.Sub(s.created) > sessionLifetime
}

// create starts a session, evicting expired ones (and the oldest when full).
func (ss *sessions) create() *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := ss.now()
	for id, s := range ss.m {
		if s.expired(now) {
			delete(ss.m, id)
		}
	}
	if len(ss.m) >= maxSessions {
		var oldest *session
		for _, s := range ss.m {
			if oldest == nil || s.lastSeen.Before(oldest.lastSeen) {
				oldest = s
			}
		}
		delete(ss.m, oldest.id)
	}
	s := &session{id: randomID(), csrf: randomID(), created: now, lastSeen: now}
	ss.m[s.id] = s
	return s
}

// get returns the live session with the given ID and marks it used.
func (ss *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil {
		return nil
	}
	now := ss.now()
	if s.expired(now) {
		delete(ss.m, id)
		return nil
	}
	s.lastSeen = now
	return s
}

func (ss *sessions) delete(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// setFlash stores the outcome of an action for the next page.
func (ss *sessions) setFlash(s *session, f *flash) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash = f
}

// takeFlash returns and clears the pending outcome.
func (ss *sessions) takeFlash(s *session) *flash {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

// validCSRF compares a form's CSRF token with the session's.
func (s *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) == 1
}
