package filter

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// Syntax selects how values of an attribute are compared; it stands in for
// the attribute type's matching rules in a real schema.
type Syntax int

const (
	// CaseIgnore compares strings after Unicode simple case folding and
	// slapd's insignificant-space handling (caseIgnoreMatch); unlike slapd it
	// applies no NFKC normalisation, so composed and decomposed accents
	// differ. It is the default, and what any Syntax value not listed here
	// means.
	CaseIgnore Syntax = iota
	// CaseExact is CaseIgnore without case folding (caseExactMatch).
	CaseExact
	// DN compares distinguished names RDN by RDN, each attribute value with
	// its own type's syntax (distinguishedNameMatch). DN values have no
	// ordering or substring matching: those assertions are Undefined.
	DN
	// Integer compares decimal integers of any size numerically
	// (integerMatch, integerOrderingMatch); no substring matching.
	Integer
	// Octet compares raw bytes (octetStringMatch and its ordering).
	Octet
)

// Schema tells which Syntax an attribute type has. It is called with the
// canonical attribute type: lower-case, without options, with the OID and
// alternative names in the alias table resolved (so "cn", never "2.5.4.3"
// or "commonName"). It must be safe for concurrent use: extensible matches
// that name no attribute call it while entries are evaluated.
type Schema func(attr string) Syntax

var defaultSyntaxes = map[string]Syntax{
	"member":             DN,
	"uniquemember":       DN,
	"memberof":           DN,
	"manager":            DN,
	"owner":              DN,
	"secretary":          DN,
	"seealso":            DN,
	"distinguishedname":  DN,
	"entrydn":            DN,
	"dominoaccessgroups": DN,
	"objectcategory":     DN,

	"uidnumber":                          Integer,
	"gidnumber":                          Integer,
	"usnchanged":                         Integer,
	"usncreated":                         Integer,
	"useraccountcontrol":                 Integer,
	"grouptype":                          Integer,
	"badpwdcount":                        Integer,
	"pwdlastset":                         Integer,
	"accountexpires":                     Integer,
	"lastlogontimestamp":                 Integer,
	"msds-user-account-control-computed": Integer,
	"samaccounttype":                     Integer,
	"primarygroupid":                     Integer,

	"objectguid":      Octet,
	"objectsid":       Octet,
	"jpegphoto":       Octet,
	"usercertificate": Octet,
}

// DefaultSchema knows the DN, integer and binary attributes of the common
// POSIX, inetOrgPerson and Active Directory schemas; everything else,
// entryUUID and employeeNumber included, is CaseIgnore. It accepts names in
// any case and alias.
func DefaultSchema(attr string) Syntax {
	_, base := canonAttr(attr)
	return defaultSyntaxes[base]
}

// aliases maps the OIDs and alternative names that clients use for common
// attribute types (RFC 4519, RFC 2798, RFC 2307, AD) to the names entries
// are stored under.
var aliases = map[string]string{
	"2.5.4.3":                    "cn",
	"commonname":                 "cn",
	"2.5.4.0":                    "objectclass",
	"0.9.2342.19200300.100.1.3":  "mail",
	"rfc822mailbox":              "mail",
	"0.9.2342.19200300.100.1.1":  "uid",
	"userid":                     "uid",
	"2.5.4.4":                    "sn",
	"surname":                    "sn",
	"2.5.4.42":                   "givenname",
	"gn":                         "givenname",
	"2.5.4.11":                   "ou",
	"organizationalunitname":     "ou",
	"2.5.4.10":                   "o",
	"organizationname":           "o",
	"0.9.2342.19200300.100.1.25": "dc",
	"domaincomponent":            "dc",
	"2.5.4.7":                    "l",
	"localityname":               "l",
	"2.5.4.31":                   "member",
	"2.5.4.50":                   "uniquemember",
	"2.5.4.12":                   "title",
	"2.5.4.13":                   "description",
	"2.5.4.20":                   "telephonenumber",
	"2.16.840.1.113730.3.1.241":  "displayname",
	"2.16.840.1.113730.3.1.3":    "employeenumber",
	"1.3.6.1.1.1.1.0":            "uidnumber",
	"1.3.6.1.1.1.1.1":            "gidnumber",
	"1.2.840.113556.1.2.102":     "memberof",
	"1.3.6.1.1.16.4":             "entryuuid",
	"0.9.2342.19200300.100.1.10": "manager",
}

// spellings maps a canonical type to its aliases.
var spellings = func() map[string][]string {
	m := map[string][]string{}
	for alias, name := range aliases {
		m[name] = append(m[name], alias)
	}
	return m
}()

// canonAttr returns the lower-case, alias-resolved form of an attribute
// description with its options (full) and without them (base).
func canonAttr(desc string) (full, base string) {
	lower := strings.ToLower(desc)
	base, opts, _ := strings.Cut(lower, ";")
	if a, ok := aliases[base]; ok {
		base = a
	}
	if opts == "" {
		return base, base
	}
	return base + ";" + opts, base
}

// BaseType returns the canonical type of an attribute description: lower
// case, aliases resolved, options dropped ("commonName;lang-en" -> "cn").
func BaseType(desc string) string {
	_, base := canonAttr(desc)
	return base
}

// Spellings returns the names that denote the canonical type base: base
// itself and its aliases ("cn": "cn", "commonname").
func Spellings(base string) []string {
	return append([]string{base}, spellings[base]...)
}

// sameType reports whether an attribute type as written in a DN names the
// canonical type base, without allocating.
func sameType(t, base string) bool {
	if strings.EqualFold(t, base) {
		return true
	}
	for _, alias := range spellings[base] {
		if strings.EqualFold(t, alias) {
			return true
		}
	}
	return false
}

func syntaxOf(schema Schema, base string) Syntax {
	switch s := schema(base); s {
	case CaseExact, DN, Integer, Octet:
		return s
	}
	return CaseIgnore
}

// usage says which part of an assertion a string is, because slapd keeps
// the spaces at the edges of substring parts that touch the wildcards.
type usage uint8

const (
	useEquality usage = iota
	useInitial
	useAny
	useFinal
)

// appendNorm appends the normalised form of s, exactly as slapd's
// UTF8StringNormalize does after case folding: runs of spaces collapse to
// one, leading spaces go unless s is an any or final part, trailing spaces
// go unless it is an initial or any part, and a value of only spaces
// becomes one space. Bytes that are not UTF-8 are copied unchanged, so they
// can never equal a (valid) assertion.
func appendNorm(dst []byte, s string, fold bool, u usage) []byte {
	start := len(dst)
	wasSpace := u == useEquality || u == useInitial
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' {
			if !wasSpace {
				dst = append(dst, ' ')
			}
			wasSpace = true
			i++
			continue
		}
		wasSpace = false
		if c < utf8.RuneSelf {
			if fold && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, c)
			i++
			continue
		}
		if fold {
			r = foldRune(r)
		}
		dst = utf8.AppendRune(dst, r)
		i += n
	}
	if len(dst) > start {
		if wasSpace && (u == useEquality || u == useFinal) {
			dst = dst[:len(dst)-1]
		}
	} else if s != "" {
		dst = append(dst, ' ')
	}
	return dst
}

// foldRune maps every case variant of r (including forms like the Kelvin
// sign or long s) to one lower-case rune.
func foldRune(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }

// cmpNorm compares the equality-normalised form of the attribute value v
// with the already normalised assertion a, byte by byte as
// bytes.Compare(appendNorm(nil, v, fold, useEquality), a) would, but
// without allocating: this is the per-entry hot path.
func cmpNorm(v, a string, fold bool) int {
	i := 0
	for i < len(v) && v[i] == ' ' {
		i++
	}
	if i == len(v) && v != "" {
		return strings.Compare(" ", a)
	}
	j := 0
	var enc [utf8.UTFMax]byte
	for i < len(v) {
		c := v[i]
		switch {
		case c == ' ':
			k := i + 1
			for k < len(v) && v[k] == ' ' {
				k++
			}
			if k == len(v) {
				i = k
				continue
			}
			i = k
		case c < utf8.RuneSelf:
			if fold && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			i++
		default:
			r, n := utf8.DecodeRuneInString(v[i:])
			i += n
			if r == utf8.RuneError && n == 1 {
				break
			}
			if fold {
				r = foldRune(r)
			}
			m := utf8.EncodeRune(enc[:], r)
			for _, b := range enc[:m] {
				if j >= len(a) {
					return 1
				}
				if b != a[j] {
					return cmpByte(b, a[j])
				}
				j++
			}
			continue
		}
		if j >= len(a) {
			return 1
		}
		if c != a[j] {
			return cmpByte(c, a[j])
		}
		j++
	}
	if j < len(a) {
		return -1
	}
	return 0
}

func cmpByte(a, b byte) int {
	if a < b {
		return -1
	}
	return 1
}

// validInt reports whether s is in RFC 4517 Integer syntax: no sign other
// than '-', no leading zeros, no "-0". slapd rejects anything else, making
// the assertion Undefined.
func validInt(s string) bool {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || digits[0] == '0' && (len(digits) > 1 || len(s) > 1) {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// cmpInt compares two valid integers of any size numerically.
func cmpInt(a, b string) int {
	an, bn := a[0] == '-', b[0] == '-'
	if an != bn {
		if an {
			return -1
		}
		return 1
	}
	c := len(a) - len(b)
	if c == 0 {
		c = strings.Compare(a, b)
	}
	switch {
	case c < 0 && !an, c > 0 && an:
		return -1
	case c == 0:
		return 0
	}
	return 1
}

// parseDN parses a DN, first rewriting the "\/" escape that Active
// Directory tools emit but go-ldap rejects.
func parseDN(s string) (*ldap.DN, error) {
	if strings.Contains(s, `\/`) {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				if s[i] == '/' {
					b.WriteString(`\2F`)
				} else {
					b.WriteByte('\\')
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		s = b.String()
	}
	return ldap.ParseDN(s)
}

// assertion is an assertion value prepared at parse time for comparison
// with the values of one syntax.
type assertion struct {
	syn   Syntax
	valid bool
	// norm is the normalised value for CaseIgnore and CaseExact, the value
	// as written for the other syntaxes.
	norm string
	// rdns is the parsed value for DN, each attribute value prepared with
	// the syntax of its type.
	rdns [][]avaAssertion
}

type avaAssertion struct {
	base string
	val  assertion
}

func newAssertion(schema Schema, syn Syntax, value string) assertion {
	a := assertion{syn: syn, norm: value}
	switch syn {
	case CaseIgnore, CaseExact:
		// slapd's directoryString syntax has no empty value.
		a.valid = value != "" && utf8.ValidString(value)
		if a.valid {
			// Most values are normalised already (the cache indexes
			// lower-cased addresses and IDs): they keep value's memory
			// rather than allocate a copy equal to it.
			var buf [64]byte
			if n := appendNorm(buf[:0], value, syn == CaseIgnore, useEquality); string(n) != value {
				a.norm = string(n)
			}
		}
	case Integer:
		a.valid = validInt(value)
	case Octet:
		a.valid = true
	case DN:
		d, err := parseDN(value)
		if err != nil {
			return a
		}
		a.valid = true
		for _, rdn := range d.RDNs {
			avas := make([]avaAssertion, len(rdn.Attributes))
			for i, ava := range rdn.Attributes {
				_, base := canonAttr(ava.Type)
				s := syntaxOf(schema, base)
				if s == DN {
					// A DN inside an RDN value is compared as text rather
					// than parsed again.
					s = CaseIgnore
				}
				avas[i] = avaAssertion{base: base, val: newAssertion(schema, s, ava.Value)}
			}
			a.rdns = append(a.rdns, avas)
		}
	}
	return a
}

// test reports whether the attribute value v equals the assertion; it makes
// assertion a valueTest for extensible matches.
func (a *assertion) test(v string) Result {
	if !a.valid {
		return Undefined
	}
	switch a.syn {
	case CaseIgnore, CaseExact:
		return boolResult(cmpNorm(v, a.norm, a.syn == CaseIgnore) == 0)
	case Integer:
		if !validInt(v) {
			return Undefined
		}
		return boolResult(v == a.norm)
	case DN:
		if v == a.norm {
			return True
		}
		if eq, ok := a.dnEqualPlain(v); ok {
			return boolResult(eq)
		}
		d, err := parseDN(v)
		if err != nil {
			return Undefined
		}
		return boolResult(a.dnEqual(d))
	}
	return boolResult(v == a.norm)
}

// compare orders the attribute value v against the assertion for >= and <=;
// ok is false when v is not a valid value of the syntax. DN assertions are
// never ordered: compile turns them into Undefined.
func (a *assertion) compare(v string) (c int, ok bool) {
	switch a.syn {
	case CaseIgnore, CaseExact:
		return cmpNorm(v, a.norm, a.syn == CaseIgnore), true
	case Integer:
		if !validInt(v) {
			return 0, false
		}
		return cmpInt(v, a.norm), true
	}
	return strings.Compare(v, a.norm), true
}

func (a *assertion) dnEqual(d *ldap.DN) bool {
	if len(d.RDNs) != len(a.rdns) {
		return false
	}
	for i, rdn := range d.RDNs {
		want := a.rdns[i]
		if len(rdn.Attributes) != len(want) {
			return false
		}
		if len(want) == 1 {
			if !avaEqual(rdn.Attributes[0], &want[0]) {
				return false
			}
			continue
		}
		// A multi-valued RDN is a set: match each value at most once. Greedy
		// matching is exact because equality is an equivalence.
		used := make([]bool, len(want))
		for _, ava := range rdn.Attributes {
			k := -1
			for j := range want {
				if !used[j] && avaEqual(ava, &want[j]) {
					k = j
					break
				}
			}
			if k < 0 {
				return false
			}
			used[k] = true
		}
	}
	return true
}

// dnEqualPlain compares v without building a parse tree when it is written
// the way directories almost always write DNs: ASCII, no escapes, quotes or
// multi-valued RDNs. For such strings ldap.ParseDN only splits at ',' and
// the first '=' and trims spaces, which is done here in place; the hot case
// of testing (member=<dn>) against a large group then does not allocate.
// ok is false when v needs the real parser.
func (a *assertion) dnEqualPlain(v string) (eq, ok bool) {
	if strings.Trim(v, " ") == "" {
		return false, false
	}
	rdns := 1
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == ',':
			rdns++
		case c == '\\' || c == '"' || c == '+' || c == ';' || c == '#' || c == '<' || c == '>' || c == 0 || c >= utf8.RuneSelf:
			return false, false
		}
	}
	// Check the whole structure before comparing: ParseDN rejects a DN with
	// an RDN lacking a type, which must stay Undefined rather than FALSE.
	for rdn := range strings.SplitSeq(v, ",") {
		typ, _, found := strings.Cut(rdn, "=")
		if !found || strings.Trim(typ, " ") == "" {
			return false, false
		}
	}
	if rdns != len(a.rdns) {
		return false, true
	}
	i := 0
	for rdn := range strings.SplitSeq(v, ",") {
		want := a.rdns[i]
		i++
		typ, val, _ := strings.Cut(rdn, "=")
		if len(want) != 1 || !sameType(strings.Trim(typ, " "), want[0].base) ||
			want[0].val.test(strings.Trim(val, " ")) != True {
			return false, true
		}
	}
	return true, true
}

func avaEqual(ava *ldap.AttributeTypeAndValue, want *avaAssertion) bool {
	return sameType(ava.Type, want.base) && want.val.test(ava.Value) == True
}

// EqualityKey returns the form of value that equality matching on attr
// compares, so that an index keyed by EqualityKey of the stored values finds
// exactly the entries an equality assertion matches: for valid values,
// EqualityKey(s, attr, v) == EqualityKey(s, attr, w) if and only if (attr=w)
// is TRUE for an entry whose attr has the value v. ok is false for values
// that are invalid in the attribute's syntax; such values never match. A nil
// schema means DefaultSchema. Two assertions match more than equal keys:
// (objectClass=X) also matches the subclasses of X, and objectCategory
// written as a class name matches its category DN; Hints accounts for both.
func EqualityKey(schema Schema, attr, value string) (key string, ok bool) {
	if schema == nil {
		schema = DefaultSchema
	}
	_, base := canonAttr(attr)
	return equalityKey(schema, syntaxOf(schema, base), value)
}

func equalityKey(schema Schema, syn Syntax, value string) (string, bool) {
	a := newAssertion(schema, syn, value)
	if !a.valid {
		return "", false
	}
	if syn != DN {
		return a.norm, true
	}
	var b strings.Builder
	for i, rdn := range a.rdns {
		if i > 0 {
			b.WriteByte(',')
		}
		keys := make([]string, len(rdn))
		for j, ava := range rdn {
			if !ava.val.valid {
				return "", false
			}
			// AttributeTypeAndValue.String escapes the value as RFC 4514
			// requires, which keeps the '+' and ',' separators unambiguous.
			keys[j] = (&ldap.AttributeTypeAndValue{Type: ava.base, Value: ava.val.norm}).String()
		}
		slices.Sort(keys)
		b.WriteString(strings.Join(keys, "+"))
	}
	return b.String(), true
}
