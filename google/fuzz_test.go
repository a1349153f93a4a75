package google

import (
	"encoding/json"
	"reflect"
	"testing"

	jsonv1 "github.com/go-json-experiment/json/v1"
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

// FuzzDecodeLikeEncodingJSON: pages are decoded with the json v2
// experiment's v1 API (over twice as fast), which must read them as
// encoding/json does: the same page, or both refuse.
func FuzzDecodeLikeEncodingJSON(f *testing.F) {
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
	f.Add(usersPageJSON(3))
	f.Fuzz(func(t *testing.T, body []byte) {
		var got, want page
		gotErr, wantErr := jsonv1.Unmarshal(body, &got), json.Unmarshal(body, &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: json v1 API %v, encoding/json %v", body, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: json v1 API %+v, encoding/json %+v", body, got, want)
		}
	})
}
