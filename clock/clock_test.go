package clock

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestFakeSleepAdvances(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(t0)
	if err := f.Sleep(context.Background(), 3*time.Second); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Minute)
	if got, want := f.Now(), t0.Add(63*time.Second); !got.Equal(want) {
		t.Fatalf("Now = %v, want %v", got, want)
	}
	if f.Slept() != 3*time.Second {
		t.Fatalf("Slept = %v", f.Slept())
	}
}

func TestFakeSleepCancelled(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Sleep(ctx, time.Second); err == nil {
		t.Fatal("Sleep on a cancelled context returned nil")
	}
	if f.Slept() != 0 {
		t.Fatalf("cancelled Sleep advanced the clock by %v", f.Slept())
	}
}

func TestFakeConcurrent(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				f.Advance(time.Millisecond)
				_ = f.Sleep(context.Background(), time.Millisecond)
				_ = f.Now()
			}
		}()
	}
	wg.Wait()
	if got := f.Now().Sub(time.Unix(0, 0)); got != 1600*time.Millisecond {
		t.Fatalf("elapsed %v, want 1.6s", got)
	}
}

func TestRealSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Real.Sleep(ctx, time.Hour); err == nil {
		t.Fatal("Real.Sleep ignored a cancelled context")
	}
	if err := Real.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
