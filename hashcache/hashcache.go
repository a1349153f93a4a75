// Package hashcache remembers secrets that verified against a slow hash.
// argon2id and bcrypt are deliberately slow (tens of milliseconds and, for
// argon2id, 19 MiB per check), which is right for a wrong guess but would
// make every bind of an application's connection pool, or every token
// request of a busy client, pay it. A secret that verified once is kept as a
// keyed MAC (never the secret itself); later checks with the same secret
// compare MACs. A wrong secret always pays the full hash.
package hashcache

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
)

// Cache is safe for concurrent use.
type Cache struct {
	key [32]byte

	mu   sync.Mutex
	good map[string][]byte // account -> MAC of the last secret that verified
}

// New returns an empty cache with a fresh random key.
func New() *Cache {
	c := &Cache{good: map[string][]byte{}}
	if _, err := rand.Read(c.key[:]); err != nil {
		panic("hashcache: no randomness for the key: " + err.Error())
	}
	return c
}

func (c *Cache) mac(account, secret string) []byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(account))
	m.Write([]byte{0})
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// Check reports whether secret is the account's: from the cache when the
// same secret verified before, else by calling verify (the slow hash).
func (c *Cache) Check(account, secret string, verify func(string) bool) bool {
	sum := c.mac(account, secret)
	c.mu.Lock()
	known := c.good[account]
	c.mu.Unlock()
	if known != nil && hmac.Equal(known, sum) {
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
