package proxy

import (
	"errors"
	"reflect"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/filter"
)

// wireFilterSeeds are filter strings a client sends, one of each kind of
// component and escape.
var wireFilterSeeds = []string{
	"(objectClass=*)",
	"(&(uid=alice)(!(cn=bob))(|(mail=a@b)(mail=c@d)))",
	"(cn=a*b*c)", "(cn=*x*)", "(cn=x*)", "(cn=*x)",
	"(uidNumber>=1000)", "(uidNumber<=1000)", "(cn~=alice)",
	"(ou:dn:=people)", "(cn:caseExactMatch:=Alice)", "(:2.5.13.5:=x)",
	"(userAccountControl:1.2.840.113556.1.4.803:=2)",
	"(memberOf:1.2.840.113556.1.4.1941:=cn=g,dc=x)",
	`(cn=a\2ab\28\29\5c\00)`, `(cn=\c3\a9)`, `(cn=\ff)`,
	"(&)", "(|)",
}

// substrings encodes attr=initial*any*... with the given any parts, which
// a string form cannot say when one is empty ("(cn=**)").
func substrings(attr string, any ...string) *ber.Packet {
	p := ber.Encode(ber.ClassContext, ber.TypeConstructed, ldap.FilterSubstrings, nil, "")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, attr, ""))
	seq := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	for _, a := range any {
		seq.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, ldap.FilterSubstringsAny, a, ""))
	}
	p.AppendChild(seq)
	return p
}

// FuzzWireFilter feeds BER-encoded search filters through what a search
// request's filter goes through: gldap's decoder, then filter.Parse as
// runSearch calls it. A filter gldap passes on must parse or be refused
// with a *filter.ParseError, which runSearch answers with protocolError (or
// adminLimitExceeded), never panic; a parsed filter must survive the wire:
// its string form, encoded as a client encodes it and decoded again,
// parses to the same tree.
func FuzzWireFilter(f *testing.F) {
	for _, s := range wireFilterSeeds {
		p, err := ldap.CompileFilter(s)
		if err != nil {
			f.Fatalf("%s: %v", s, err)
		}
		f.Add(p.Bytes())
	}
	f.Add(substrings("cn", "").Bytes()) // decodes to "(cn=**)", which filter.Parse refuses
	f.Add(substrings("cn", "a", "").Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ber.DecodePacketErr(data)
		if err != nil {
			return
		}
		s, err := gldap.DecodeFilter(p)
		if err != nil {
			return // a protocol error, gldap's to answer
		}
		parsed, err := filter.Parse(s, filter.Limits{})
		if err != nil {
			if pe := (*filter.ParseError)(nil); !errors.As(err, &pe) {
				t.Fatalf("%q: error %v (%T) is not a *filter.ParseError", s, err, err)
			}
			return
		}
		canon := parsed.String()
		compiled, err := ldap.CompileFilter(canon)
		if err != nil {
			t.Fatalf("%q parsed, but go-ldap does not encode its string form %q: %v", s, canon, err)
		}
		wire, err := ber.DecodePacketErr(compiled.Bytes())
		if err != nil {
			t.Fatalf("%q: go-ldap's encoding of %q does not decode: %v", s, canon, err)
		}
		s2, err := gldap.DecodeFilter(wire)
		if err != nil {
			t.Fatalf("%q: the encoding of its string form %q is refused: %v", s, canon, err)
		}
		again, err := filter.Parse(s2, filter.Limits{})
		if err != nil {
			t.Fatalf("%q: its string form %q came back as %q, which does not parse: %v", s, canon, s2, err)
		}
		if !reflect.DeepEqual(parsed.Root, again.Root) {
			t.Fatalf("%q: its string form %q came back as %q, another filter:\n%#v\n%#v", s, canon, s2, parsed.Root, again.Root)
		}
	})
}
