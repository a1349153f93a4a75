// SPDX-License-Identifier: MIT

package gldap

// dirgate patch 14: this file is dirgate's; upstream gldap has no such file.

import (
	"errors"
	"fmt"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Filter CHOICE tags (RFC 4511 section 4.5.1).
const (
	filterAnd             = 0
	filterOr              = 1
	filterNot             = 2
	filterEqualityMatch   = 3
	filterSubstrings      = 4
	filterGreaterOrEqual  = 5
	filterLessOrEqual     = 6
	filterPresent         = 7
	filterApproxMatch     = 8
	filterExtensibleMatch = 9
)

// SubstringFilter and MatchingRuleAssertion component tags.
const (
	substringInitial = 0
	substringAny     = 1
	substringFinal   = 2

	ruleMatchingRule = 1
	ruleType         = 2
	ruleMatchValue   = 3
	ruleDNAttributes = 4
)

// errFilter marks a search filter whose encoding is not a valid RFC 4511
// Filter.
var errFilter = errors.New("invalid filter")

// DecodeFilter turns a BER-encoded Filter (RFC 4511 section 4.5.1) into its
// RFC 4515 string form, as SearchMessage.Filter carries it; it is exported
// so that a server can test its own filter parser on what reaches it.  A
// malformed filter is an error.  It replaces go-ldap's DecompileFilter, which
// panics on an extensibleMatch carrying dnAttributes (it asserts the
// context-tagged BOOLEAN's Value, which the BER decoder leaves nil for
// context-class tags), checks none of the structure, and writes attribute
// descriptions and matching rules unchecked into the string, where a ")" or
// "=" in one would turn it into a different filter.  Nesting is bounded by
// the BER decoder's depth limit.
func DecodeFilter(p *ber.Packet) (string, error) {
	var b strings.Builder
	if err := writeFilter(&b, p); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeFilter(b *strings.Builder, p *ber.Packet) error {
	if p == nil || p.ClassType != ber.ClassContext {
		return fmt.Errorf("%w: a filter item must be context-tagged", errFilter)
	}
	b.WriteByte('(')
	switch p.Tag {
	case filterAnd, filterOr:
		if err := constructed(p); err != nil {
			return err
		}
		b.WriteByte("&|"[p.Tag])
		// An empty and/or is the absolute true/false filter (RFC 4526).
		for _, c := range p.Children {
			if err := writeFilter(b, c); err != nil {
				return err
			}
		}
	case filterNot:
		if err := constructed(p); err != nil {
			return err
		}
		if len(p.Children) != 1 {
			return fmt.Errorf("%w: not has %d filters, want 1", errFilter, len(p.Children))
		}
		b.WriteByte('!')
		if err := writeFilter(b, p.Children[0]); err != nil {
			return err
		}
	case filterEqualityMatch, filterGreaterOrEqual, filterLessOrEqual, filterApproxMatch:
		if err := constructed(p); err != nil {
			return err
		}
		if len(p.Children) != 2 {
			return fmt.Errorf("%w: attribute value assertion has %d parts, want 2", errFilter, len(p.Children))
		}
		if err := writeAttr(b, p.Children[0]); err != nil {
			return err
		}
		b.WriteString([...]string{filterEqualityMatch: "=", filterGreaterOrEqual: ">=", filterLessOrEqual: "<=", filterApproxMatch: "~="}[p.Tag])
		if err := writeValue(b, p.Children[1]); err != nil {
			return err
		}
	case filterSubstrings:
		if err := writeSubstrings(b, p); err != nil {
			return err
		}
	case filterPresent:
		if p.TagType != ber.TypePrimitive {
			return fmt.Errorf("%w: present must be primitive", errFilter)
		}
		if err := writeAttr(b, p); err != nil {
			return err
		}
		b.WriteString("=*")
	case filterExtensibleMatch:
		if err := writeExtensible(b, p); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: unknown filter choice [%d]", errFilter, p.Tag)
	}
	b.WriteByte(')')
	return nil
}

// writeSubstrings writes type=[initial]*any*...*[final]: at most one
// initial, first, and at most one final, last (RFC 4511 section 4.5.1).
func writeSubstrings(b *strings.Builder, p *ber.Packet) error {
	if err := constructed(p); err != nil {
		return err
	}
	if len(p.Children) != 2 || p.Children[1].TagType != ber.TypeConstructed || len(p.Children[1].Children) == 0 {
		return fmt.Errorf("%w: substrings needs a type and at least one substring", errFilter)
	}
	if err := writeAttr(b, p.Children[0]); err != nil {
		return err
	}
	b.WriteByte('=')
	subs := p.Children[1].Children
	for i, s := range subs {
		if s.ClassType != ber.ClassContext {
			return fmt.Errorf("%w: substring must be context-tagged", errFilter)
		}
		switch {
		case s.Tag == substringInitial && i == 0:
		case s.Tag == substringAny, s.Tag == substringFinal && i == len(subs)-1:
			b.WriteByte('*')
		default:
			return fmt.Errorf("%w: substring [%d] out of place", errFilter, s.Tag)
		}
		if err := writeValue(b, s); err != nil {
			return err
		}
	}
	if subs[len(subs)-1].Tag != substringFinal {
		b.WriteByte('*')
	}
	return nil
}

// writeExtensible writes [type][:dn][:rule]:=value (RFC 4515 section 3).
func writeExtensible(b *strings.Builder, p *ber.Packet) error {
	if err := constructed(p); err != nil {
		return err
	}
	var rule, typ, value *ber.Packet
	dnAttributes := false
	last := 0
	for _, c := range p.Children {
		if c.ClassType != ber.ClassContext || c.TagType != ber.TypePrimitive || int(c.Tag) <= last || c.Tag > ruleDNAttributes {
			return fmt.Errorf("%w: unexpected or out of order matching rule assertion component [%d]", errFilter, c.Tag)
		}
		last = int(c.Tag)
		switch c.Tag {
		case ruleMatchingRule:
			rule = c
		case ruleType:
			typ = c
		case ruleMatchValue:
			value = c
		case ruleDNAttributes:
			// BOOLEAN: one content octet, any non-zero value is TRUE.
			if c.Data.Len() != 1 {
				return fmt.Errorf("%w: dnAttributes is not a BOOLEAN", errFilter)
			}
			dnAttributes = c.Data.Bytes()[0] != 0
		}
	}
	if value == nil || rule == nil && typ == nil {
		return fmt.Errorf("%w: extensible match needs a value and a type or matching rule", errFilter)
	}
	if typ != nil {
		if err := writeAttr(b, typ); err != nil {
			return err
		}
	}
	if dnAttributes {
		b.WriteString(":dn")
	}
	if rule != nil {
		b.WriteByte(':')
		if err := writeAttr(b, rule); err != nil {
			return err
		}
	}
	b.WriteString(":=")
	return writeValue(b, value)
}

func constructed(p *ber.Packet) error {
	if p.TagType != ber.TypeConstructed {
		return fmt.Errorf("%w: filter choice [%d] must be constructed", errFilter, p.Tag)
	}
	return nil
}

// writeAttr writes an attribute description or matching rule OID.  Only the
// characters RFC 4512 allows in them (keychars, "." and ";") pass: anything
// else would change the meaning of the string form.
func writeAttr(b *strings.Builder, p *ber.Packet) error {
	if p.TagType != ber.TypePrimitive {
		return fmt.Errorf("%w: attribute description must be primitive", errFilter)
	}
	s := p.Data.Bytes()
	if len(s) == 0 {
		return fmt.Errorf("%w: empty attribute description", errFilter)
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == ';') {
			return fmt.Errorf("%w: attribute description %q has the character %q", errFilter, s, c)
		}
	}
	b.Write(s)
	return nil
}

// writeValue writes an assertion value escaped as RFC 4515 requires ("*",
// "(", ")", "\" and NUL), plus every byte outside ASCII, so that a value
// that is not UTF-8 still makes a valid string.
func writeValue(b *strings.Builder, p *ber.Packet) error {
	if p.TagType != ber.TypePrimitive {
		return fmt.Errorf("%w: assertion value must be primitive", errFilter)
	}
	const hex = "0123456789abcdef"
	for _, c := range p.Data.Bytes() {
		switch {
		case c == 0, c == '*', c == '(', c == ')', c == '\\', c >= 0x80:
			b.WriteByte('\\')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	return nil
}
