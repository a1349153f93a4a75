// Package filter parses LDAP search filters (RFC 4515) and evaluates them
// against cached entries with the three-valued logic of RFC 4511, matching
// the way OpenLDAP slapd compares values so that the gateway answers the
// same searches the same way.
//
// A filter is parsed once per search with Parse or ParseWithSchema; the
// resulting *Filter is immutable and safe for concurrent use, and its Match
// method is meant for the per-entry hot path.
package filter

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// Node is one component of a parsed filter. The set of node types is closed
// (And, Or, Not, Equality, Substrings, GreaterOrEqual, LessOrEqual, Present,
// Approx, Extensible) so that a type switch over them is exhaustive.
type Node interface{ node() }

// And is TRUE when no child is FALSE or Undefined; an empty And is TRUE (RFC 4526).
type And struct{ Children []Node }

// Or is TRUE when some child is TRUE; an empty Or is FALSE (RFC 4526).
type Or struct{ Children []Node }

// Not negates its child; Undefined stays Undefined.
type Not struct{ Child Node }

// Equality is an attr=value assertion. Attr is spelled as the client wrote it
// and Value holds the unescaped assertion value.
type Equality struct{ Attr, Value string }

// Substrings is an attr=initial*any*...*final assertion; empty Initial or
// Final means that part is absent. At least one part is non-empty.
type Substrings struct {
	Attr    string
	Initial string
	Any     []string
	Final   string
}

// GreaterOrEqual is an attr>=value assertion.
type GreaterOrEqual struct{ Attr, Value string }

// LessOrEqual is an attr<=value assertion.
type LessOrEqual struct{ Attr, Value string }

// Present is an attr=* assertion.
type Present struct{ Attr string }

// Approx is an attr~=value assertion; it is evaluated as equality, which is
// what slapd does for attribute types without an approximate matching rule.
type Approx struct{ Attr, Value string }

// Extensible is an attr:dn:rule:=value assertion. Attr or Rule may be empty,
// but not both. Rule is spelled as written (an OID or a descriptor).
type Extensible struct {
	Attr, Rule, Value string
	DNAttributes      bool
}

func (And) node()            {}
func (Or) node()             {}
func (Not) node()            {}
func (Equality) node()       {}
func (Substrings) node()     {}
func (GreaterOrEqual) node() {}
func (LessOrEqual) node()    {}
func (Present) node()        {}
func (Approx) node()         {}
func (Extensible) node()     {}

// Filter is a parsed, ready-to-evaluate search filter. Root is the syntax
// tree for inspection (for example by a query planner); it must not be
// modified, because evaluation uses a form compiled from it at parse time.
// A Filter must be obtained from Parse or ParseWithSchema.
type Filter struct {
	Root Node

	schema Schema
	m      matcher
	attrs  []string
}

// Limits bounds the resources a hostile filter can consume while it is
// parsed. Zero or negative fields mean the defaults.
type Limits struct {
	// MaxLength is the longest accepted filter string in bytes (default 64 KiB).
	MaxLength int
	// MaxDepth is the deepest accepted nesting of components; a lone
	// assertion has depth 1 (default 64).
	MaxDepth int
	// MaxNodes is the largest accepted number of components, composite ones
	// included (default 4096).
	MaxNodes int
}

// Defaults for the zero Limits.
const (
	DefaultMaxLength = 64 << 10
	DefaultMaxDepth  = 64
	DefaultMaxNodes  = 4096
)

func (l Limits) resolved() Limits {
	if l.MaxLength <= 0 {
		l.MaxLength = DefaultMaxLength
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxNodes <= 0 {
		l.MaxNodes = DefaultMaxNodes
	}
	return l
}

// ErrLimit is wrapped by the *ParseError returned for filters that exceed
// Limits, so that a server can answer adminLimitExceeded rather than a
// protocol error: errors.Is(err, filter.ErrLimit).
var ErrLimit = errors.New("filter exceeds parse limits")

// ParseError is the only error type Parse returns; it says what is wrong
// with the filter string and, when known, where.
type ParseError struct {
	// Offset is the byte offset in the filter string where the problem was
	// found, or -1 when only the component is known.
	Offset int
	// Msg describes the problem.
	Msg string
	// Err is ErrLimit for limit violations, the go-ldap compiler error when
	// that is what rejected the filter, and nil otherwise.
	Err error
}

// Error formats the problem with its offset, when known.
func (e *ParseError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("invalid LDAP filter at offset %d: %s", e.Offset, e.Msg)
	}
	return "invalid LDAP filter: " + e.Msg
}

// Unwrap exposes ErrLimit or the go-ldap error to errors.Is and errors.As.
func (e *ParseError) Unwrap() error { return e.Err }

func errAt(off int, format string, args ...any) *ParseError {
	return &ParseError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// Parse parses an RFC 4515 filter string using DefaultSchema to decide how
// attribute values compare. Every error is a *ParseError.
func Parse(s string, lim Limits) (*Filter, error) {
	return ParseWithSchema(s, lim, nil)
}

// ParseWithSchema is Parse with the caller's attribute syntaxes; a nil
// schema means DefaultSchema. The schema is consulted only while parsing
// (and by Hints), never per entry, except for extensible matches that name
// no attribute.
func ParseWithSchema(s string, lim Limits, schema Schema) (*Filter, error) {
	if schema == nil {
		schema = DefaultSchema
	}
	root, err := parse(s, lim.resolved())
	if err != nil {
		return nil, err
	}
	return &Filter{
		Root:   root,
		schema: schema,
		m:      compile(root, schema),
		attrs:  attributes(root),
	}, nil
}

func parse(s string, lim Limits) (Node, *ParseError) {
	if s == "" {
		return nil, errAt(0, "empty filter")
	}
	if len(s) > lim.MaxLength {
		return nil, &ParseError{Offset: lim.MaxLength, Err: ErrLimit,
			Msg: fmt.Sprintf("filter is %d bytes long, the limit is %d", len(s), lim.MaxLength)}
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n == 1 {
				return nil, errAt(i, "invalid UTF-8; write non-UTF-8 bytes as \\XX escapes")
			}
		}
	}
	// ldap.CompileFilter recurses without bounds, accepts some malformed
	// structures (such as "((a=b))" and "(!a=b)") and reports no positions,
	// so the structure and the limits are checked here first.
	sc := scanner{s: s, lim: lim}
	if err := sc.filter(1); err != nil {
		return nil, err
	}
	if sc.pos != len(s) {
		return nil, errAt(sc.pos, "unexpected %q after the end of the filter", clip(s[sc.pos:]))
	}
	if n, _, ok := quick(s); ok {
		return n, nil
	}
	p, err := ldap.CompileFilter(s)
	if err != nil {
		msg := err.Error()
		var le *ldap.Error
		if errors.As(err, &le) && le.Err != nil {
			msg = le.Err.Error()
		}
		return nil, &ParseError{Offset: -1, Msg: strings.TrimPrefix(msg, "ldap: "), Err: err}
	}
	return convert(p)
}

// quick builds the tree of a filter the scanner accepted when it is made
// only of and, or, not, presence and equality with values that need no
// unescaping: what applications send almost always. Building it directly
// skips go-ldap's compilation to BER and the conversion back, a tenth of
// the work of a search. ok is false for anything else, which parse then
// compiles; FuzzQuick checks that both give the same tree.
func quick(s string) (n Node, end int, ok bool) {
	// s starts with '(' and its structure is valid (scanner).
	switch s[1] {
	case '&', '|':
		var children []Node
		pos := 2
		for s[pos] == '(' {
			c, e, ok := quick(s[pos:])
			if !ok {
				return nil, 0, false
			}
			children = append(children, c)
			pos += e
		}
		if len(children) == 0 {
			return nil, 0, false // "(&)": absolute true/false, left to the compiler
		}
		if s[1] == '&' {
			return And{Children: children}, pos + 1, true
		}
		return Or{Children: children}, pos + 1, true
	case '!':
		c, e, ok := quick(s[2:])
		if !ok {
			return nil, 0, false
		}
		return Not{Child: c}, 2 + e + 1, true
	}
	close := strings.IndexByte(s, ')')
	item := s[1:close]
	eq := strings.IndexAny(item, "=:<>~")
	if eq <= 0 || item[eq] != '=' {
		return nil, 0, false
	}
	attr, value := item[:eq], item[eq+1:]
	if checkAttr(attr) != nil || value == "" || strings.IndexByte(value, '\\') >= 0 {
		return nil, 0, false
	}
	if strings.IndexByte(value, '*') >= 0 {
		if value != "*" {
			return nil, 0, false
		}
		return Present{Attr: attr}, close + 1, true
	}
	return Equality{Attr: attr, Value: value}, close + 1, true
}

// clip shortens s for use in an error message.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// scanner checks the parenthesis structure of a filter string:
//
//	filter = "(" ( ("&" / "|") *filter / "!" filter / item ) ")"
//
// where an item contains '=' and neither '(' nor ')', and every '\' in it is
// followed by two hex digits. It also enforces MaxDepth and MaxNodes, in
// time linear in the length and without allocating.
type scanner struct {
	s     string
	pos   int
	nodes int
	lim   Limits
}

func (sc *scanner) filter(depth int) *ParseError {
	if depth > sc.lim.MaxDepth {
		return &ParseError{Offset: sc.pos, Err: ErrLimit,
			Msg: fmt.Sprintf("filter nests deeper than %d levels", sc.lim.MaxDepth)}
	}
	if sc.nodes++; sc.nodes > sc.lim.MaxNodes {
		return &ParseError{Offset: sc.pos, Err: ErrLimit,
			Msg: fmt.Sprintf("filter has more than %d components", sc.lim.MaxNodes)}
	}
	if sc.pos >= len(sc.s) {
		return errAt(sc.pos, "unexpected end of filter, expected '('")
	}
	if sc.s[sc.pos] != '(' {
		return errAt(sc.pos, "expected '(', found %q", clip(sc.s[sc.pos:]))
	}
	sc.pos++
	if sc.pos >= len(sc.s) {
		return errAt(sc.pos, "unexpected end of filter after '('")
	}
	switch sc.s[sc.pos] {
	case '&', '|':
		sc.pos++
		for sc.pos < len(sc.s) && sc.s[sc.pos] == '(' {
			if err := sc.filter(depth + 1); err != nil {
				return err
			}
		}
	case '!':
		sc.pos++
		if err := sc.filter(depth + 1); err != nil {
			return err
		}
	case '(':
		return errAt(sc.pos, "unexpected '(': a filter component cannot be wrapped in extra parentheses")
	case ')':
		return errAt(sc.pos, "empty filter component '()'")
	default:
		if err := sc.item(); err != nil {
			return err
		}
	}
	if sc.pos >= len(sc.s) {
		return errAt(sc.pos, "unexpected end of filter, missing ')'")
	}
	if sc.s[sc.pos] != ')' {
		return errAt(sc.pos, "expected ')', found %q", clip(sc.s[sc.pos:]))
	}
	sc.pos++
	return nil
}

// item advances to the ')' that ends an attribute assertion.
func (sc *scanner) item() *ParseError {
	start := sc.pos
	sawEq := false
	for ; sc.pos < len(sc.s); sc.pos++ {
		switch sc.s[sc.pos] {
		case ')':
			if !sawEq {
				return errAt(start, "missing '=' in %q", sc.s[start:sc.pos])
			}
			return nil
		case '(':
			return errAt(sc.pos, `unescaped '(' in an assertion; write it as \28`)
		case '=':
			sawEq = true
		case '\\':
			if sc.pos+2 >= len(sc.s) || !isHex(sc.s[sc.pos+1]) || !isHex(sc.s[sc.pos+2]) {
				return errAt(sc.pos, `invalid escape: '\' must be followed by two hex digits`)
			}
			sc.pos += 2
		}
	}
	return errAt(sc.pos, "unexpected end of filter, missing ')'")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// convert turns the go-ldap BER form into the syntax tree, validating what
// go-ldap leaves unchecked: attribute descriptions and matching rule names.
func convert(p *ber.Packet) (Node, *ParseError) {
	if p == nil {
		return nil, errAt(-1, "empty filter component")
	}
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr:
		children := make([]Node, 0, len(p.Children))
		for _, c := range p.Children {
			n, err := convert(c)
			if err != nil {
				return nil, err
			}
			children = append(children, n)
		}
		if p.Tag == ldap.FilterAnd {
			return And{Children: children}, nil
		}
		return Or{Children: children}, nil
	case ldap.FilterNot:
		if len(p.Children) != 1 {
			return nil, errAt(-1, "'!' needs exactly one filter")
		}
		c, err := convert(p.Children[0])
		if err != nil {
			return nil, err
		}
		return Not{Child: c}, nil
	case ldap.FilterEqualityMatch, ldap.FilterGreaterOrEqual, ldap.FilterLessOrEqual, ldap.FilterApproxMatch:
		if len(p.Children) != 2 {
			return nil, errAt(-1, "malformed attribute value assertion")
		}
		attr, value := str(p.Children[0]), str(p.Children[1])
		if err := checkAttr(attr); err != nil {
			return nil, err
		}
		switch p.Tag {
		case ldap.FilterEqualityMatch:
			return Equality{Attr: attr, Value: value}, nil
		case ldap.FilterGreaterOrEqual:
			return GreaterOrEqual{Attr: attr, Value: value}, nil
		case ldap.FilterLessOrEqual:
			return LessOrEqual{Attr: attr, Value: value}, nil
		}
		return Approx{Attr: attr, Value: value}, nil
	case ldap.FilterPresent:
		attr := str(p)
		if err := checkAttr(attr); err != nil {
			return nil, err
		}
		return Present{Attr: attr}, nil
	case ldap.FilterSubstrings:
		return convertSubstrings(p)
	case ldap.FilterExtensibleMatch:
		return convertExtensible(p)
	}
	return nil, errAt(-1, "unknown filter component type %d", p.Tag)
}

func convertSubstrings(p *ber.Packet) (Node, *ParseError) {
	if len(p.Children) != 2 {
		return nil, errAt(-1, "malformed substring assertion")
	}
	n := Substrings{Attr: str(p.Children[0])}
	if err := checkAttr(n.Attr); err != nil {
		return nil, err
	}
	parts := p.Children[1].Children
	// go-ldap drops the empty pieces of "a**b", so "(cn=**)" arrives with no
	// pieces at all; RFC 4511 requires at least one.
	if len(parts) == 0 {
		return nil, errAt(-1, "substring assertion on %q has no non-empty part", n.Attr)
	}
	for _, c := range parts {
		switch c.Tag {
		case ldap.FilterSubstringsInitial:
			n.Initial = str(c)
		case ldap.FilterSubstringsAny:
			n.Any = append(n.Any, str(c))
		case ldap.FilterSubstringsFinal:
			n.Final = str(c)
		}
	}
	return n, nil
}

func convertExtensible(p *ber.Packet) (Node, *ParseError) {
	var n Extensible
	for _, c := range p.Children {
		switch c.Tag {
		case ldap.MatchingRuleAssertionMatchingRule:
			n.Rule = str(c)
		case ldap.MatchingRuleAssertionType:
			n.Attr = str(c)
		case ldap.MatchingRuleAssertionMatchValue:
			n.Value = str(c)
		case ldap.MatchingRuleAssertionDNAttributes:
			n.DNAttributes, _ = c.Value.(bool)
		}
	}
	// RFC 4515 keywords are case-insensitive but go-ldap only recognises a
	// lower-case ":dn", so "(cn:DN:=x)" arrives as the rule "DN".
	if !n.DNAttributes {
		if strings.EqualFold(n.Rule, "dn") {
			n.Rule, n.DNAttributes = "", true
		} else if len(n.Rule) > 3 && strings.EqualFold(n.Rule[:3], "dn:") {
			n.Rule, n.DNAttributes = n.Rule[3:], true
		}
	}
	if n.Attr == "" && n.Rule == "" {
		return nil, errAt(-1, "extensible match needs an attribute or a matching rule")
	}
	if n.Attr != "" {
		if err := checkAttr(n.Attr); err != nil {
			return nil, err
		}
	}
	if n.Rule != "" && !isOID(n.Rule) {
		return nil, errAt(-1, "invalid matching rule %q", n.Rule)
	}
	return n, nil
}

func str(p *ber.Packet) string {
	if p == nil || p.Data == nil {
		return ""
	}
	return p.Data.String()
}

// checkAttr enforces RFC 4512 attributedescription = oid *( ";" option ),
// option = 1*keychar.
func checkAttr(attr string) *ParseError {
	typ, opts, more := strings.Cut(attr, ";")
	ok := isOID(typ)
	for ok && more {
		var opt string
		opt, opts, more = strings.Cut(opts, ";")
		ok = opt != "" && strings.IndexFunc(opt, func(r rune) bool { return !isKeychar(r) }) < 0
	}
	if !ok {
		return errAt(-1, "invalid attribute description %q", attr)
	}
	return nil
}

// isOID reports whether s is a descriptor (ALPHA *keychar) or a numeric OID
// (number 1*("." number), numbers without leading zeros).
func isOID(s string) bool {
	if s == "" {
		return false
	}
	if isAlpha(s[0]) {
		for i := 1; i < len(s); i++ {
			if !isKeychar(rune(s[i])) {
				return false
			}
		}
		return true
	}
	arcs := 0
	for arc := range strings.SplitSeq(s, ".") {
		if arc == "" || len(arc) > 1 && arc[0] == '0' {
			return false
		}
		for i := 0; i < len(arc); i++ {
			if arc[i] < '0' || arc[i] > '9' {
				return false
			}
		}
		arcs++
	}
	return arcs >= 2
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isKeychar(r rune) bool {
	return r < 0x80 && (isAlpha(byte(r)) || '0' <= r && r <= '9' || r == '-')
}
