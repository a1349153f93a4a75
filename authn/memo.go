package authn

import (
	"sync"

	"github.com/dirgate/dirgate/cache"
)

// lookupMemo remembers which accounts a login text resolved to, for as long
// as the cache does not change (cache.Store.Version): an application that
// binds its users on every request then costs one cache lookup per user,
// not per bind. The entries it hands out are shared and must not be
// modified.
type lookupMemo struct {
	mu      sync.Mutex
	version uint64
	m       map[string][]*cache.Entry
}

// maxLookupMemo bounds the memo (about 1 KiB an entry); it is emptied when
// full.
const maxLookupMemo = 4096

func (m *lookupMemo) get(version uint64, login string) ([]*cache.Entry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.version != version {
		return nil, false
	}
	users, ok := m.m[login]
	return users, ok
}

func (m *lookupMemo) put(version uint64, login string, users []*cache.Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || m.version != version || len(m.m) >= maxLookupMemo {
		if version < m.version {
			return // a lookup that started before the last change
		}
		m.version, m.m = version, make(map[string][]*cache.Entry)
	}
	m.m[login] = users
}
