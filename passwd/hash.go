// Package passwd owns dirgate's handling of secrets it must check but never
// keep: the hash policy (which argon2id and bcrypt hashes are accepted, and
// the argon2id parameters new hashes get), hashing and verification, and a
// cache of secrets that verified, kept as keyed MACs. Service accounts, OIDC
// client secrets, authn's offline verifier and cached authentication all
// check through it, so they cannot disagree about what a hash means. It
// imports nothing of dirgate.
package passwd

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Parameters for new hashes: OWASP's recommended argon2id setting (19 MiB,
// two passes, one lane), which costs tens of milliseconds per bind on a
// small server while staying expensive to brute-force.
const (
	hashMemoryKiB = 19 * 1024
	hashTime      = 2
	hashThreads   = 1
	hashSaltLen   = 16
	hashKeyLen    = 32
)

// Bounds on hashes read from the file. They keep a typo such as m=1900000000
// from making every bind allocate gigabytes.
const (
	maxArgonMemoryKiB = 4 * 1024 * 1024
	maxArgonTime      = 100
)

// Hash returns an argon2id hash of password in PHC string form
// ($argon2id$v=19$m=19456,t=2,p=1$SALT$HASH) with a random salt, suitable
// for a service account's password_hash or an OIDC client's secret_hash.
func Hash(password string) (string, error) {
	salt := make([]byte, hashSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generating salt: %w", err)
	}
	p := argonHash{memory: hashMemoryKiB, time: hashTime, threads: hashThreads, salt: salt}
	p.key = p.derive(password, hashKeyLen)
	return p.String(), nil
}

// Verify reports whether password matches h, an argon2id PHC string (as
// Hash makes) or a bcrypt hash. The comparison takes the same time wherever
// the first differing byte is, so response timing does not leak how close a
// guess was. A malformed hash never matches.
func Verify(h, password string) bool {
	if isBcrypt(h) {
		return bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil
	}
	p, err := parseArgon2id(h)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(p.derive(password, uint32(len(p.key))), p.key) == 1
}

// CheckHash explains why h cannot be used as a configured hash, or returns
// nil when Verify can check passwords against it. The error never quotes h:
// when it is not a hash it is probably a password.
func CheckHash(h string) error {
	const howTo = "run `dirgate hash-password` and paste its output here"
	switch {
	case isBcrypt(h):
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return fmt.Errorf("malformed bcrypt hash (%v); %s", err, howTo)
		}
		return nil
	case strings.HasPrefix(h, "$argon2id$"):
		if _, err := parseArgon2id(h); err != nil {
			return fmt.Errorf("malformed argon2id hash (%v); %s", err, howTo)
		}
		return nil
	case strings.HasPrefix(h, "$argon2i$"), strings.HasPrefix(h, "$argon2d$"):
		return fmt.Errorf("only the argon2id variant is supported; %s", howTo)
	case strings.HasPrefix(h, "$"):
		return fmt.Errorf("unsupported hash scheme; use argon2id or bcrypt ($2a$, $2b$, $2y$): %s", howTo)
	}
	return fmt.Errorf("is not an argon2id or bcrypt hash; plaintext passwords are refused: %s", howTo)
}

func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")
}

// argonHash is a decoded argon2id PHC string.
type argonHash struct {
	memory    uint32 // KiB
	time      uint32
	threads   uint8
	salt, key []byte
}

func (p argonHash) derive(password string, keyLen uint32) []byte {
	return argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, keyLen)
}

func (p argonHash) String() string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, enc.EncodeToString(p.salt), enc.EncodeToString(p.key))
}

func parseArgon2id(h string) (argonHash, error) {
	var p argonHash
	parts := strings.Split(h, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, errors.New("want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("version %q is not supported, want v=%d", parts[2], argon2.Version)
	}
	params := map[string]uint64{}
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || (k != "m" && k != "t" && k != "p") {
			return p, fmt.Errorf("bad parameter %q, want m=M,t=T,p=P", kv)
		}
		params[k] = n
	}
	m, t, threads := params["m"], params["t"], params["p"]
	switch {
	case len(params) != 3:
		return p, errors.New("parameters must be exactly m, t and p")
	case threads < 1 || threads > 255:
		return p, errors.New("p must be between 1 and 255")
	case t < 1 || t > maxArgonTime:
		return p, fmt.Errorf("t must be between 1 and %d", maxArgonTime)
	case m < 8*threads || m > maxArgonMemoryKiB:
		return p, fmt.Errorf("m must be between 8*p and %d KiB", maxArgonMemoryKiB)
	}
	p.memory, p.time, p.threads = uint32(m), uint32(t), uint8(threads)
	var err error
	// PHC strings omit padding, but some tools emit it; accept both.
	if p.salt, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[4], "=")); err != nil || len(p.salt) < 8 {
		return p, errors.New("salt must be at least 8 bytes of base64")
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(parts[5], "=")); err != nil || len(p.key) < 16 {
		return p, errors.New("hash must be at least 16 bytes of base64")
	}
	return p, nil
}
