package proxy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"

	"github.com/dirgate/dirgate/config"
)

// verifier checks service-account passwords. argon2id is deliberately slow
// (tens of milliseconds and 19 MiB per check), which is right for a wrong
// guess but would make every bind of an application's connection pool pay
// it; so a password that verified once is remembered as a keyed MAC (never
// the password) and later binds with the same password compare MACs.
type verifier struct {
	key [32]byte

	mu   sync.Mutex
	good map[string][]byte // account DN key -> MAC of the last good password
}

func newVerifier() *verifier {
	v := &verifier{good: map[string][]byte{}}
	if _, err := rand.Read(v.key[:]); err != nil {
		panic("proxy: no randomness for the verifier key: " + err.Error())
	}
	return v
}

func (v *verifier) mac(account, password string) []byte {
	m := hmac.New(sha256.New, v.key[:])
	m.Write([]byte(account))
	m.Write([]byte{0})
	m.Write([]byte(password))
	return m.Sum(nil)
}

func (v *verifier) check(account string, acct config.ServiceAccount, password string) bool {
	sum := v.mac(account, password)
	v.mu.Lock()
	known := v.good[account]
	v.mu.Unlock()
	if known != nil && hmac.Equal(known, sum) {
		return true
	}
	if !acct.Verify(password) {
		return false
	}
	v.mu.Lock()
	v.good[account] = sum
	v.mu.Unlock()
	return true
}
