package cloudapi

import (
	"slices"

	"github.com/dirgate/dirgate/cache"
)

// Attrs builds an entry's attributes as cache.Attrs.Add does, with every
// value in one backing array sized beforehand: an entry otherwise costs
// an allocation or two per attribute, and a cloud source's full read
// maps every object of the account.
type Attrs struct {
	cache.Attrs
	values []string
}

// NewAttrs makes room for attrs attributes of values values in all.
func NewAttrs(attrs, values int) Attrs {
	return Attrs{Attrs: make(cache.Attrs, 0, attrs), values: make([]string, 0, values)}
}

// Add appends name with the non-empty, distinct values given, if any.
func (a *Attrs) Add(name string, values ...string) {
	start := len(a.values)
	for _, v := range values {
		if v != "" && !slices.Contains(a.values[start:], v) {
			a.values = append(a.values, v)
		}
	}
	if end := len(a.values); end > start {
		// The full slice expression keeps an append to these values
		// from writing over the next attribute's.
		a.Attrs = append(a.Attrs, cache.Attr{Name: name, Values: a.values[start:end:end]})
	}
}
