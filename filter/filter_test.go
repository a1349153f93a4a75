package filter

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// testEntry implements Entry and every optional interface.
type testEntry struct {
	dn    string
	attrs map[string][]string
	chain map[string]bool // "attr|dn" -> match; nil means InChain is unsupported
}

func (e *testEntry) Values(name string) []string { return e.attrs[name] }
func (e *testEntry) DN() string                  { return e.dn }

func (e *testEntry) AttributeNames() []string {
	names := make([]string, 0, len(e.attrs))
	for n := range e.attrs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (e *testEntry) InChain(attr, dn string) (match, supported bool) {
	if e.chain == nil {
		return false, false
	}
	return e.chain[attr+"|"+dn], true
}

// plainEntry implements only Entry.
type plainEntry map[string][]string

func (e plainEntry) Values(name string) []string { return e[name] }

var (
	jdoe = &testEntry{
		dn: `cn=Doe\, John,ou=People,dc=example,dc=test`,
		attrs: map[string][]string{
			"objectclass":        {"top", "person", "organizationalPerson", "inetOrgPerson", "posixAccount"},
			"cn":                 {"Doe, John", "John  Doe"},
			"sn":                 {"Doe"},
			"givenname":          {"John"},
			"uid":                {"jdoe"},
			"mail":               {"John.Doe@Example.TEST"},
			"description":        {"  Lead   engineer  "},
			"employeenumber":     {"007"},
			"entryuuid":          {"3f2504e0-4f89-11d3-9a0c-0305e82c3301"},
			"uidnumber":          {"1001"},
			"gidnumber":          {"100"},
			"useraccountcontrol": {"66048"}, // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
			"memberof":           {"CN=Admins,OU=Groups,DC=Example,DC=Test", `CN=AD\2FGroup,DC=Example,DC=Test`},
			"manager":            {`cn=Boss\, Big,ou=people,dc=example,dc=test`},
			"seealso":            {`cn=x+uid=y,dc=test`, `cn=slash\/ed,dc=test`},
			"objectguid":         {"\x01\x02\x03\x04"},
			"objectsid":          {"AbC"},
			"street":             {"Apartment 1234, The Very Long Building Name, 42 Some Rather Long Street Name"},
		},
		chain: map[string]bool{"memberof|cn=All,dc=example,dc=test": true},
	}
	group = &testEntry{
		dn: "cn=Domain Admins,ou=Groups,dc=example,dc=test",
		attrs: map[string][]string{
			"objectclass": {"top", "group"},
			"cn":          {"Domain Admins"},
			"grouptype":   {"-2147483646"}, // global security group
			"member":      {`cn=Doe\, John,ou=people,dc=example,dc=test`},
			"badpwdcount": {"x"}, // not an integer: compares as Undefined
		},
	}
	muller = plainEntry{
		"sn":        {"Müller"},
		"cn":        {"Groß"},
		"l":         {"kelvin"},
		"uidnumber": {"-5"},
	}
)

func mustParse(t testing.TB, s string) *Filter {
	t.Helper()
	f, err := Parse(s, Limits{})
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return f
}

var parseTests = []struct {
	in   string
	want Node
}{
	// RFC 4515 section 4 examples.
	{"(cn=Babs Jensen)", Equality{"cn", "Babs Jensen"}},
	{"(!(cn=Tim Howes))", Not{Equality{"cn", "Tim Howes"}}},
	{"(&(objectClass=Person)(|(sn=Jensen)(cn=Babs J*)))", And{[]Node{
		Equality{"objectClass", "Person"},
		Or{[]Node{Equality{"sn", "Jensen"}, Substrings{Attr: "cn", Initial: "Babs J"}}},
	}}},
	{"(o=univ*of*mich*)", Substrings{Attr: "o", Initial: "univ", Any: []string{"of", "mich"}}},
	{"(seeAlso=)", Equality{"seeAlso", ""}},
	{"(cn:caseExactMatch:=Fred Flintstone)", Extensible{Attr: "cn", Rule: "caseExactMatch", Value: "Fred Flintstone"}},
	{"(cn:=Betty Rubble)", Extensible{Attr: "cn", Value: "Betty Rubble"}},
	{"(sn:dn:2.4.6.8.10:=Barney Rubble)", Extensible{Attr: "sn", Rule: "2.4.6.8.10", Value: "Barney Rubble", DNAttributes: true}},
	{"(o:dn:=Ace Industry)", Extensible{Attr: "o", Value: "Ace Industry", DNAttributes: true}},
	{"(:1.2.3:=Wilma Flintstone)", Extensible{Rule: "1.2.3", Value: "Wilma Flintstone"}},
	{"(:DN:2.4.6.8.10:=Dino)", Extensible{Rule: "2.4.6.8.10", Value: "Dino", DNAttributes: true}},
	{`(o=Parens R Us \28for all your parenthetical needs\29)`, Equality{"o", "Parens R Us (for all your parenthetical needs)"}},
	{`(cn=*\2A*)`, Substrings{Attr: "cn", Any: []string{"*"}}},
	{`(filename=C:\5cMyFile)`, Equality{"filename", `C:\MyFile`}},
	{`(bin=\00\00\00\04)`, Equality{"bin", "\x00\x00\x00\x04"}},
	{`(sn=Lu\c4\8di\c4\87)`, Equality{"sn", "Lučić"}},
	{`(1.3.6.1.4.1.1466.0=\04\02\48\69)`, Equality{"1.3.6.1.4.1.1466.0", "\x04\x02Hi"}},
	// UTF-8 raw and hex-escaped give the same value.
	{"(sn=Müller)", Equality{"sn", "Müller"}},
	{`(sn=M\c3\bcller)`, Equality{"sn", "Müller"}},
	{`(sn=M\C3\BCller)`, Equality{"sn", "Müller"}},
	// Escapes of the special characters.
	{`(cn=a\2ab\28c\29d\5ce)`, Equality{"cn", `a*b(c)d\e`}},
	{`(cn=*\28*\29)`, Substrings{Attr: "cn", Any: []string{"("}, Final: ")"}},
	// Extensible forms the gateway must understand.
	{"(member:1.2.840.113556.1.4.1941:=cn=x,dc=y)", Extensible{Attr: "member", Rule: "1.2.840.113556.1.4.1941", Value: "cn=x,dc=y"}},
	{"(:dn:2.5.13.5:=x)", Extensible{Rule: "2.5.13.5", Value: "x", DNAttributes: true}},
	{"(userAccountControl:1.2.840.113556.1.4.803:=2)", Extensible{Attr: "userAccountControl", Rule: "1.2.840.113556.1.4.803", Value: "2"}},
	{"(cn:DN:=x)", Extensible{Attr: "cn", Value: "x", DNAttributes: true}},
	{"(cn:Dn:caseExactMatch:=x)", Extensible{Attr: "cn", Rule: "caseExactMatch", Value: "x", DNAttributes: true}},
	// Other operators and forms.
	{"(uidNumber>=1000)", GreaterOrEqual{"uidNumber", "1000"}},
	{"(uidNumber<=1000)", LessOrEqual{"uidNumber", "1000"}},
	{"(cn~=jon)", Approx{"cn", "jon"}},
	{"(cn=*)", Present{"cn"}},
	{"(cn;lang-de=x)", Equality{"cn;lang-de", "x"}},
	{"(cn=a=b)", Equality{"cn", "a=b"}},
	{"(cn=*x)", Substrings{Attr: "cn", Final: "x"}},
	{"(&)", And{[]Node{}}},
	{"(|)", Or{[]Node{}}},
	{"(!(&))", Not{And{[]Node{}}}},
	{"(&(a=1)(!(|(b=2)(c=3)))(d=*))", And{[]Node{
		Equality{"a", "1"},
		Not{Or{[]Node{Equality{"b", "2"}, Equality{"c", "3"}}}},
		Present{"d"},
	}}},
	// go-ldap drops the empty piece between adjacent wildcards.
	{"(cn=a**b)", Substrings{Attr: "cn", Initial: "a", Final: "b"}},
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.in, func(t *testing.T) {
			f := mustParse(t, tt.in)
			if !reflect.DeepEqual(f.Root, tt.want) {
				t.Errorf("Root = %#v, want %#v", f.Root, tt.want)
			}
		})
	}
}

var parseErrorTests = []struct {
	in     string
	offset int // -1: only the component is known
	msg    string
}{
	{"", 0, "empty filter"},
	{"cn=x", 0, "expected '('"},
	{" (cn=x)", 0, "expected '('"},
	{"(cn=x", 5, "missing ')'"},
	{"(&(cn=x)", 8, "missing ')'"},
	{"(cn=x))", 6, "after the end"},
	{"(cn=x)(sn=y)", 6, "after the end"},
	{"(cn=x) ", 6, "after the end"},
	{"((cn=x))", 1, "extra parentheses"},
	{"(&((cn=x)))", 3, "extra parentheses"},
	{"()", 1, "empty filter component"},
	{"(!)", 2, "expected '('"},
	{"(!a=b)", 2, "expected '('"},
	{"(!(a=b)(c=d))", 7, "expected ')'"},
	{"(cn)", 1, "missing '='"},
	{"(cn>x)", 1, "missing '='"},
	{"(cn=a(b)", 5, "unescaped '('"},
	{`(cn=\zz)`, 4, "invalid escape"},
	{`(cn=\2)`, 4, "invalid escape"},
	{`(cn=x\)`, 5, "invalid escape"},
	{"(cn=\xff)", 4, "invalid UTF-8"},
	{"(c n=x)", -1, `invalid attribute description "c n"`},
	{"(=x)", -1, `invalid attribute description ""`},
	{"(1cn=x)", -1, "invalid attribute description"},
	{"(01.2=x)", -1, "invalid attribute description"},
	{"(cn;=x)", -1, "invalid attribute description"},
	{"(cn_x=y)", -1, "invalid attribute description"},
	{"(cn=**)", -1, "no non-empty part"},
	{"(:=x)", -1, "needs an attribute or a matching rule"},
	{"(:dn:=x)", -1, "needs an attribute or a matching rule"},
	{"(cn:1.2.:=x)", -1, "invalid matching rule"},
	{"(cn:x=y)", -1, "invalid matching rule"},
	{"(cn:caseExactMatch:dn:=x)", -1, "invalid matching rule"},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range parseErrorTests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := Parse(tt.in, Limits{})
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, %v; want a *ParseError", f, err)
			}
			if f != nil {
				t.Errorf("Parse returned a filter with the error")
			}
			if pe.Offset != tt.offset || !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("error = %q (offset %d); want offset %d and message containing %q", pe.Msg, pe.Offset, tt.offset, tt.msg)
			}
			if errors.Is(err, ErrLimit) {
				t.Errorf("syntax error reported as a limit: %v", err)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	nested := func(n int) string {
		return strings.Repeat("(!", n) + "(a=b)" + strings.Repeat(")", n)
	}
	wideOr := "(|" + strings.Repeat("(a=b)", 100_000) + ")"
	huge := "(cn=" + strings.Repeat("x", 1<<20) + ")"
	tests := []struct {
		name    string
		in      string
		lim     Limits
		wantErr string // empty: must parse
	}{
		{"1000 levels", nested(1000), Limits{}, "deeper than 64"},
		{"65 levels", nested(64), Limits{}, "deeper than 64"},
		{"64 levels", nested(63), Limits{}, ""},
		{"1000 levels allowed", nested(1000), Limits{MaxDepth: 1001, MaxNodes: 1001}, ""},
		{"100k-child OR", wideOr, Limits{}, "limit is 65536"},
		{"100k-child OR, long allowed", wideOr, Limits{MaxLength: 1 << 20}, "more than 4096 components"},
		{"100k-child OR, all allowed", wideOr, Limits{MaxLength: 1 << 20, MaxNodes: 100_001}, ""},
		{"1 MiB", huge, Limits{}, "limit is 65536"},
		{"1 MiB allowed", huge, Limits{MaxLength: 2 << 20}, ""},
		{"custom length", "(cn=abcdef)", Limits{MaxLength: 10}, "limit is 10"},
		{"custom nodes", "(&(a=b)(c=d))", Limits{MaxNodes: 2}, "more than 2 components"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			f, err := Parse(tt.in, tt.lim)
			// Rejections stop at the first limit crossed, so they are quick
			// whatever the size of the input.
			if d := time.Since(start); tt.wantErr != "" && d > time.Second {
				t.Errorf("rejecting took %v", d)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				// Deep trees must also evaluate without trouble.
				f.Eval(plainEntry{"a": {"b"}})
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrLimit) || !strings.Contains(pe.Msg, tt.wantErr) {
				t.Fatalf("Parse error = %v; want a limit *ParseError containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDeepNotEvaluates(t *testing.T) {
	f, err := Parse(strings.Repeat("(!", 1000)+"(a=b)"+strings.Repeat(")", 1000), Limits{MaxDepth: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Eval(plainEntry{"a": {"B"}}); got != True {
		t.Errorf("1000 negations of TRUE = %v, want TRUE", got)
	}
}

var evalTests = []struct {
	filter string
	entry  Entry
	want   Result
}{
	// caseIgnore: case, aliases and insignificant spaces.
	{"(cn=doe, john)", jdoe, True},
	{"(CN=DOE, JOHN)", jdoe, True},
	{"(cn=  john   doe  )", jdoe, True},
	{"(cn=johndoe)", jdoe, False},
	{"(cn=john doe x)", jdoe, False},
	{"(2.5.4.3=John Doe)", jdoe, True},
	{"(commonName=john doe)", jdoe, True},
	{"(0.9.2342.19200300.100.1.1=JDOE)", jdoe, True},
	{"(0.9.2342.19200300.100.1.3=john.doe@example.test)", jdoe, True},
	{"(objectClass=INETORGPERSON)", jdoe, True},
	{"(2.5.4.0=posixaccount)", jdoe, True},
	{"(employeeNumber=007)", jdoe, True},
	{"(employeeNumber=7)", jdoe, False},
	{"(entryUUID=3F2504E0-4F89-11D3-9A0C-0305E82C3301)", jdoe, True},
	{"(cn=)", jdoe, Undefined},
	{"(!(cn=))", jdoe, Undefined},
	// Absent attributes are FALSE, presence.
	{"(nosuch=x)", jdoe, False},
	{"(!(nosuch=x))", jdoe, True},
	{"(nosuch=*)", jdoe, False},
	{"(nosuch>=a)", jdoe, False},
	{"(nosuch=a*)", jdoe, False},
	{"(cn=*)", jdoe, True},
	{"(objectClass=*)", jdoe, True},
	{"(objectclass=*)", muller, True},
	// Unicode folding.
	{"(sn=MÜLLER)", muller, True},
	{`(sn=m\c3\bcller)`, muller, True},
	{"(sn=mueller)", muller, False},
	{`(l=\e2\84\aaELVIN)`, muller, True}, // KELVIN SIGN folds to k
	{"(cn=GROSS)", muller, False},        // no full case folding, as in slapd
	{`(sn>=m\c3\bc)`, muller, True},
	{"(sn=*LLER)", muller, True},
	// Integer.
	{"(uidNumber=1001)", jdoe, True},
	{"(uidNumber=1002)", jdoe, False},
	{"(uidNumber=01001)", jdoe, Undefined},
	{"(uidNumber=+1001)", jdoe, Undefined},
	{"(uidNumber=abc)", jdoe, Undefined},
	{"(!(uidNumber=abc))", jdoe, Undefined},
	{"(uidNumber>=1000)", jdoe, True},
	{"(uidNumber>=1002)", jdoe, False},
	{"(uidNumber<=1001)", jdoe, True},
	{"(uidNumber<=999)", jdoe, False},
	{"(uidNumber<=-1)", jdoe, False},
	{"(uidNumber>=-99999999999999999999999)", jdoe, True},
	{"(uidNumber<=123456789012345678901234567890)", jdoe, True},
	{"(uidNumber>=123456789012345678901234567890)", jdoe, False},
	{"(uidNumber<=-4)", muller, True},
	{"(uidNumber>=-4)", muller, False},
	{"(uidNumber>=-6)", muller, True},
	{"(uidNumber>=-50)", muller, True},
	{"(uidNumber=*)", jdoe, True},
	{"(uidNumber~=1001)", jdoe, True},
	{"(uidNumber=10*)", jdoe, Undefined},
	{"(badPwdCount=0)", group, Undefined},
	{"(!(badPwdCount>=0))", group, Undefined},
	{"(badPwdCount=*)", group, True},
	// DN.
	{"(memberOf=cn=admins,ou=groups,dc=example,dc=test)", jdoe, True},
	{"(memberOf=cn=admins, ou=groups, dc=example, dc=test)", jdoe, True},
	{"(memberOf=cn=other,ou=groups,dc=example,dc=test)", jdoe, False},
	{"(memberOf=cn=admins,ou=groups,dc=example)", jdoe, False},
	{`(member=CN=Doe\5c2C John,OU=People,DC=Example,DC=Test)`, group, True},
	{`(member=cn=Doe\5c, John,ou=people,dc=example,dc=test)`, group, True},
	{`(manager=CN=BOSS\5c2C  BIG,OU=PEOPLE,DC=EXAMPLE,DC=TEST)`, jdoe, True},
	{`(manager=2.5.4.3=boss\5c, big,ou=people,dc=example,dc=test)`, jdoe, True},
	{`(memberOf=cn=ad\5c/group,dc=example,dc=test)`, jdoe, True},
	{`(seeAlso=cn=SLASH\5c2Fed,dc=test)`, jdoe, True},
	{`(seeAlso=UID=Y+CN=X,DC=TEST)`, jdoe, True},
	{`(seeAlso=uid=y+cn=y,dc=test)`, jdoe, False},
	{"(memberOf=not a dn)", jdoe, Undefined},
	{"(memberOf=cn=adm*)", jdoe, Undefined},
	{"(memberOf>=cn=a)", jdoe, Undefined},
	{"(memberOf~=cn=admins,ou=groups,dc=example,dc=test)", jdoe, True},
	// Octet.
	{`(objectGUID=\01\02\03\04)`, jdoe, True},
	{`(objectGUID=\01\02\03\05)`, jdoe, False},
	{`(objectGUID>=\01\02)`, jdoe, True},
	{`(objectGUID<=\01\02)`, jdoe, False},
	{`(objectGUID=*\02\03*)`, jdoe, True},
	{"(objectSid=abc)", jdoe, False},
	{"(objectSid=AbC)", jdoe, True},
	// Substrings.
	{"(cn=*OHN*DO*)", jdoe, True},
	{"(cn=j*n*d*e)", jdoe, True},
	{"(cn=*doe*doe*)", jdoe, False},
	{"(cn=*o*o*o*)", jdoe, False},
	{"(cn=*o*o*)", jdoe, True},
	{"(sn=Do*oe)", jdoe, False}, // initial and final may not overlap
	{"(sn=D*e)", jdoe, True},
	{"(mail=*@example.test)", jdoe, True},
	{"(mail=john.*)", jdoe, True},
	{"(cn=doe,*)", jdoe, True},
	{"(cn=john  d*)", jdoe, True},
	{"(description=lead eng*)", jdoe, True},
	{"(description=*   engineer   )", jdoe, True}, // final: leading space kept, trailing dropped
	{"(description=* lead*)", jdoe, False},        // any: the leading space is significant
	{"(description=*lead *)", jdoe, True},
	{"(street=*building*street*)", jdoe, True},
	{"(street=*street*building*)", jdoe, False},
	// Ordering on caseIgnore strings.
	{"(sn>=c)", jdoe, True},
	{"(sn>=DOE)", jdoe, True},
	{"(sn<=C)", jdoe, False},
	{"(sn<=doe)", jdoe, True},
	{"(sn>=e)", jdoe, False},
	{"(sn~=DOE)", jdoe, True},
	// Extensible: string and DN rules.
	{"(cn:caseExactMatch:=John Doe)", jdoe, True},
	{"(cn:caseExactMatch:=john doe)", jdoe, False},
	{"(cn:2.5.13.2:=JOHN DOE)", jdoe, True},
	{"(cn:CASEIGNOREMATCH:=john doe)", jdoe, True},
	{"(cn:=JOHN DOE)", jdoe, True},
	{"(uidNumber:=1001)", jdoe, True},
	{`(manager:distinguishedNameMatch:=CN=BOSS\5c2C BIG,OU=PEOPLE,DC=EXAMPLE,DC=TEST)`, jdoe, True},
	{"(member:caseIgnoreMatch:=x)", group, Undefined},
	{"(cn:distinguishedNameMatch:=cn=x)", jdoe, Undefined},
	{"(cn:1.2.3.4:=x)", jdoe, Undefined},
	{"(cn:fooMatch:=x)", jdoe, Undefined},
	{"(cn:caseExactMatch:=)", jdoe, Undefined},
	// Extensible: bitwise rules.
	{"(userAccountControl:1.2.840.113556.1.4.803:=512)", jdoe, True},
	{"(userAccountControl:1.2.840.113556.1.4.803:=66048)", jdoe, True},
	{"(userAccountControl:1.2.840.113556.1.4.803:=2)", jdoe, False},
	{"(!(userAccountControl:1.2.840.113556.1.4.803:=2))", jdoe, True},
	{"(userAccountControl:1.2.840.113556.1.4.803:=66050)", jdoe, False},
	{"(userAccountControl:1.2.840.113556.1.4.804:=3)", jdoe, False},
	{"(userAccountControl:1.2.840.113556.1.4.804:=514)", jdoe, True},
	{"(userAccountControl:integerBitAndMatch:=512)", jdoe, True},
	{"(userAccountControl:1.2.840.113556.1.4.803:=99999999999999999999)", jdoe, Undefined},
	{"(userAccountControl:1.2.840.113556.1.4.803:=x)", jdoe, Undefined},
	{"(groupType:1.2.840.113556.1.4.803:=2147483648)", group, True},
	{"(groupType:1.2.840.113556.1.4.803:=2)", group, True},
	{"(groupType:1.2.840.113556.1.4.803:=4)", group, False},
	{"(cn:1.2.840.113556.1.4.803:=2)", jdoe, Undefined},
	{"(:1.2.840.113556.1.4.803:=65536)", jdoe, True},
	// Extensible: :dn: and rules without an attribute.
	{"(ou:dn:=People)", jdoe, True},
	{"(OU:DN:=people)", jdoe, True},
	{"(ou:=People)", jdoe, False},
	{"(ou:dn:=Groups)", jdoe, False},
	{"(sn:dn:=doe)", jdoe, True},
	{"(:dn:2.5.13.5:=People)", jdoe, True},
	{"(:dn:2.5.13.5:=people)", jdoe, False},
	{"(:dn:caseIgnoreMatch:=EXAMPLE)", jdoe, True},
	{"(:2.5.13.2:=JDOE)", jdoe, True},
	{"(:caseExactMatch:=jdoe)", jdoe, True},
	{"(:caseExactMatch:=JDOE)", jdoe, False},
	{"(:distinguishedNameMatch:=CN=Admins,OU=Groups,DC=Example,DC=Test)", jdoe, True},
	{"(:distinguishedNameMatch:=cn=nobody,dc=test)", jdoe, False},
	{"(:2.5.13.2:=Müller)", muller, Undefined}, // cannot list attributes
	{"(sn:dn:=müller)", muller, True},          // no DN: the attribute only
	{"(:dn:2.5.13.2:=x)", muller, Undefined},
	// Extensible: LDAP_MATCHING_RULE_IN_CHAIN through ChainResolver.
	{"(memberOf:1.2.840.113556.1.4.1941:=cn=All,dc=example,dc=test)", jdoe, True},
	{"(memberOf:1.2.840.113556.1.4.1941:=cn=None,dc=example,dc=test)", jdoe, False},
	{"(memberOf:1.2.840.113556.1.4.1941:=cn=All,dc=example,dc=test)", muller, Undefined},
	{"(memberOf:1.2.840.113556.1.4.1941:=cn=All,dc=example,dc=test)", group, Undefined},
	{"(:1.2.840.113556.1.4.1941:=cn=All,dc=example,dc=test)", jdoe, Undefined},
	{"(memberOf:1.2.840.113556.1.4.1941:=not a dn)", jdoe, Undefined},
	// Three-valued logic.
	{"(&(uid=jdoe)(uidNumber=abc))", jdoe, Undefined},
	{"(&(uid=x)(uidNumber=abc))", jdoe, False},
	{"(|(uid=jdoe)(uidNumber=abc))", jdoe, True},
	{"(|(uid=x)(uidNumber=abc))", jdoe, Undefined},
	{"(!(|(uid=x)(uidNumber=abc)))", jdoe, Undefined},
	{"(!(&(uid=x)(uidNumber=abc)))", jdoe, True},
	{"(&)", jdoe, True},
	{"(|)", jdoe, False},
	{"(!(&))", jdoe, False},
	{"(!(|))", jdoe, True},
	{"(&(objectClass=posixAccount)(|(uid=jdoe)(uid=jsmith))(!(userAccountControl:1.2.840.113556.1.4.803:=2)))", jdoe, True},
}

func TestEval(t *testing.T) {
	for _, tt := range evalTests {
		name := tt.filter
		if _, ok := tt.entry.(plainEntry); ok {
			name += " on plain entry"
		} else {
			name += " on " + tt.entry.(*testEntry).dn
		}
		t.Run(name, func(t *testing.T) {
			f := mustParse(t, tt.filter)
			if got := f.Eval(tt.entry); got != tt.want {
				t.Errorf("Eval = %v, want %v", got, tt.want)
			}
			if got := f.Match(tt.entry); got != (tt.want == True) {
				t.Errorf("Match = %v, want %v", got, tt.want == True)
			}
		})
	}
}

func TestParseWithSchema(t *testing.T) {
	schema := func(attr string) Syntax {
		switch attr {
		case "employeeid":
			return Integer
		case "uid":
			return CaseExact
		case "weird":
			return Syntax(42) // unknown syntaxes behave as CaseIgnore
		}
		return DefaultSchema(attr)
	}
	e := plainEntry{"employeeid": {"100"}, "uid": {"JDoe"}, "weird": {"X"}, "uidnumber": {"7"}}
	tests := []struct {
		filter string
		want   Result
	}{
		{"(employeeID>=99)", True},
		{"(employeeID>=0100)", Undefined},
		{"(employeeID:1.2.840.113556.1.4.803:=4)", True},
		{"(uid=JDoe)", True},
		{"(uid=jdoe)", False},
		{"(userid=JD*)", True},
		{"(uid=jd*)", False},
		{"(uid:caseIgnoreMatch:=jdoe)", True},
		{"(weird=x)", True},
		{"(uidNumber<=7)", True},
	}
	for _, tt := range tests {
		f, err := ParseWithSchema(tt.filter, Limits{}, schema)
		if err != nil {
			t.Fatalf("ParseWithSchema(%q): %v", tt.filter, err)
		}
		if got := f.Eval(e); got != tt.want {
			t.Errorf("%s: Eval = %v, want %v", tt.filter, got, tt.want)
		}
	}
}

func TestDefaultSchema(t *testing.T) {
	tests := map[string]Syntax{
		"cn": CaseIgnore, "2.5.4.3": CaseIgnore, "employeeNumber": CaseIgnore, "entryUUID": CaseIgnore,
		"member": DN, "uniqueMember": DN, "memberOf": DN, "dominoAccessGroups": DN, "distinguishedName": DN,
		"uidNumber": Integer, "msDS-User-Account-Control-Computed": Integer, "primaryGroupID": Integer,
		"objectGUID": Octet, "objectSid": Octet, "jpegPhoto": Octet, "userCertificate;binary": Octet,
		"2.5.4.31": DN, "1.2.840.113556.1.2.102": DN, "1.3.6.1.1.1.1.0": Integer, "objectCategory": DN,
	}
	for attr, want := range tests {
		if got := DefaultSchema(attr); got != want {
			t.Errorf("DefaultSchema(%q) = %v, want %v", attr, got, want)
		}
	}
}

func allValidFilters() []string {
	var fs []string
	for _, tt := range parseTests {
		fs = append(fs, tt.in)
	}
	for _, tt := range evalTests {
		fs = append(fs, tt.filter)
	}
	return fs
}

func TestStringRoundTrip(t *testing.T) {
	for _, s := range allValidFilters() {
		f := mustParse(t, s)
		out := f.String()
		g, err := Parse(out, Limits{})
		if err != nil {
			t.Errorf("Parse(%q.String() = %q): %v", s, out, err)
			continue
		}
		if !reflect.DeepEqual(f.Root, g.Root) {
			t.Errorf("%q: String() = %q parses to %#v, want %#v", s, out, g.Root, f.Root)
		}
		if g.String() != out {
			t.Errorf("%q: String() not canonical: %q then %q", s, out, g.String())
		}
	}
}

func TestStringCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"(sn=Müller)", `(sn=M\c3\bcller)`},
		{`(sn=M\C3\BCller)`, `(sn=M\c3\bcller)`},
		{`(cn=a\2ab\28c\29d\5ce)`, `(cn=a\2ab\28c\29d\5ce)`},
		{`(cn=\01\7f\00)`, `(cn=\01\7f\00)`},
		{"(cn:DN:=x)", "(cn:dn:=x)"},
		{"(:DN:2.4.6.8.10:=Dino)", "(:dn:2.4.6.8.10:=Dino)"},
		{"(cn=a**b)", "(cn=a*b)"},
		{"(o=univ*of*mich*)", "(o=univ*of*mich*)"},
		{"(cn:=*)", `(cn:=\2a)`},
		{"(&(CN=x)(!(sn~=y))(uid>=1)(uid<=2)(mail=*)(|))", "(&(CN=x)(!(sn~=y))(uid>=1)(uid<=2)(mail=*)(|))"},
	}
	for _, tt := range tests {
		if got := mustParse(t, tt.in).String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAttributes(t *testing.T) {
	tests := []struct {
		filter string
		want   []string
	}{
		{"(cn=x)", []string{"cn"}},
		{"(&(CN=x)(2.5.4.3=y)(|(Mail=*)(!(uidNumber>=1)))(sn=a*)(cn;lang-DE~=z))", []string{"cn", "mail", "uidnumber", "sn", "cn;lang-de"}},
		{"(&(objectClass=*)(member:1.2.840.113556.1.4.1941:=cn=x))", []string{"objectclass", "member"}},
		{"(|(uid=a)(:caseExactMatch:=b))", []string{"uid", "*"}},
		{"(&)", nil},
	}
	for _, tt := range tests {
		f := mustParse(t, tt.filter)
		got := f.Attributes()
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Attributes() = %q, want %q", tt.filter, got, tt.want)
		}
		if len(got) > 0 {
			got[0] = "mutated"
			if f.Attributes()[0] == "mutated" {
				t.Errorf("Attributes exposes the filter's own slice")
			}
		}
	}
}

func TestHints(t *testing.T) {
	indexed := func(attr string) bool {
		switch attr {
		case "uid", "mail", "cn", "member", "uidnumber":
			return true
		}
		return false
	}
	type h = IndexHint
	tests := []struct {
		filter string
		want   []IndexHint
		ok     bool
	}{
		{"(uid=JDoe)", []h{{"uid", "jdoe"}}, true},
		{"(UID=  jdoe )", []h{{"uid", "jdoe"}}, true},
		{"(0.9.2342.19200300.100.1.1=jdoe)", []h{{"uid", "jdoe"}}, true},
		{"(cn~=John  Doe)", []h{{"cn", "john doe"}}, true},
		{"(cn:=John)", []h{{"cn", "john"}}, true},
		{"(uidNumber=1001)", []h{{"uidnumber", "1001"}}, true},
		{`(member=CN=Doe\5c2C  John,OU=People,DC=Example,DC=Test)`, []h{{"member", `cn=doe\, john,ou=people,dc=example,dc=test`}}, true},
		{"(sn=doe)", nil, false},
		{"(cn:dn:=John)", nil, false},
		{"(cn:caseExactMatch:=John)", nil, false},
		{"(uid=a*)", nil, false},
		{"(uid>=a)", nil, false},
		{"(uid=*)", nil, false},
		{"(!(uid=a))", nil, false},
		{"(&(objectClass=person)(uid=jdoe))", []h{{"uid", "jdoe"}}, true},
		{"(&(objectClass=person)(sn=doe))", nil, false},
		{"(&(objectClass=person)(|(uid=a)(mail=B@x)))", []h{{"uid", "a"}, {"mail", "b@x"}}, true},
		{"(&(|(uid=a)(uid=b))(mail=c))", []h{{"mail", "c"}}, true},
		{"(&(uid=a)(mail=c))", []h{{"uid", "a"}}, true},
		{"(|(uid=a)(sn=b))", nil, false},
		{"(|(uid=a)(UID=A)(mail=m))", []h{{"uid", "a"}, {"mail", "m"}}, true},
		{"(|(uid=a)(&(objectClass=x)(cn=b)))", []h{{"uid", "a"}, {"cn", "b"}}, true},
		{"(|)", nil, true},
		{"(&)", nil, false},
		{"(&(uidNumber=abc)(uid=a))", nil, true},
		{"(sn=)", nil, true},
	}
	for _, tt := range tests {
		got, ok := mustParse(t, tt.filter).Hints(indexed)
		if ok != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("%s: Hints = %q, %v; want %q, %v", tt.filter, got, ok, tt.want, tt.ok)
		}
	}
}

// TestEqualityKeyAgreesWithMatch checks the index contract: a stored value
// and an assertion have equal keys exactly when equality matching says TRUE.
func TestEqualityKeyAgreesWithMatch(t *testing.T) {
	tests := []struct{ attr, stored, asserted string }{
		{"cn", "John  Doe", "john doe"},
		{"cn", " John Doe ", "JOHN DOE"},
		{"cn", "John Doe", "John Do"},
		{"cn", "   ", " "},
		{"cn", "Müller", "MÜLLER"},
		{"cn", "\xffab", "\xffab"},
		{"uid", "jdoe", "jdoe2"},
		{"uidNumber", "42", "42"},
		{"uidNumber", "42", "042"},
		{"uidNumber", "x", "x"},
		{"objectGUID", "\x01\x02", "\x01\x02"},
		{"objectGUID", "ab", "AB"},
		{"member", `cn=Doe\, John,dc=test`, `CN=doe\2c  john, DC=TEST`},
		{"member", `cn=a+uid=b,dc=test`, `UID=B+CN=A,dc=test`},
		{"member", `cn=a,dc=test`, `cn=a,dc=tes`},
		{"member", `cn=a\/b,dc=test`, `cn=a\2fb,dc=test`},
	}
	for _, tt := range tests {
		f := mustParse(t, "("+tt.attr+"="+escapeForTest(tt.asserted)+")")
		matched := f.Match(plainEntry{strings.ToLower(tt.attr): {tt.stored}})
		ks, okS := EqualityKey(nil, tt.attr, tt.stored)
		ka, okA := EqualityKey(nil, tt.attr, tt.asserted)
		if keysEqual := okS && okA && ks == ka; keysEqual != matched {
			t.Errorf("%s: stored %q, asserted %q: Match = %v but keys %q (%v) and %q (%v)",
				tt.attr, tt.stored, tt.asserted, matched, ks, okS, ka, okA)
		}
	}
}

func escapeForTest(s string) string {
	var b strings.Builder
	writeValue(&b, s)
	return b.String()
}

// TestCmpNormAgreesWithAppendNorm pins the streaming comparison used per
// entry to the normalisation used at parse time and for index keys.
func TestCmpNormAgreesWithAppendNorm(t *testing.T) {
	values := []string{"", " ", "   ", "a", "A", " a", "a ", "a  b", " A  B ", "ab", "a b c",
		"Müller", "MÜLLER", "\u212Aelvin", "\xff", "a\xffb", "ß", "SS", "z", "~", "{", "_"}
	for _, fold := range []bool{true, false} {
		for _, v := range values {
			for _, a := range values {
				norm := string(appendNorm(nil, a, fold, useEquality))
				want := bytes.Compare(appendNorm(nil, v, fold, useEquality), []byte(norm))
				if got := cmpNorm(v, norm, fold); got != want {
					t.Errorf("cmpNorm(%q, %q, %v) = %d, want %d", v, norm, fold, got, want)
				}
			}
		}
	}
}

func TestNormalisationOfSubstringParts(t *testing.T) {
	tests := []struct {
		in                             string
		equality, initial, any_, final string
	}{
		{"  a  b  ", "a b", "a b ", " a b ", " a b"},
		{"   ", " ", " ", " ", ""},
		{"A", "a", "a", "a", "a"},
	}
	for _, tt := range tests {
		for u, want := range []string{tt.equality, tt.initial, tt.any_, tt.final} {
			if got := string(appendNorm(nil, tt.in, true, usage(u))); got != want {
				t.Errorf("appendNorm(%q, usage %d) = %q, want %q", tt.in, u, got, want)
			}
		}
	}
}

// TestPlainDNComparisonAgreesWithParser pins the allocation-free DN
// comparison to the ldap.ParseDN-based one it short-cuts.
func TestPlainDNComparisonAgreesWithParser(t *testing.T) {
	assertions := []string{
		"cn=John Doe,ou=People,dc=example,dc=test",
		"uid=jdoe,dc=test",
		"2.5.4.3=x,dc=test",
		"uidNumber=5,dc=test",
		"cn=a+uid=b,dc=test",
	}
	values := []string{
		"cn=John Doe,ou=People,dc=example,dc=test",
		"CN=JOHN  DOE , OU = people,DC=Example,DC=Test",
		"cn=John Doe,ou=People,dc=example",
		"cn=John Doe,ou=People,dc=example,dc=test,dc=x",
		"uid=jdoe,dc=test", "UID= JDOE ,dc=test", "userid=jdoe,dc=test", "uid=jdo,dc=test",
		"commonName=X,DC=test", "cn=x,dc=test", "cn=,dc=test",
		"uidnumber=5,dc=test", "uidNumber=05,dc=test", "uidNumber= 5,dc=test",
		"cn=a,uid=b,dc=test",
		"cn=a=b,dc=test", "=a,dc=test", "cn=a,,dc=test", "cn=a,", ",", "x", "  ",
		"c n=x,dc=test", "cn=\tx,dc=test",
	}
	for _, as := range assertions {
		a := newAssertion(DefaultSchema, DN, as)
		if !a.valid {
			t.Fatalf("assertion %q does not parse", as)
		}
		for _, v := range values {
			eq, ok := a.dnEqualPlain(v)
			if !ok {
				continue
			}
			want := Undefined
			if d, err := parseDN(v); err == nil {
				want = boolResult(a.dnEqual(d))
			}
			if got := boolResult(eq); got != want {
				t.Errorf("assertion %q, value %q: plain comparison %v, parser %v", as, v, got, want)
			}
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	for _, s := range []string{
		"(cn=john doe)",
		"(cn=nobody)",
		"(sn=MÜLLER)",
		"(&(objectClass=person)(uid=jdoe))",
		"(uidNumber>=1000)",
		"(sn<=e)",
		"(cn=j*n*d*e)",
		"(mail=*@example.test)",
		"(userAccountControl:1.2.840.113556.1.4.803:=512)",
		"(!(|(cn=x)(cn=*)))",
		"(memberOf=cn=admins,ou=groups,dc=example,dc=test)",
		"(street=*building*street*)",
		"(street>=apartment)",
	} {
		f := mustParse(t, s)
		if n := testing.AllocsPerRun(100, func() { f.Match(jdoe) }); n != 0 {
			t.Errorf("%s: Match allocates %v times per entry", s, n)
		}
	}
}

// TestConcurrentMatch lets the race detector check that a parsed Filter is
// safe to share between the goroutines serving one search.
func TestConcurrentMatch(t *testing.T) {
	f := mustParse(t, "(&(objectClass=person)(|(cn=j*)(:dn:caseIgnoreMatch:=people))(!(memberOf=cn=x,dc=y)))")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if !f.Match(jdoe) || f.Match(group) {
					t.Error("wrong result under concurrency")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestParseErrorUnwrap(t *testing.T) {
	_, err := Parse(`(cn=\2`, Limits{})
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Error() == "" {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(pe.Error(), "offset 4") {
		t.Errorf("Error() = %q, want the offset", pe.Error())
	}
}

var fuzzEntry = &testEntry{
	dn: jdoe.dn,
	attrs: func() map[string][]string {
		m := maps.Clone(jdoe.attrs)
		m["a"] = []string{"b", "1", ""}
		m["member"] = group.attrs["member"]
		m["badpwdcount"] = []string{"x"}
		return m
	}(),
	chain: jdoe.chain,
}

func FuzzParse(f *testing.F) {
	for _, s := range allValidFilters() {
		f.Add(s)
	}
	for _, tt := range parseErrorTests {
		f.Add(tt.in)
	}
	f.Add("(&(a=b)(|(c=d)(!(e=*f*g*h))))")
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := Parse(s, Limits{})
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %T is not a *ParseError", s, err)
			}
			return
		}
		out := flt.String()
		// Escaping can make the canonical form longer than the input.
		again, err := Parse(out, Limits{MaxLength: len(out)})
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", s, out, err)
		}
		if !reflect.DeepEqual(flt.Root, again.Root) {
			t.Fatalf("Parse(%q).String() = %q parses to %#v, want %#v", s, out, again.Root, flt.Root)
		}
		if again.String() != out {
			t.Fatalf("String not canonical: %q then %q", out, again.String())
		}
		for _, e := range []Entry{fuzzEntry, muller, plainEntry{}} {
			if r1, r2 := flt.Eval(e), again.Eval(e); r1 != r2 {
				t.Fatalf("%q and %q evaluate differently: %v, %v", s, out, r1, r2)
			}
		}
		flt.Hints(func(string) bool { return true })
		flt.Attributes()
	})
}

func BenchmarkMatchEquality(b *testing.B) {
	for _, bm := range []struct{ name, filter string }{
		{"caseIgnoreHit", "(cn=John Doe)"},
		{"caseIgnoreMiss", "(cn=Jane Roe)"},
		{"nonASCII", "(sn=MÜLLER)"},
		{"andPosixAccount", "(&(objectClass=posixAccount)(uid=jdoe))"},
		{"integer", "(uidNumber=1001)"},
		{"dn", "(memberOf=cn=admins,ou=groups,dc=example,dc=test)"},
	} {
		f := mustParse(b, bm.filter)
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Match(jdoe)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	const s = "(&(objectClass=posixAccount)(|(uid=jdoe)(mail=jdoe@example.test))" +
		"(memberOf=cn=admins,ou=groups,dc=example,dc=test)(uidNumber>=1000)" +
		"(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// slowTree is parse without the quick path.
func slowTree(s string) (Node, error) {
	p, err := ldap.CompileFilter(s)
	if err != nil {
		return nil, err
	}
	n, perr := convert(p)
	if perr != nil {
		return nil, perr
	}
	return n, nil
}

func TestQuickMatchesCompiler(t *testing.T) {
	for _, s := range []string{"(mail=user00001@example.test)", "(objectClass=*)", "(&(objectClass=person)(uid=jdoe))",
		"(|(cn=a)(cn=b)(!(sn=c)))", "(!(&(a=b)(c=*)))", "(cn=Jürgen Müller)", "(2.5.4.3=x)", "(cn;lang-en=x y)",
		"(&(|(a=1)(b=2))(!(c=3))(d=*))"} {
		n, end, ok := quick(s)
		want, err := slowTree(s)
		if !ok || end != len(s) || err != nil || !reflect.DeepEqual(n, want) {
			t.Errorf("quick(%q) = %#v, %d, %v; compiler gives %#v, %v", s, n, end, ok, want, err)
		}
	}
	for _, s := range []string{"(cn=a*)", `(cn=\2a)`, "(cn>=a)", "(cn~=a)", "(cn:dn:=a)", "(&)", "(|)", "(cn=)", "(&(a=b)(c=d*))", "(1bad=x)"} {
		if n, _, ok := quick(s); ok {
			t.Errorf("quick(%q) = %#v, want it left to the compiler", s, n)
		}
	}
}

func FuzzQuick(f *testing.F) {
	for _, s := range allValidFilters() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := scanner{s: s, lim: Limits{}.resolved()}
		if !utf8.ValidString(s) || sc.filter(1) != nil || sc.pos != len(s) {
			return
		}
		n, end, ok := quick(s)
		if !ok {
			return
		}
		want, err := slowTree(s)
		if err != nil || end != len(s) || !reflect.DeepEqual(n, want) {
			t.Fatalf("quick(%q) = %#v (end %d); compiler gives %#v, %v", s, n, end, want, err)
		}
	})
}

// TestEqualityKeyOfANormalisedValue: the key of a value that is its own
// normal form (a lower-cased address, an ID) is that value, not a copy:
// the cache computes one per index key of every entry it writes.
func TestEqualityKeyOfANormalisedValue(t *testing.T) {
	for _, tt := range []struct{ attr, value, want string }{
		{"mail", "user000001@contoso.test", "user000001@contoso.test"},
		{"mail", "User000001@Contoso.test", "user000001@contoso.test"},
		{"cn", "a  b", "a b"},
	} {
		if got, ok := EqualityKey(nil, tt.attr, tt.value); !ok || got != tt.want {
			t.Errorf("EqualityKey(%s, %q) = %q, %v; want %q", tt.attr, tt.value, got, ok, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { EqualityKey(nil, "mail", "user000001@contoso.test") }); n != 0 {
		t.Fatalf("%v allocations for a normalised value", n)
	}
}
