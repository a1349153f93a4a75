package entra

import (
	"context"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/internal/fakeentra"
)

// BenchmarkFull reads a generated tenant of 10000 users and 100 groups in
// full, its entries dropped: the source's own cost, and the fake's.
func BenchmarkFull(b *testing.B) {
	tn := newTenant(b, "", fakeentra.WithPageSize(200))
	tn.Generate(10000, 100, 1)
	s := tn.source(b, tn.conn)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Full(context.Background(), func(*cache.Entry) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
