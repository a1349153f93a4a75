// Package dn normalises LDAP distinguished names (RFC 4514) so that every
// spelling of the same name — different case, hex or backslash escapes,
// multi-valued RDNs in any order, AD's non-standard `\/` — maps to one key.
//
// The cache indexes entries by these keys, the LDAP front-end resolves search
// bases and bind names with them, and the cache resolves group members when it is read.
package dn

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Sep separates normalised RDNs inside a key. NUL never occurs unescaped in a
// normalised RDN (ldap.EscapeDN writes it as \00), so a key prefix followed by
// Sep always ends on an RDN boundary: that is what makes subtree scans exact.
const Sep = "\x00"

// ErrInvalid wraps every parse failure so callers can branch on it.
var ErrInvalid = errors.New("invalid DN")

// Parse parses s as an RFC 4514 DN. It first rewrites `\/` to `\2F`: `/` is
// not special in LDAP, but AD tools (ADSI, PowerShell) emit `\/` and go-ldap
// rejects it.
func Parse(s string) (*ldap.DN, error) {
	if strings.Contains(s, `\/`) {
		s = fixSlash(s)
	}
	d, err := ldap.ParseDN(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalid, s, err)
	}
	return d, nil
}

// fixSlash replaces an escaped slash with its hex form, leaving `\\/` (an
// escaped backslash followed by a plain slash) alone.
func fixSlash(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if s[i+1] == '/' {
				b.WriteString(`\2F`)
			} else {
				b.WriteByte(s[i])
				b.WriteByte(s[i+1])
			}
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Key returns the normalised key of a DN: RDNs from the root down (so a
// subtree is a key prefix), joined by Sep; attribute types and values are
// lower-cased and values re-escaped uniformly. The empty DN has key "".
func Key(s string) (string, error) {
	if k, ok := plainKey(s); ok {
		return k, nil
	}
	d, err := Parse(s)
	if err != nil {
		return "", err
	}
	return KeyOf(d), nil
}

// plainKey is Key for the common DN that needs no parser: RDNs of one
// type=value each, values of letters, digits, ".", "_", "@", "-" and single
// inner spaces, nothing to unescape or to escape. A sync computes a key
// for every entry and every group member, and parsing was a tenth of its
// work. ok is false for anything else, which Key then parses.
func plainKey(s string) (key string, ok bool) {
	if s == "" {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	for end := len(s); end > 0; {
		start := strings.LastIndexByte(s[:end], ',') + 1
		rdn := s[start:end]
		eq := strings.IndexByte(rdn, '=')
		if eq <= 0 || !plainType(rdn[:eq]) || !plainValue(rdn[eq+1:]) {
			return "", false
		}
		if b.Len() > 0 {
			b.WriteString(Sep)
		}
		for i := 0; i < len(rdn); i++ {
			c := rdn[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b.WriteByte(c)
		}
		end = start - 1
		if start == 0 {
			break
		}
		if end == 0 {
			return "", false // a leading comma
		}
	}
	return b.String(), true
}

func plainType(t string) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(isAlnum(c) || c == '-' || (c == '.' && i > 0)) {
			return false
		}
	}
	return len(t) > 0 && t[0] != '-'
}

func plainValue(v string) bool {
	if v == "" || v[0] == ' ' || v[len(v)-1] == ' ' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isAlnum(c), c == '.', c == '_', c == '@', c == '-':
		case c == ' ' && v[i-1] != ' ':
		default:
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// KeyOf is Key for an already parsed DN.
func KeyOf(d *ldap.DN) string {
	var b strings.Builder
	for i := len(d.RDNs) - 1; i >= 0; i-- {
		if i != len(d.RDNs)-1 {
			b.WriteString(Sep)
		}
		b.WriteString(rdnKey(d.RDNs[i]))
	}
	return b.String()
}

func rdnKey(r *ldap.RelativeDN) string {
	parts := make([]string, len(r.Attributes))
	for i, a := range r.Attributes {
		parts[i] = strings.ToLower(a.Type) + "=" + ldap.EscapeDN(foldValue(a.Value))
	}
	// A multi-valued RDN is a set: its order must not change the key.
	sort.Strings(parts)
	return strings.Join(parts, "+")
}

// foldValue lower-cases a value and applies the caseIgnore insignificant
// space rule (RFC 4518) that directory servers use when matching names.
func foldValue(v string) string {
	return strings.Join(strings.Fields(strings.ToLower(v)), " ")
}

// Parent returns the key of the parent of key ("" for a single-RDN key).
func Parent(key string) string {
	if i := strings.LastIndex(key, Sep); i >= 0 {
		return key[:i]
	}
	return ""
}

// Depth returns the number of RDNs in key.
func Depth(key string) int {
	if key == "" {
		return 0
	}
	return strings.Count(key, Sep) + 1
}

// Under reports whether key lies in the subtree rooted at base (base itself
// included).
func Under(key, base string) bool {
	if base == "" {
		return true
	}
	return key == base || strings.HasPrefix(key, base+Sep)
}

// Equal reports whether a and b name the same entry. Unparseable names are
// never equal to anything.
func Equal(a, b string) bool {
	ka, err := Key(a)
	if err != nil {
		return false
	}
	kb, err := Key(b)
	return err == nil && ka == kb
}
