package cache

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// An entry encoded before it was hashed (its body written in place in the
// value) is stored exactly as one hashed first (its body copied), and
// keeps a body that the value's tail cannot overwrite.
func TestEncodeInPlaceMatchesHashed(t *testing.T) {
	onPremUser := entraLike(7)
	onPremUser.Attrs = append(onPremUser.Attrs,
		Attr{Name: onPremSyncAttr, Values: []string{"TRUE"}},
		Attr{Name: onPremAttr, Values: []string{"AAECAwQFBgcICQoLDA0ODw=="}})
	group := &Entry{ID: "g1", DN: "cn=G,ou=groups,o=x", Kind: KindGroup, Members: []string{"cn=a,o=x", "cn=b,o=x"},
		Attrs: []Attr{{Name: "cn", Values: []string{"G"}}, {Name: "description", Values: []string{strings.Repeat("long ", 60)}}}}
	for i, e := range []*Entry{entraLike(1), onPremUser, group, {ID: "empty", Kind: KindUser}} {
		e.Normalize()
		e.DNKey = dnKeyOf(e.DN)
		hashed := *e
		sum := hashed.Hash()
		want := hashed.encode()
		inPlace := *e
		got := inPlace.encode()
		if !bytes.Equal(got, want) {
			t.Fatalf("entry %d: encoded in place\n%x\nwant\n%x", i, got, want)
		}
		if !inPlace.hashed || inPlace.bodyHash != sum || !bytes.Equal(inPlace.body, hashed.body) {
			t.Fatalf("entry %d: the in-place encoding did not keep the body and hash", i)
		}
		if len(inPlace.body) != cap(inPlace.body) {
			t.Fatalf("entry %d: an append to the kept body would write into the value", i)
		}
		if again := inPlace.encode(); !bytes.Equal(again, want) {
			t.Fatalf("entry %d: encoding from the kept body differs", i)
		}
	}
}

// Normalize orders attributes by lower-cased name, keeping the order of
// names equal but for case, and keeps the encoding of a sorted entry.
func TestNormalizeStable(t *testing.T) {
	e := &Entry{ID: "x", DN: "cn=x", Kind: KindUser, Attrs: []Attr{
		{Name: "sn", Values: []string{"1"}}, {Name: "CN", Values: []string{"2"}},
		{Name: "mail", Values: []string{"3"}}, {Name: "cn", Values: []string{"4"}}, {Name: "Mail", Values: []string{"5"}}}}
	e.Normalize()
	var got []string
	for _, a := range e.Attrs {
		got = append(got, a.Name+"="+a.Values[0])
	}
	if want := "CN=2 cn=4 mail=3 Mail=5 sn=1"; strings.Join(got, " ") != want {
		t.Fatalf("normalized order %q, want %q", strings.Join(got, " "), want)
	}
	e.Hash()
	e.Normalize()
	if e.body == nil || !e.hashed {
		t.Fatal("Normalize of a sorted entry dropped its encoding")
	}
}

// indexedName must agree with the strings.ToLower lookup it replaced: the
// index keys of cached entries depend on it.
func TestIndexedNameMatchesToLower(t *testing.T) {
	names := []string{"mail", "Mail", "MAIL", "uid", "cn", "CN", "userPrincipalName", "USERPRINCIPALNAME", "proxyAddresses",
		"sAMAccountName", "entryUUID", "employeeNumber", "givenName", "objectClass", "", "m", "mailx",
		"\u212Aey", "MAİL", "máil", strings.Repeat("a", 40), "userPrincipalName" + strings.Repeat("x", 30)}
	for name := range IndexedAttrs {
		names = append(names, strings.ToUpper(name))
	}
	for _, name := range names {
		lower := strings.ToLower(name)
		got, ok := indexedName(name)
		if ok != IndexedAttrs[lower] || (ok && got != lower) {
			t.Errorf("indexedName(%q) = %q, %v; want %q, %v", name, got, ok, lower, IndexedAttrs[lower])
		}
	}
}

// The membership keys cut from a generation's key buffer are laid out as
// member.go describes.
func TestMemberKeysLayout(t *testing.T) {
	prefix := genPrefix("c", 42)
	mk := dnKeyOf("CN=Someone,O=X")
	gid := "g1"
	kb := keyBuf{buf: make([]byte, 0, memberKeysSize(len(prefix), gid, mk)), prefix: prefix}
	fwd, rev := kb.memberKeys(gid, mk)
	if want := fmt.Sprintf("%s%c%s\x00%s", prefix, tMember, gid, mk); string(fwd) != want {
		t.Errorf("forward key %q, want %q", fwd, want)
	}
	if want := fmt.Sprintf("%s%c%c%s%s", prefix, tMemberOf, len(mk), mk, gid); string(rev) != want {
		t.Errorf("reverse key %q, want %q", rev, want)
	}
	if !bytes.HasPrefix(rev, memberOfPrefix("c", 42, mk)) {
		t.Error("the reverse key does not start with the member's prefix")
	}
	if len(kb.buf) != cap(kb.buf) {
		t.Errorf("memberKeysSize is %d, the keys take %d", cap(kb.buf), len(kb.buf))
	}
}
