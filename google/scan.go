package google

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// scanPage decodes a page the way json.Unmarshal does, without reflection
// (each string is still a copy of its own: cut from one copy of the page,
// the IDs the cache's index keeps would keep whole pages alive): encoding/json cost as
// much as the mapping of what it decoded, half of it checking the page
// before decoding it. It reads the JSON Google sends, checking it as it
// goes; for anything else it reports false and leaves the page to
// encoding/json: invalid JSON or UTF-8, \u escapes, a known key twice or
// in another case, a value of another type, a null where encoding/json
// would keep a zero value, an unknown key whose value is no string,
// boolean or null.
func scanPage(body []byte) (*page, bool) {
	if !utf8.Valid(body) {
		return nil, false
	}
	sc := &scanner{s: body}
	var p page
	var seen uint8
	ok := sc.object(func(key []byte) bool {
		switch string(key) {
		case "nextPageToken":
			return once(&seen, 1) && sc.str(&p.NextPageToken)
		case "users":
			return once(&seen, 2) && scanArray(sc, &p.Users, sc.user)
		case "groups":
			return once(&seen, 4) && scanArray(sc, &p.Groups, sc.group)
		case "members":
			return once(&seen, 8) && scanArray(sc, &p.Members, sc.member)
		}
		return sc.other(key, "nextPageToken", "users", "groups", "members")
	})
	if sc.ws(); !ok || sc.i != len(sc.s) {
		return nil, false
	}
	return &p, true
}

// scanner reads JSON from s at i.
type scanner struct {
	s []byte
	i int
}

func (sc *scanner) user(u *user) bool {
	var seen uint16
	return sc.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return once(&seen, 1<<0) && sc.str(&u.ID)
		case "etag":
			return once(&seen, 1<<1) && sc.str(&u.Etag)
		case "primaryEmail":
			return once(&seen, 1<<2) && sc.str(&u.PrimaryEmail)
		case "name":
			return once(&seen, 1<<3) && sc.name(u)
		case "aliases":
			return once(&seen, 1<<4) && sc.strs(&u.Aliases)
		case "nonEditableAliases":
			return once(&seen, 1<<5) && sc.strs(&u.NonEditableAliases)
		case "suspended":
			return once(&seen, 1<<6) && sc.boolean(&u.Suspended)
		case "archived":
			return once(&seen, 1<<7) && sc.boolean(&u.Archived)
		case "orgUnitPath":
			return once(&seen, 1<<8) && sc.str(&u.OrgUnitPath)
		case "isAdmin":
			return once(&seen, 1<<9) && sc.boolean(&u.IsAdmin)
		}
		return sc.other(key, "id", "etag", "primaryEmail", "name", "aliases", "nonEditableAliases", "suspended", "archived", "orgUnitPath", "isAdmin")
	})
}

func (sc *scanner) name(u *user) bool {
	if sc.null() {
		return true
	}
	var seen uint8
	return sc.object(func(key []byte) bool {
		switch string(key) {
		case "givenName":
			return once(&seen, 1) && sc.str(&u.Name.GivenName)
		case "familyName":
			return once(&seen, 2) && sc.str(&u.Name.FamilyName)
		case "fullName":
			return once(&seen, 4) && sc.str(&u.Name.FullName)
		}
		return sc.other(key, "givenName", "familyName", "fullName")
	})
}

func (sc *scanner) group(g *group) bool {
	var seen uint8
	return sc.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return once(&seen, 1<<0) && sc.str(&g.ID)
		case "etag":
			return once(&seen, 1<<1) && sc.str(&g.Etag)
		case "email":
			return once(&seen, 1<<2) && sc.str(&g.Email)
		case "name":
			return once(&seen, 1<<3) && sc.str(&g.Name)
		case "description":
			return once(&seen, 1<<4) && sc.str(&g.Description)
		case "aliases":
			return once(&seen, 1<<5) && sc.strs(&g.Aliases)
		case "nonEditableAliases":
			return once(&seen, 1<<6) && sc.strs(&g.NonEditableAliases)
		}
		return sc.other(key, "id", "etag", "email", "name", "description", "aliases", "nonEditableAliases")
	})
}

func (sc *scanner) member(m *member) bool {
	var seen uint8
	return sc.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return once(&seen, 1) && sc.str(&m.ID)
		case "email":
			return once(&seen, 2) && sc.str(&m.Email)
		case "type":
			return once(&seen, 4) && sc.str(&m.Type)
		}
		return sc.other(key, "id", "email", "type")
	})
}

// scanArray reads an array of objects into *out (null: nil).
func scanArray[T any](sc *scanner, out *[]T, elem func(*T) bool) bool {
	if sc.null() {
		*out = nil
		return true
	}
	if !sc.consume('[') {
		return false
	}
	items := []T{}
	if sc.consume(']') {
		*out = items
		return true
	}
	for {
		var v T
		if !elem(&v) {
			return false
		}
		items = append(items, v)
		if sc.consume(']') {
			*out = items
			return true
		}
		if !sc.consume(',') {
			return false
		}
	}
}

// once marks bit in seen, false when it was already set: a key twice.
func once[T uint8 | uint16](seen *T, bit T) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// other skips the value of key, which is none of known: false when
// encoding/json would take it for one of them (it matches keys without
// regard to case, Unicode's folds included).
func (sc *scanner) other(key []byte, known ...string) bool {
	for i := range len(key) {
		if key[i] >= utf8.RuneSelf {
			return false
		}
	}
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			return false
		}
	}
	return sc.skip()
}

// object reads an object, calling field at each key's value.
func (sc *scanner) object(field func(key []byte) bool) bool {
	if !sc.consume('{') {
		return false
	}
	if sc.consume('}') {
		return true
	}
	for {
		sc.ws()
		key, ok := sc.raw()
		if !ok || bytes.IndexByte(key, '\\') >= 0 || !sc.consume(':') {
			return false
		}
		if !field(key) {
			return false
		}
		if sc.consume('}') {
			return true
		}
		if !sc.consume(',') {
			return false
		}
	}
}

// str reads a string into *out; null leaves it.
func (sc *scanner) str(out *string) bool {
	if sc.null() {
		return true
	}
	sc.ws()
	raw, ok := sc.raw()
	if !ok {
		return false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		*out = string(raw)
		return true
	}
	v, ok := unescape(raw)
	if ok {
		*out = v
	}
	return ok
}

// strs reads an array of strings into *out; null makes it nil.
func (sc *scanner) strs(out *[]string) bool {
	if sc.null() {
		*out = nil
		return true
	}
	if !sc.consume('[') {
		return false
	}
	vs := []string{}
	for !sc.consume(']') {
		if len(vs) > 0 && !sc.consume(',') {
			return false
		}
		var v string
		sc.ws()
		if sc.i >= len(sc.s) || sc.s[sc.i] != '"' || !sc.str(&v) {
			return false // a null element is a zero value to encoding/json
		}
		vs = append(vs, v)
	}
	*out = vs
	return true
}

// boolean reads true or false into *out; null leaves it.
func (sc *scanner) boolean(out *bool) bool {
	sc.ws()
	switch {
	case bytes.HasPrefix(sc.s[sc.i:], []byte("true")):
		*out, sc.i = true, sc.i+4
	case bytes.HasPrefix(sc.s[sc.i:], []byte("false")):
		*out, sc.i = false, sc.i+5
	case bytes.HasPrefix(sc.s[sc.i:], []byte("null")):
		sc.i += 4
	default:
		return false
	}
	return true
}

// null consumes a null, if that is what comes.
func (sc *scanner) null() bool {
	sc.ws()
	if bytes.HasPrefix(sc.s[sc.i:], []byte("null")) {
		sc.i += 4
		return true
	}
	return false
}

// raw reads a string at i and returns its content as it is written; false
// when it is no valid JSON string.
func (sc *scanner) raw() ([]byte, bool) {
	if sc.i >= len(sc.s) || sc.s[sc.i] != '"' {
		return nil, false
	}
	start := sc.i + 1
	for j := start; j < len(sc.s); j++ {
		switch c := sc.s[j]; {
		case c == '"':
			sc.i = j + 1
			return sc.s[start:j], true
		case c < ' ':
			return nil, false
		case c == '\\':
			if j++; j == len(sc.s) || strings.IndexByte(`"\\/bfnrtu`, sc.s[j]) < 0 {
				return nil, false
			}
			if sc.s[j] == 'u' {
				if j+4 >= len(sc.s) || !isHex(sc.s[j+1:j+5]) {
					return nil, false
				}
				j += 4
			}
		}
	}
	return nil, false
}

func isHex(s []byte) bool {
	for i := range len(s) {
		if c := s[i] | 0x20; !('0' <= s[i] && s[i] <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// skip passes over the value of a key left out: a string, a boolean or
// null; false for anything else.
func (sc *scanner) skip() bool {
	sc.ws()
	if sc.i < len(sc.s) && sc.s[sc.i] == '"' {
		_, ok := sc.raw()
		return ok
	}
	var b bool
	return sc.boolean(&b)
}

// consume passes over c, after white space, if it comes next.
func (sc *scanner) consume(c byte) bool {
	sc.ws()
	if sc.i < len(sc.s) && sc.s[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

func (sc *scanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// unescape decodes a string's escapes but \u, which it leaves to
// encoding/json (surrogate pairs, invalid ones).
func unescape(raw []byte) (string, bool) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		switch raw[i] {
		case '"', '\\', '/':
			b.WriteByte(raw[i])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default:
			return "", false
		}
	}
	return b.String(), true
}
