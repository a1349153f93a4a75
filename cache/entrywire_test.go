package cache

import (
	"reflect"
	"testing"
)

func TestEncodeEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{"empty", Entry{Connector: "c", ID: "1", Kind: KindUser}},
		{"user", Entry{Connector: "ad", ID: "guid", DN: "CN=A,DC=x", DNKey: "cn=a,dc=x", Kind: KindUser, Disabled: true,
			Addresses: []string{"a@x", "b@x"}, Attrs: []Attr{{"mail", []string{"a@x"}}, {"cn", []string{"A"}}}}},
		{"group", Entry{Connector: "ldap", ID: "g", DN: "cn=g", Kind: KindGroup, Members: []string{"cn=a", "cn=b"},
			Attrs: []Attr{{"cn", []string{"g"}}, {"empty", nil}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.e
			attrs := append([]Attr(nil), in.Attrs...)
			b, err := EncodeEntry(&in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in.Attrs, attrs) || in.hashed {
				t.Fatal("EncodeEntry changed its entry")
			}
			out, err := DecodeEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.e
			want.Normalize()
			if out.Hash() != want.Hash() {
				t.Fatalf("hash %x, want %x", out.Hash(), want.Hash())
			}
			out.body, out.bodyHash, out.hashed = nil, 0, false
			want.body, want.bodyHash, want.hashed = nil, 0, false
			if !reflect.DeepEqual(*out, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", *out, want)
			}
		})
	}
}

func TestEncodeEntryHashIsReceiversHash(t *testing.T) {
	// Attributes out of order: the hash is the normalised entry's, which
	// is what the receiver computes after decoding.
	e := &Entry{Connector: "c", ID: "1", DN: "cn=a", Kind: KindUser, Attrs: []Attr{{"sn", []string{"a"}}, {"cn", []string{"a"}}}}
	b, h, err := EncodeEntryHash(e, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	out.Normalize()
	if out.Hash() != h {
		t.Fatalf("hash %x, receiver's %x", h, out.Hash())
	}
	// A hash the caller leaves out is not encoded.
	var asked uint64
	if b, h2, err := EncodeEntryHash(e, func(hash uint64) bool { asked = hash; return true }); err != nil || b != nil || h2 != h || asked != h {
		t.Fatalf("skipped: %d bytes, hash %x (asked %x), %v; want none and %x", len(b), h2, asked, err, h)
	}
}

func TestUnchangedStandIn(t *testing.T) {
	u := Unchanged("1", 42)
	if !u.IsUnchanged() || u.Hash() != 42 || u.ID != "1" {
		t.Fatalf("stand-in %+v", u)
	}
	if (&Entry{ID: "1"}).IsUnchanged() {
		t.Fatal("an entry is a stand-in")
	}
	if _, err := EncodeEntry(u); err == nil {
		t.Fatal("a stand-in was encoded")
	}
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g, err := s.NewGeneration("c")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Abort()
	if err := g.Put(Unchanged("1", 42)); err == nil {
		t.Fatal("a stand-in was written")
	}
}

func TestDecodeEntryRefusesPartial(t *testing.T) {
	e := &Entry{Connector: "c", ID: "1", partial: true}
	if _, err := EncodeEntry(e); err == nil {
		t.Fatal("a partial entry was encoded")
	}
	if _, err := DecodeEntry([]byte{5, 'a'}); err == nil {
		t.Fatal("truncated input decoded")
	}
}

func FuzzDecodeEntry(f *testing.F) {
	b, _ := EncodeEntry(&Entry{Connector: "c", ID: "1", DN: "cn=a", Kind: KindUser, Attrs: []Attr{{"cn", []string{"a"}}}})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err != nil {
			return
		}
		again, err := EncodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := DecodeEntry(again)
		if err != nil {
			t.Fatal(err)
		}
		e.Normalize()
		if e.Hash() != e2.Hash() || e.DNKey != e2.DNKey || e.ID != e2.ID {
			t.Fatal("re-encoding changed the entry")
		}
	})
}
