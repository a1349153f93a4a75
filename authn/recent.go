package authn

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/passwd"
)

// recent is the optional cached authentication (auth.cached_auth_timeout,
// SSSD's option of the same name): for a short time after the upstream
// accepted a password, the same password for the same account is accepted
// without asking the upstream again. It holds only keyed MACs in memory,
// under a key drawn at start-up, so nothing password-derived outlives the
// process or reaches the disk.
//
// What it trades: a password changed, or an account locked, in the
// directory is noticed through dirgate only at the next sync (the password
// stamp or the disabled flag of the cached entry) or when the timeout runs
// out. A different password always goes to the upstream, so a new password
// works at once and wrong guesses keep counting upstream.
type recent struct {
	ttl   time.Duration
	types map[string]string // connector name -> type, for passwordStamp
	now   func() time.Time
	mac   *passwd.MAC

	mu     sync.Mutex
	m      map[string]recentEntry
	clears uint64 // times m was emptied for size
}

// recentEntry is an account's cached password, or (valid false) the
// marker a refusal leaves so that a bind which started before it cannot
// cache its password afterwards.
type recentEntry struct {
	mac   [sha256.Size]byte
	at    time.Time
	seq   uint64 // bumped by every forget
	valid bool
}

// recentToken is what an upstream check started from (see begin).
type recentToken struct{ clears, seq uint64 }

// maxRecent bounds the memory the cache takes; it is emptied when full.
const maxRecent = 200_000

func newRecent(ttl time.Duration, types map[string]string, now func() time.Time) *recent {
	return &recent{ttl: ttl, types: types, now: now, mac: passwd.NewMAC(), m: map[string]recentEntry{}}
}

// sum binds the MAC to the account and its password stamp, so an entry
// whose password a sync saw change no longer matches.
func (r *recent) sum(e *cache.Entry, password string) [sha256.Size]byte {
	return r.mac.Sum(offlineKey(e), passwordStamp(e, r.types[e.Connector]), password)
}

// match reports whether the upstream accepted password for e less than ttl
// ago. The caller has checked that e is not disabled.
func (r *recent) match(e *cache.Entry, password string) bool {
	if r.ttl <= 0 {
		return false
	}
	r.mu.Lock()
	c, ok := r.m[offlineKey(e)]
	r.mu.Unlock()
	if !ok || !c.valid || r.now().Sub(c.at) >= r.ttl {
		return false
	}
	want := r.sum(e, password)
	return hmac.Equal(c.mac[:], want[:])
}

// begin is called before an upstream check of e's password; remember then
// stores the password only if no refusal for e came in between (two binds
// racing: a refusal answered first must not be undone by an older success).
func (r *recent) begin(e *cache.Entry) recentToken {
	if r.ttl <= 0 {
		return recentToken{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return recentToken{clears: r.clears, seq: r.m[offlineKey(e)].seq}
}

// remember records that the upstream just accepted password for e, in the
// check that began with tok. A sign-in answered from the cache does not
// call it: the timeout counts from the upstream's last word.
func (r *recent) remember(e *cache.Entry, password string, tok recentToken) {
	if r.ttl <= 0 {
		return
	}
	mac := r.sum(e, password)
	key := offlineKey(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.clears != tok.clears || r.m[key].seq != tok.seq {
		return
	}
	if len(r.m) >= maxRecent {
		clear(r.m)
		r.clears++
	}
	r.m[key] = recentEntry{mac: mac, at: r.now(), seq: tok.seq, valid: true}
}

// forget drops e's entry: the upstream refused the account or the password.
func (r *recent) forget(e *cache.Entry) {
	if r.ttl <= 0 {
		return
	}
	key := offlineKey(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= maxRecent {
		clear(r.m)
		r.clears++
	}
	r.m[key] = recentEntry{seq: r.m[key].seq + 1}
}
