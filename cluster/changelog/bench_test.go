package changelog

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
)

// BenchmarkBase100k publishes a full sync of 100,000 users through the
// change log and applies it to a new replica; it reports the leader's
// commit (with the publish), the replica's catch-up, the stored size, and
// for each of the two the peak of live heap above what it started from and
// the process's peak RSS (Linux; both stores live in this process, so the
// replica's RSS includes the leader's store).
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
		m := startMemWatch()
		start := time.Now()
		if err := g.Commit(b.Context(), nil, nil); err != nil {
			b.Fatal(err)
		}
		commit := time.Since(start)
		commitHeap, commitRSS := m.stop()
		m = startMemWatch()
		start = time.Now()
		if err := newLog(b, e.db.NewPool(b), Options{}).CatchUp(b.Context(), follower); err != nil {
			b.Fatal(err)
		}
		apply := time.Since(start)
		applyHeap, applyRSS := m.stop()
		var size int64
		if err := e.db.Pool.QueryRow(b.Context(), `SELECT size FROM changelog WHERE seq = 1`).Scan(&size); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(commit.Seconds(), "commit-s")
		b.ReportMetric(apply.Seconds(), "apply-s")
		b.ReportMetric(float64(size)/(1<<20), "stored-MiB")
		b.ReportMetric(float64(commitHeap)/(1<<20), "commit-heap-MiB")
		b.ReportMetric(float64(applyHeap)/(1<<20), "apply-heap-MiB")
		b.ReportMetric(float64(commitRSS)/(1<<20), "commit-rss-MiB")
		b.ReportMetric(float64(applyRSS)/(1<<20), "apply-rss-MiB")
	}
}

// memWatch samples the live heap while a phase runs.
type memWatch struct {
	base, peak uint64
	done       chan struct{}
	stopped    chan struct{}
}

const heapObjects = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// startMemWatch collects garbage, returns memory to the OS and resets the
// process's RSS high-water mark, then samples the heap every few ms.
func startMemWatch() *memWatch {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM
	m := &memWatch{base: heapNow(), done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(m.stopped)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			m.peak = max(m.peak, heapNow())
			select {
			case <-m.done:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// stop returns the peak heap above the start and the peak RSS (0 where
// /proc is missing).
func (m *memWatch) stop() (heap, rss uint64) {
	close(m.done)
	<-m.stopped
	return m.peak - min(m.base, m.peak), peakRSS()
}

// peakRSS reads VmHWM from /proc/self/status.
func peakRSS() uint64 {
	f, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(f))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmHWM:")); ok {
			kb, _ := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			return kb << 10
		}
	}
	return 0
}
