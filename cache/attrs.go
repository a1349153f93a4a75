package cache

import "slices"

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
