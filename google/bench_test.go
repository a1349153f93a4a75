package google

import (
	"context"
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
