package google

import (
	"encoding/json"
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
