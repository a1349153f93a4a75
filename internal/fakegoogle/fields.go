package fakegoogle

import "strings"

// fieldTree is a parsed fields selector: each selected key maps to the
// selection beneath it, nil for the whole value.
type fieldTree map[string]fieldTree

// selectFields applies Google's partial-response selector to a response
// object. Supported forms: a,b (keys), a/b (a path), a(b,c) (keys of each
// object in a, or of the object a) and * (everything at that level).
// An empty selector keeps the whole object.
func selectFields(o object, raw string) (any, *apiError) {
	if raw == "" {
		return map[string]any(o), nil
	}
	t, rest, ok := parseFields(raw)
	if !ok || rest != "" {
		return nil, badParam("fields", "Invalid field selection %s", raw)
	}
	return applyFields(map[string]any(o), t), nil
}

// parseFields parses a comma-separated selection up to a closing
// parenthesis or the end of s; it returns what is left of s after it.
func parseFields(s string) (fieldTree, string, bool) {
	t := fieldTree{}
	for {
		i := strings.IndexAny(s, ",()")
		if i < 0 {
			i = len(s)
		}
		path := strings.Split(strings.TrimSpace(s[:i]), "/")
		s = s[i:]
		// a/b/c selects c within b within a.
		leaf := t
		for _, p := range path[:len(path)-1] {
			if p == "" {
				return nil, "", false
			}
			if leaf[p] == nil {
				leaf[p] = fieldTree{}
			}
			leaf = leaf[p]
		}
		last := path[len(path)-1]
		if last == "" {
			return nil, "", false
		}
		leaf[last] = nil
		if strings.HasPrefix(s, "(") {
			sub, rest, ok := parseFields(s[1:])
			if !ok || !strings.HasPrefix(rest, ")") {
				return nil, "", false
			}
			leaf[last], s = sub, rest[1:]
		}
		if !strings.HasPrefix(s, ",") {
			return t, s, true
		}
		s = s[1:]
	}
}

// applyFields keeps the selected parts of v.
func applyFields(v any, t fieldTree) any {
	switch x := v.(type) {
	case map[string]any:
		if _, all := t["*"]; all {
			return x
		}
		out := map[string]any{}
		for k, sub := range t {
			val, ok := x[k]
			if !ok {
				continue
			}
			if sub == nil {
				out[k] = val
			} else {
				out[k] = applyFields(val, sub)
			}
		}
		return out
	case object:
		return applyFields(map[string]any(x), t)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = applyFields(e, t)
		}
		return out
	}
	return v
}
