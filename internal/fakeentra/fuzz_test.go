package fakeentra

import (
	"reflect"
	"testing"
)

// FuzzTokens edits one byte of a sealed token and checks that the fake
// either refuses it or reads back exactly what it sealed, and that the
// query parsers never panic on what a client sends.
func FuzzTokens(f *testing.F) {
	tn := New(f)
	orig := tokenState{Typ: "d", Kind: "users", Sel: []string{"id", "mail"}, Seq: 42, Issued: 1700000000}
	tok := tn.sealer.Seal(orig)
	f.Add(0, byte('A'), "id,mail", "id eq 'x'")
	f.Add(len(tok)-1, byte('z'), "members", "id eq 'a' or id eq 'b'")
	f.Fuzz(func(t *testing.T, at int, b byte, sel, filter string) {
		edited := []byte(tok)
		if at >= 0 && at < len(edited) {
			edited[at] = b
		}
		var st tokenState
		if tn.sealer.Open(string(edited), &st) && !reflect.DeepEqual(st, orig) {
			t.Fatalf("edited token %q accepted as %+v", edited, st)
		}
		_, _ = parseSelect(sel, kindGroup)
		_, _ = parseFilter(filter)
	})
}
