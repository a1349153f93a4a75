package filter

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Result is the outcome of evaluating a filter: RFC 4511 filters are
// three-valued, and only True selects an entry.
type Result int8

// The three filter outcomes. Undefined arises when an assertion cannot be
// decided (invalid assertion value, unknown matching rule, an inapplicable
// rule); it propagates through Not, And and Or as RFC 4511 prescribes.
const (
	False Result = iota
	True
	Undefined
)

// String returns the RFC 4511 name of the result, for logs and test output.
func (r Result) String() string {
	switch r {
	case False:
		return "FALSE"
	case True:
		return "TRUE"
	}
	return "UNDEFINED"
}

func boolResult(b bool) Result {
	if b {
		return True
	}
	return False
}

// or3 is RFC 4511 OR of two results.
func or3(a, b Result) Result {
	switch {
	case a == True || b == True:
		return True
	case a == Undefined || b == Undefined:
		return Undefined
	}
	return False
}

// Entry is what a filter is evaluated against.
type Entry interface {
	// Values returns the values of the attribute named name, or nil if the
	// entry has none. The filter always passes the canonical name: lower
	// case, aliases such as "2.5.4.3" or "commonName" resolved ("cn"), and
	// options kept ("cn;lang-de"), so implementations can key a map by it.
	Values(name string) []string
}

// DNEntry is implemented by entries that know their distinguished name, so
// that extensible matches with :dn: can also test the attribute values of
// the entry's RDNs. Without it, :dn: is ignored.
type DNEntry interface {
	DN() string
}

// AttributeLister is implemented by entries that can list their attribute
// names, which an extensible match naming no attribute, such as
// "(:caseExactMatch:=x)", needs. Without it such a match is Undefined
// (unless :dn: makes it TRUE).
type AttributeLister interface {
	AttributeNames() []string
}

// ChainResolver is implemented by entries whose store can answer
// LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941), which needs other
// entries than the one being evaluated: match reports whether the entry
// reaches dn by following attr (canonical name, e.g. "memberof")
// transitively. dn is the assertion value as the client wrote it, known to
// parse as a DN; compare it as a DN, not as a string. supported=false makes
// the assertion Undefined, as it is for entries that do not implement
// ChainResolver.
type ChainResolver interface {
	InChain(attr, dn string) (match, supported bool)
}

// Match reports whether the filter is TRUE for e; FALSE and Undefined
// entries are not returned by a search.
func (f *Filter) Match(e Entry) bool { return f.m.eval(e) == True }

// Eval evaluates the filter for e with RFC 4511 three-valued logic.
func (f *Filter) Eval(e Entry) Result { return f.m.eval(e) }

type matcher interface {
	eval(e Entry) Result
}

// valueTest decides one attribute value for an extensible match.
type valueTest interface {
	test(v string) Result
}

// testValues is TRUE if some value passes t, else Undefined if some value
// could not be decided, else FALSE (including when there are no values).
func testValues(vals []string, t valueTest) Result {
	res := False
	for _, v := range vals {
		switch t.test(v) {
		case True:
			return True
		case Undefined:
			res = Undefined
		}
	}
	return res
}

func compile(n Node, schema Schema) matcher {
	switch n := n.(type) {
	case And:
		return andM(compileAll(n.Children, schema))
	case Or:
		return orM(compileAll(n.Children, schema))
	case Not:
		return notM{compile(n.Child, schema)}
	case Equality:
		return compileEquality(n.Attr, n.Value, schema)
	case Approx:
		return compileEquality(n.Attr, n.Value, schema)
	case GreaterOrEqual:
		return compileOrdering(n.Attr, n.Value, true, schema)
	case LessOrEqual:
		return compileOrdering(n.Attr, n.Value, false, schema)
	case Present:
		full, _ := canonAttr(n.Attr)
		if full == "objectclass" {
			// Every entry has an object class, whether or not the cache
			// keeps the attribute, and slapd answers accordingly.
			return constM(True)
		}
		return presentM(full)
	case Substrings:
		return compileSubstrings(n, schema)
	case Extensible:
		return compileExtensible(n, schema)
	}
	return constM(Undefined)
}

func compileAll(nodes []Node, schema Schema) []matcher {
	ms := make([]matcher, len(nodes))
	for i, n := range nodes {
		ms[i] = compile(n, schema)
	}
	return ms
}

type constM Result

func (m constM) eval(Entry) Result { return Result(m) }

type andM []matcher

func (m andM) eval(e Entry) Result {
	res := True
	for _, c := range m {
		switch c.eval(e) {
		case False:
			return False
		case Undefined:
			res = Undefined
		}
	}
	return res
}

type orM []matcher

func (m orM) eval(e Entry) Result {
	res := False
	for _, c := range m {
		switch c.eval(e) {
		case True:
			return True
		case Undefined:
			res = Undefined
		}
	}
	return res
}

type notM struct{ m matcher }

func (m notM) eval(e Entry) Result {
	switch r := m.m.eval(e); r {
	case True:
		return False
	case False:
		return True
	default:
		return r
	}
}

type presentM string

func (m presentM) eval(e Entry) Result { return boolResult(len(e.Values(string(m))) > 0) }

func compileEquality(attr, value string, schema Schema) matcher {
	full, base := canonAttr(attr)
	if m, ok := compileSchemaEquality(full, base, value, schema); ok {
		return m
	}
	syn := syntaxOf(schema, base)
	a := newAssertion(schema, syn, value)
	switch {
	case !a.valid:
		return constM(Undefined)
	case syn == CaseIgnore || syn == CaseExact:
		return &stringEqM{attr: full, norm: a.norm, fold: syn == CaseIgnore}
	}
	return &testM{attr: full, t: &a}
}

// stringEqM is equality on CaseIgnore and CaseExact attributes, split out
// because it is by far the most common assertion and must not allocate.
type stringEqM struct {
	attr string
	norm string
	fold bool
}

func (m *stringEqM) eval(e Entry) Result {
	for _, v := range e.Values(m.attr) {
		if cmpNorm(v, m.norm, m.fold) == 0 {
			return True
		}
	}
	return False
}

// testM is TRUE when some value of attr passes t.
type testM struct {
	attr string
	t    valueTest
}

func (m *testM) eval(e Entry) Result { return testValues(e.Values(m.attr), m.t) }

func compileOrdering(attr, value string, ge bool, schema Schema) matcher {
	full, base := canonAttr(attr)
	syn := syntaxOf(schema, base)
	a := newAssertion(schema, syn, value)
	if !a.valid || syn == DN {
		return constM(Undefined)
	}
	return &orderingM{attr: full, ge: ge, a: a}
}

type orderingM struct {
	attr string
	ge   bool
	a    assertion
}

func (m *orderingM) eval(e Entry) Result {
	res := False
	for _, v := range e.Values(m.attr) {
		c, ok := m.a.compare(v)
		switch {
		case !ok:
			res = Undefined
		case m.ge && c >= 0, !m.ge && c <= 0:
			return True
		}
	}
	return res
}

func compileSubstrings(n Substrings, schema Schema) matcher {
	full, base := canonAttr(n.Attr)
	m := &substringsM{attr: full}
	switch syntaxOf(schema, base) {
	case DN, Integer:
		// slapd has no substring rule for these syntaxes.
		return constM(Undefined)
	case Octet:
		m.raw = true
	case CaseExact:
	default:
		m.fold = true
	}
	part := func(s string, u usage) ([]byte, bool) {
		if m.raw {
			return []byte(s), true
		}
		if !utf8.ValidString(s) {
			return nil, false
		}
		return appendNorm(nil, s, m.fold, u), true
	}
	var ok bool
	if m.initial, ok = part(n.Initial, useInitial); !ok {
		return constM(Undefined)
	}
	if m.final, ok = part(n.Final, useFinal); !ok {
		return constM(Undefined)
	}
	for _, s := range n.Any {
		p, ok := part(s, useAny)
		if !ok {
			return constM(Undefined)
		}
		if len(p) > 0 {
			m.any = append(m.any, p)
		}
	}
	return m
}

type substringsM struct {
	attr           string
	raw, fold      bool
	initial, final []byte
	any            [][]byte
}

func (m *substringsM) eval(e Entry) Result {
	// Values up to this size are normalised on the stack; longer ones cost
	// an allocation.
	var buf [256]byte
	for _, v := range e.Values(m.attr) {
		var nv []byte
		if m.raw {
			nv = append(buf[:0], v...)
		} else {
			nv = appendNorm(buf[:0], v, m.fold, useEquality)
		}
		if m.matches(nv) {
			return True
		}
	}
	return False
}

// matches places initial at the start, final at the end and each any part
// leftmost in order between them, without overlaps, as slapd does.
func (m *substringsM) matches(v []byte) bool {
	if !bytes.HasPrefix(v, m.initial) {
		return false
	}
	v = v[len(m.initial):]
	for _, p := range m.any {
		i := bytes.Index(v, p)
		if i < 0 {
			return false
		}
		v = v[i+len(p):]
	}
	return bytes.HasSuffix(v, m.final)
}

// rule is a matching rule an extensible match can name.
type rule uint8

const (
	// ruleNone means no rule was given: the attribute's own equality.
	ruleNone rule = iota
	ruleCaseIgnore
	ruleCaseExact
	ruleDN
	ruleBitAnd
	ruleBitOr
	ruleInChain
	ruleUnknown
)

var rules = map[string]rule{
	"2.5.13.2":                ruleCaseIgnore,
	"caseignorematch":         ruleCaseIgnore,
	"2.5.13.5":                ruleCaseExact,
	"caseexactmatch":          ruleCaseExact,
	"2.5.13.1":                ruleDN,
	"distinguishednamematch":  ruleDN,
	"1.2.840.113556.1.4.803":  ruleBitAnd,
	"integerbitandmatch":      ruleBitAnd,
	"1.2.840.113556.1.4.804":  ruleBitOr,
	"integerbitormatch":       ruleBitOr,
	"1.2.840.113556.1.4.1941": ruleInChain,
}

func lookupRule(name string) rule {
	if name == "" {
		return ruleNone
	}
	if r, ok := rules[strings.ToLower(name)]; ok {
		return r
	}
	return ruleUnknown
}

// applies reports whether a rule can compare values of a syntax; slapd makes
// an extensible match with an inapplicable rule Undefined.
func (r rule) applies(syn Syntax) bool {
	switch r {
	case ruleNone:
		return true
	case ruleCaseIgnore, ruleCaseExact:
		return syn == CaseIgnore || syn == CaseExact
	case ruleDN:
		return syn == DN
	case ruleBitAnd, ruleBitOr:
		return syn == Integer
	}
	return false
}

// newTest prepares the value test of rule r, for an attribute of syntax syn
// when r is ruleNone; ok is false if value is invalid for the rule.
func newTest(schema Schema, r rule, syn Syntax, value string) (t valueTest, ok bool) {
	switch r {
	case ruleBitAnd, ruleBitOr:
		mask, ok := parseInt64(value)
		return bitTest{mask: mask, and: r == ruleBitAnd}, ok
	case ruleCaseIgnore:
		syn = CaseIgnore
	case ruleCaseExact:
		syn = CaseExact
	case ruleDN:
		syn = DN
	}
	a := newAssertion(schema, syn, value)
	return &a, a.valid
}

// parseInt64 accepts Integer syntax within the range of the C long slapd
// uses for the bitwise rules; beyond it slapd reports an error (Undefined).
func parseInt64(s string) (int64, bool) {
	if !validInt(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// bitTest implements the Active Directory bitwise rules: AND matches when
// all bits of mask are set, OR when any is. Negative values are two's
// complement, so groupType -2147483646 has bit 2147483648 set.
type bitTest struct {
	mask int64
	and  bool
}

func (t bitTest) test(v string) Result {
	n, ok := parseInt64(v)
	switch {
	case !ok:
		return Undefined
	case t.and:
		return boolResult(n&t.mask == t.mask)
	}
	return boolResult(n&t.mask != 0)
}

func compileExtensible(n Extensible, schema Schema) matcher {
	m := &extensibleM{rule: lookupRule(n.Rule), dnAttrs: n.DNAttributes, schema: schema}
	var syn Syntax
	if n.Attr != "" {
		m.attr, m.base = canonAttr(n.Attr)
		syn = syntaxOf(schema, m.base)
	}
	if m.attr != "" && m.rule == ruleNone && !m.dnAttrs {
		if sm, ok := compileSchemaEquality(m.attr, m.base, n.Value, schema); ok {
			return sm
		}
	}
	switch {
	case m.rule == ruleUnknown:
		return constM(Undefined)
	case m.rule == ruleInChain:
		if _, err := parseDN(n.Value); err != nil || m.attr == "" {
			return constM(Undefined)
		}
		return &chainM{attr: m.attr, dn: n.Value}
	case m.attr != "" && !m.rule.applies(syn):
		return constM(Undefined)
	}
	t, ok := newTest(schema, m.rule, syn, n.Value)
	if !ok {
		return constM(Undefined)
	}
	m.t = t
	return m
}

type extensibleM struct {
	attr, base string // empty when the assertion names no attribute
	rule       rule
	dnAttrs    bool
	schema     Schema
	t          valueTest
}

func (m *extensibleM) eval(e Entry) Result {
	var res Result
	switch l, ok := e.(AttributeLister); {
	case m.attr != "":
		res = testValues(e.Values(m.attr), m.t)
	case ok:
		for _, name := range l.AttributeNames() {
			full, base := canonAttr(name)
			if m.rule.applies(syntaxOf(m.schema, base)) {
				if res = or3(res, testValues(e.Values(full), m.t)); res == True {
					return True
				}
			}
		}
	default:
		res = Undefined
	}
	if d, ok := e.(DNEntry); ok && m.dnAttrs && res != True {
		res = or3(res, m.evalDN(d.DN()))
	}
	return res
}

// evalDN applies the assertion to the attribute values in the RDNs of dn.
func (m *extensibleM) evalDN(dn string) Result {
	d, err := parseDN(dn)
	if err != nil {
		return Undefined
	}
	res := False
	for _, rdn := range d.RDNs {
		for _, ava := range rdn.Attributes {
			if m.attr != "" {
				if !sameType(ava.Type, m.base) {
					continue
				}
			} else if _, base := canonAttr(ava.Type); !m.rule.applies(syntaxOf(m.schema, base)) {
				continue
			}
			if res = or3(res, m.t.test(ava.Value)); res == True {
				return True
			}
		}
	}
	return res
}

type chainM struct{ attr, dn string }

func (m *chainM) eval(e Entry) Result {
	c, ok := e.(ChainResolver)
	if !ok {
		return Undefined
	}
	match, supported := c.InChain(m.attr, m.dn)
	if !supported {
		return Undefined
	}
	return boolResult(match)
}
