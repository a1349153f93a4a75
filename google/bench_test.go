package google

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cloudapi"
	dirsync "github.com/dirgate/dirgate/sync"
)

// BenchmarkFull lists a generated account of 20,000 users and 200 groups
// from the fake, over loopback HTTPS, the entries dropped: the source's
// side of a full sync (requests, decoding, mapping), without the cache.
func BenchmarkFull(b *testing.B) {
	a := newAccount(b)
	a.Generate(20000, 200, 1)
	c := *a.conn
	c.Google.RequestsPerMinute = 100000 // the highest allowed: the budget never waits
	s, err := New(&c, nil, cloudapi.WithHTTPClient(a.HTTPClient()), cloudapi.WithClock(a.clk))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		n := 0
		if _, err := s.Full(context.Background(), func(*cache.Entry) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatal("nothing listed")
		}
	}
}

// BenchmarkFullSync is a full sync of the same account into a fresh
// cache: the listing with the engine's writes.
func BenchmarkFullSync(b *testing.B) {
	a := newAccount(b)
	a.Generate(20000, 200, 1)
	c := *a.conn
	c.Google.RequestsPerMinute = 100000
	s, err := New(&c, nil, cloudapi.WithHTTPClient(a.HTTPClient()), cloudapi.WithClock(a.clk))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		st, err := cache.Open(b.TempDir(), cache.Options{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := dirsync.New(st, st.States(), nil).Run(context.Background(), &c, s, dirsync.Options{Trigger: "bench"})
		if err != nil || res.Added == 0 {
			b.Fatalf("%+v, %v", res, err)
		}
		b.StopTimer()
		st.Close()
		b.StartTimer()
	}
}

// usersPageJSON is a users page of n users shaped like the generated
// account's.
func usersPageJSON(n int) []byte {
	p := page{NextPageToken: "tok"}
	for i := range n {
		u := user{ID: fmt.Sprintf("1%020d", i), Etag: `"abcdefghijklmnopqrstuvwx"`, PrimaryEmail: fmt.Sprintf("user%06d@example.test", i),
			Aliases: []string{fmt.Sprintf("u.%06d@example.test", i)}, NonEditableAliases: []string{fmt.Sprintf("user%06d@alias.example.test", i)},
			OrgUnitPath: "/", Suspended: i%50 == 49}
		u.Name.GivenName, u.Name.FamilyName, u.Name.FullName = "User", fmt.Sprintf("%06d", i), fmt.Sprintf("User %06d", i)
		p.Users = append(p.Users, u)
	}
	b, _ := json.Marshal(p)
	return b
}

// BenchmarkDecodeUsersPage decodes a full users page.
func BenchmarkDecodeUsersPage(b *testing.B) {
	body := usersPageJSON(500)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodePage(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapUsersPage maps the users of a full page to entries.
func BenchmarkMapUsersPage(b *testing.B) {
	a := newAccount(b)
	s := a.source(b, a.conn)
	p, _ := decodePage(usersPageJSON(500))
	b.ReportAllocs()
	for b.Loop() {
		for i := range p.Users {
			s.userEntry(&p.Users[i])
		}
	}
}
