package changelog

import (
	"fmt"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
)

// BenchmarkBase100k publishes a full sync of 100,000 users through the
// change log and applies it to a new replica; it reports the leader's
// commit (with the publish), the replica's catch-up and the stored size.
func BenchmarkBase100k(b *testing.B) {
	const n = 100000
	for range b.N {
		b.StopTimer()
		e := newEnv(b)
		l := newLog(b, e.db.Pool, Options{})
		leader, follower := openStore(b), openStore(b)
		leader.SetPublisher(l.Publisher(e.fence))
		g, err := leader.NewGeneration("corp")
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			u := user(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), fmt.Sprintf("uid=user%06d,ou=people,dc=example,dc=test", i))
			u.Attrs = append(u.Attrs, cache.Attr{Name: "displayName", Values: []string{fmt.Sprintf("User %06d", i)}})
			if err := g.Put(u); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		if err := g.Commit(b.Context(), nil, nil); err != nil {
			b.Fatal(err)
		}
		commit := time.Since(start)
		start = time.Now()
		if err := newLog(b, e.db.NewPool(b), Options{}).CatchUp(b.Context(), follower); err != nil {
			b.Fatal(err)
		}
		apply := time.Since(start)
		var size int64
		if err := e.db.Pool.QueryRow(b.Context(), `SELECT size FROM changelog WHERE seq = 1`).Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(commit.Seconds(), "commit-s")
		b.ReportMetric(apply.Seconds(), "apply-s")
		b.ReportMetric(float64(size)/(1<<20), "stored-MiB")
	}
}
