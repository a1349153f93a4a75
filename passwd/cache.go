package passwd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
)

// MAC keys secrets under a key drawn when it is made: what Sum returns can
// be kept in memory and compared, and tells nothing about the secret
// outside this process. It is safe for concurrent use.
type MAC struct{ key [32]byte }

// NewMAC returns a MAC with a fresh random key.
func NewMAC() *MAC {
	m := &MAC{}
	if _, err := rand.Read(m.key[:]); err != nil {
		panic("passwd: no randomness for the MAC key: " + err.Error())
	}
	return m
}

// Sum is the keyed MAC of parts joined by NUL bytes.
func (m *MAC) Sum(parts ...string) (out [sha256.Size]byte) {
	h := hmac.New(sha256.New, m.key[:])
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	h.Sum(out[:0])
	return out
}

// Cache remembers secrets that verified against a slow hash. argon2id and
// bcrypt are deliberately slow (tens of milliseconds and, for argon2id,
// 19 MiB per check), which is right for a wrong guess but would make every
// bind of an application's connection pool, or every token request of a
// busy client, pay it. A secret that verified once is kept as a keyed MAC
// (never the secret itself); later checks with the same secret compare
// MACs. A wrong secret always pays the full hash. It is safe for concurrent
// use.
type Cache struct {
	mac *MAC

	mu   sync.Mutex
	good map[string][sha256.Size]byte // account -> MAC of the last secret that verified
}

// NewCache returns an empty cache with a fresh random key.
func NewCache() *Cache {
	return &Cache{mac: NewMAC(), good: map[string][sha256.Size]byte{}}
}

// Check reports whether secret is the account's: from the cache when the
// same secret verified before, else by calling verify (the slow hash).
func (c *Cache) Check(account, secret string, verify func(string) bool) bool {
	sum := c.mac.Sum(account, secret)
	c.mu.Lock()
	known, ok := c.good[account]
	c.mu.Unlock()
	if ok && hmac.Equal(known[:], sum[:]) {
		return true
	}
	if !verify(secret) {
		return false
	}
	c.mu.Lock()
	c.good[account] = sum
	c.mu.Unlock()
	return true
}
