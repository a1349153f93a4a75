package google

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodePage: any answer either decodes into a page whose objects
// carry what the mapping relies on, or is refused with an error; it never
// panics.
func FuzzDecodePage(f *testing.F) {
	for _, s := range []string{
		`{"users":[{"id":"1","primaryEmail":"a@example.test","name":{"fullName":"A"},"aliases":["b@example.test"],"suspended":true}],"nextPageToken":"t"}`,
		`{"groups":[{"id":"g","email":"g@example.test","aliases":null}]}`,
		`{"members":[{"id":"1","type":"USER"},{"email":"x@y.test","type":"EXTERNAL"},{"id":"C1","type":"CUSTOMER"}]}`,
		`{"kind":"admin#directory#users","etag":"\"e\""}`,
		`{"members":[{"type":"ROBOT","id":"1"}]}`,
		`[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePage(body)
		if err != nil {
			if p != nil {
				t.Fatal("a page with an error")
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("invalid JSON %q decoded", body)
		}
		for _, u := range p.Users {
			if u.ID == "" || u.PrimaryEmail == "" {
				t.Fatalf("user without id or primaryEmail: %+v", u)
			}
		}
		for _, g := range p.Groups {
			if g.ID == "" || g.Email == "" {
				t.Fatalf("group without id or email: %+v", g)
			}
		}
		for _, m := range p.Members {
			if (m.Type == memberExternal) == (m.Email == "") && m.Type == memberExternal || m.Type != memberExternal && m.ID == "" {
				t.Fatalf("member without its key: %+v", m)
			}
		}
	})
}

// FuzzScanPage: what scanPage decodes, encoding/json decodes alike.
func FuzzScanPage(f *testing.F) {
	for _, s := range []string{
		`{"kind":"admin#directory#users","etag":"\"e/1\"","users":[{"id":"1","etag":"\"a\\b/c\"","primaryEmail":"a@example.test",` +
			`"name":{"givenName":"A","familyName":"B","fullName":"A B"},"aliases":["b@example.test"],"nonEditableAliases":[],` +
			`"suspended":true,"archived":false,"orgUnitPath":"/","isAdmin":null,"lastLoginTime":"x","emails":[{"a":[1,2.5e3,{"b":null}]}]}],"nextPageToken":"t"}`,
		`{"groups":[{"id":"g","email":"g@example.test","name":"G\n\t","description":null,"aliases":null}]}`,
		`{"members":[{"id":"1","type":"USER","role":"MEMBER"},{"email":"x@y.test","type":"EXTERNAL"}],"nextPageToken":null}`,
		`{"users":[{"ID":"1","id":"2"}]}`, `{"users":[],"users":[{"id":"1"}]}`, `{"users":[null]}`, `{"users":[{"aliases":[null]}]}`,
		`{"users":[{"name":"x"}]}`, `{"users":[{"name":{"fullName":"\u00e9"}}]}`, `{"nextPageToken":1}`, `{"\u0075sers":[]}`, `{"uſers":[]}`,
		`null`, `[]`, ` { } `, `{"users":[{"suspended":"true"}]}`, `{"kind":"a\u00e9\x"}`, `{"etag":"a"}x`, `{"a":1}`,
		`{"nextPageToken":"t",}`, `{"nextPageToken":"t"`, `{"users":[{"id":"1"},]}`, `{"users":[{"aliases":["a",]}]}`, "{\"a\":\"\x01\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanPage(body)
		if !ok {
			return
		}
		var want page
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("scanPage decoded %q, which encoding/json refuses: %v", body, err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q: scanPage %+v, encoding/json %+v", body, *got, want)
		}
	})
}

// TestScanPageReadsDirectoryPages: the pages the Directory API sends, with
// their escaped etags, are read by scanPage, not left to encoding/json.
func TestScanPageReadsDirectoryPages(t *testing.T) {
	for _, body := range [][]byte{usersPageJSON(3),
		[]byte(`{"kind":"admin#directory#members","etag":"\"x/y\"","members":[{"id":"1","email":"a@example.test","type":"USER"}],"nextPageToken":"t"}`)} {
		got, ok := scanPage(body)
		var want page
		if err := json.Unmarshal(body, &want); !ok || err != nil || !reflect.DeepEqual(*got, want) {
			t.Errorf("%s: scanPage %v (%+v), encoding/json %+v (%v)", body, ok, got, want, err)
		}
	}
}
