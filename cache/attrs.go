package cache

import (
	"slices"
	"strings"
)

// Attrs collects the attributes of an entry a source builds, leaving out
// empty values, repeated values and attributes left with no value, so
// every source maps "not set" the same way.
type Attrs []Attr

// Add appends name with the non-empty, distinct values given, if any.
func (a *Attrs) Add(name string, values ...string) {
	var vs []string
	for _, v := range values {
		if v != "" && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	if len(vs) > 0 {
		*a = append(*a, Attr{Name: name, Values: vs})
	}
}

// Bool is b in LDAP's Boolean syntax (RFC 4517 3.3.3).
func Bool(b bool) string {
	if b {
		return "TRUE"
	}
	return "FALSE"
}

// AddressScope is the set of email domains a connector serves addresses
// in (its email_domains); nil serves every domain.
type AddressScope map[string]bool

// NewAddressScope returns the scope of domains, nil when there are none.
func NewAddressScope(domains []string) AddressScope {
	if len(domains) == 0 {
		return nil
	}
	s := AddressScope{}
	for _, d := range domains {
		s[NormalizeAddress(d)] = true
	}
	return s
}

// Restricted reports whether the scope leaves some domains out.
func (s AddressScope) Restricted() bool { return s != nil }

// Addresses returns an entry's login addresses from candidates, in their
// order: normalised, each once, well-formed (something@domain), and in
// the scope.
func (s AddressScope) Addresses(candidates ...string) []string {
	var out []string
	for _, a := range candidates {
		a = NormalizeAddress(a)
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 || slices.Contains(out, a) {
			continue
		}
		if s != nil && !s[a[at+1:]] {
			continue
		}
		out = append(out, a)
	}
	return out
}
