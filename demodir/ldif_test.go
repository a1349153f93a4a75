package demodir

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseLDIF(t *testing.T) {
	in := "# comment\ndn: cn=a,dc=x\ncn: a\ndescription: folded\n  line\ncn:: w7w=\n\ndn:: Y249Yixk\n Yz14\nsn: b\n"
	recs, err := parseLDIF(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].dn != "cn=a,dc=x" || recs[1].dn != "cn=b,dc=x" {
		t.Fatalf("records = %+v", recs)
	}
	if got := recs[0].values("CN"); len(got) != 2 || got[1] != "ü" {
		t.Fatalf("cn = %q", got)
	}
	if got := recs[0].values("description"); got[0] != "folded line" {
		t.Fatalf("folded = %q", got)
	}
	for _, bad := range []string{"cn: a\n", "dn: a\ndn: b\n", "dn: a\nchangetype: add\n", "dn: a\nnocolon\n", " x\n", "dn: a\nx:: !!\n", "dn: a\nx:< file:///etc/passwd\n"} {
		if _, err := parseLDIF(strings.NewReader(bad)); err == nil {
			t.Errorf("parseLDIF(%q) accepted", bad)
		}
	}
}

func TestBundledDemoParses(t *testing.T) {
	recs, err := parseLDIF(bytes.NewReader(demoLDIF))
	if err != nil {
		t.Fatal(err)
	}
	users := 0
	for _, r := range recs {
		if len(r.values("entryUUID")) != 1 {
			t.Errorf("%s has no entryUUID", r.dn)
		}
		for _, oc := range r.values("objectClass") {
			if oc == "inetOrgPerson" {
				users++
			}
		}
	}
	if users != 5 {
		t.Fatalf("%d demo users, want 5", users)
	}
}

func FuzzParseLDIF(f *testing.F) {
	f.Add([]byte(demoLDIF))
	f.Add([]byte("dn: cn=a\n cont\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := parseLDIF(bytes.NewReader(b))
		if err == nil {
			for _, r := range recs {
				_ = r.values("dn")
			}
		}
	})
}
