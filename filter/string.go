package filter

import "strings"

// String returns the filter in canonical RFC 4515 form, for logs and for
// forwarding to an upstream server: attribute names and rules as the client
// wrote them, "(attr:dn:rule:=value)" for extensible matches, and values
// escaped as ldap.EscapeFilter does ('(', ')', '*', '\' and bytes >= 0x80)
// plus control bytes and DEL, so the result is printable ASCII and parses
// back to an equal tree.
func (f *Filter) String() string {
	var b strings.Builder
	writeNode(&b, f.Root)
	return b.String()
}

func writeNode(b *strings.Builder, n Node) {
	b.WriteByte('(')
	switch n := n.(type) {
	case And:
		b.WriteByte('&')
		for _, c := range n.Children {
			writeNode(b, c)
		}
	case Or:
		b.WriteByte('|')
		for _, c := range n.Children {
			writeNode(b, c)
		}
	case Not:
		b.WriteByte('!')
		writeNode(b, n.Child)
	case Equality:
		writeAVA(b, n.Attr, "=", n.Value)
	case Approx:
		writeAVA(b, n.Attr, "~=", n.Value)
	case GreaterOrEqual:
		writeAVA(b, n.Attr, ">=", n.Value)
	case LessOrEqual:
		writeAVA(b, n.Attr, "<=", n.Value)
	case Present:
		b.WriteString(n.Attr)
		b.WriteString("=*")
	case Substrings:
		b.WriteString(n.Attr)
		b.WriteByte('=')
		writeValue(b, n.Initial)
		b.WriteByte('*')
		for _, s := range n.Any {
			writeValue(b, s)
			b.WriteByte('*')
		}
		writeValue(b, n.Final)
	case Extensible:
		b.WriteString(n.Attr)
		if n.DNAttributes {
			b.WriteString(":dn")
		}
		if n.Rule != "" {
			b.WriteByte(':')
			b.WriteString(n.Rule)
		}
		b.WriteString(":=")
		writeValue(b, n.Value)
	}
	b.WriteByte(')')
}

func writeAVA(b *strings.Builder, attr, op, value string) {
	b.WriteString(attr)
	b.WriteString(op)
	writeValue(b, value)
}

func writeValue(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f || c == '(' || c == ')' || c == '*' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
}
