package dirsync

import (
	"context"
	"fmt"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

// sliceSource passes copies of its entries, already built: what the
// engine costs above the cache's own writes.
type sliceSource []*cache.Entry

func (s sliceSource) Full(_ context.Context, emit func(*cache.Entry) error) (Listing, error) {
	for _, e := range s {
		c := *e
		if err := emit(&c); err != nil {
			return Listing{}, err
		}
	}
	return Listing{Host: "bench"}, nil
}

// BenchmarkEngineFull runs full syncs of 30,000 users into an empty
// on-disk cache; ns/entry compares with cache's BenchmarkGenerationEntra.
func BenchmarkEngineFull(b *testing.B) {
	const n = 30000
	src := make(sliceSource, n)
	for i := range src {
		upn := fmt.Sprintf("user%06d@contoso.test", i)
		var a cache.Attrs
		a.Add("objectClass", "top", "person", "organizationalPerson", "inetOrgPerson")
		a.Add("cn", fmt.Sprintf("User %06d", i))
		a.Add("uid", upn)
		a.Add("mail", upn)
		a.Add("displayName", fmt.Sprintf("User %06d", i))
		a.Add("sn", fmt.Sprintf("%06d", i))
		src[i] = &cache.Entry{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), DN: fmt.Sprintf("uid=%s,ou=users,o=contoso", upn),
			Kind: cache.KindUser, Addresses: []string{upn}, Attrs: a}
	}
	c := &config.Connector{Name: "c", Type: "openldap", Safety: config.Safety{MaxDeletes: 5, MaxDeletePercent: 50}}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		s, err := cache.Open(b.TempDir(), cache.Options{})
		if err != nil {
			b.Fatal(err)
		}
		e := New(s, s.States(), nil)
		b.StartTimer()
		if res, err := e.Run(context.Background(), c, src, Options{Mode: ModeFull}); err != nil || res.Added != n {
			b.Fatalf("%v %+v", err, res)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}
