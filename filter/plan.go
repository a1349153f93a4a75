package filter

import "slices"

// Attributes returns the canonical names (lower case, aliases resolved,
// options kept) of the attributes the filter reads, deduplicated, in order
// of first use, so the caller decodes only those. It contains "*" when an
// extensible match names no attribute and so may read any of them. The
// entry's DN, needed by :dn: matches, is not an attribute and not listed.
func (f *Filter) Attributes() []string { return slices.Clone(f.attrs) }

func attributes(root Node) []string {
	var attrs []string
	add := func(a string) {
		full, _ := canonAttr(a)
		if !slices.Contains(attrs, full) {
			attrs = append(attrs, full)
		}
	}
	var walk func(Node)
	walk = func(n Node) {
		switch n := n.(type) {
		case And:
			for _, c := range n.Children {
				walk(c)
			}
		case Or:
			for _, c := range n.Children {
				walk(c)
			}
		case Not:
			walk(n.Child)
		case Equality:
			add(n.Attr)
		case Approx:
			add(n.Attr)
		case GreaterOrEqual:
			add(n.Attr)
		case LessOrEqual:
			add(n.Attr)
		case Present:
			add(n.Attr)
		case Substrings:
			add(n.Attr)
		case Extensible:
			if n.Attr == "" {
				add("*")
			} else {
				add(n.Attr)
			}
		}
	}
	walk(root)
	return attrs
}

// IndexHint is an equality assertion that a matching entry must satisfy, so
// that the caller can fetch candidates from an index instead of scanning.
type IndexHint struct {
	// Attr is the canonical attribute name (lower case, aliases resolved).
	Attr string
	// Value is EqualityKey of the assertion value: the index must be keyed
	// by EqualityKey of the stored values for the hint to be exact.
	Value string
}

// Hints finds equality assertions that every entry matching the filter
// satisfies, on attributes for which indexed (called with canonical names)
// returns true.
//
// Contract: if ok is true, every entry for which the filter is TRUE has, for
// at least one hint h in alternatives, a value v of h.Attr with
// EqualityKey(schema, h.Attr, v) == h.Value. So the caller fetches the union
// of the index entries of all alternatives and still runs Match on each
// candidate: hints narrow the search, they do not decide it. ok with no
// alternatives means no entry can match (for example "(|)", or an AND with
// an equality whose value is invalid for its syntax). ok=false means no index
// is usable: scan.
//
// An objectClass assertion yields one alternative per class it matches
// (the class and its subclasses), except top, which matches every entry.
//
// The alternatives come from the filter itself when it is an equality (or
// approximate, or rule-less extensible without :dn:) assertion; from the
// child of an AND with the fewest alternatives; and from an OR only when
// every child yields hints, as the union of theirs. NOT and the other
// assertions yield none.
func (f *Filter) Hints(indexed func(attr string) bool) (alternatives []IndexHint, ok bool) {
	return hints(f.Root, f.schema, indexed)
}

func hints(n Node, schema Schema, indexed func(string) bool) ([]IndexHint, bool) {
	switch n := n.(type) {
	case Equality:
		return equalityHint(n.Attr, n.Value, schema, indexed)
	case Approx:
		return equalityHint(n.Attr, n.Value, schema, indexed)
	case Extensible:
		if n.Attr != "" && n.Rule == "" && !n.DNAttributes {
			return equalityHint(n.Attr, n.Value, schema, indexed)
		}
	case And:
		var best []IndexHint
		found := false
		for _, c := range n.Children {
			if h, ok := hints(c, schema, indexed); ok && (!found || len(h) < len(best)) {
				best, found = h, true
			}
		}
		return best, found
	case Or:
		var all []IndexHint
		seen := make(map[IndexHint]bool)
		for _, c := range n.Children {
			h, ok := hints(c, schema, indexed)
			if !ok {
				return nil, false
			}
			for _, x := range h {
				if !seen[x] {
					seen[x] = true
					all = append(all, x)
				}
			}
		}
		return all, true
	}
	return nil, false
}

func equalityHint(attr, value string, schema Schema, indexed func(string) bool) ([]IndexHint, bool) {
	full, base := canonAttr(attr)
	switch vals, all, category := schemaKind(base, value); {
	case all || category:
		// Scan: every entry satisfies top, and the index does not know
		// the DN of a category name.
		return nil, false
	case vals != nil:
		// One hint per class that satisfies the objectClass assertion.
		if !indexed(full) {
			return nil, false
		}
		hints := make([]IndexHint, len(vals))
		for i, c := range vals {
			hints[i] = IndexHint{Attr: full, Value: c}
		}
		return hints, true
	}
	key, valid := equalityKey(schema, syntaxOf(schema, base), value)
	switch {
	case !valid:
		// The assertion is Undefined for every entry, never TRUE.
		return nil, true
	case !indexed(full):
		return nil, false
	}
	return []IndexHint{{Attr: full, Value: key}}, true
}
