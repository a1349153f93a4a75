package readahead

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// count reads the numbers from 0 to n-1, failing with end after them.
func count(n int, end error) func(context.Context, func(int) error) error {
	return func(ctx context.Context, yield func(int) error) error {
		for i := range n {
			if err := yield(i); err != nil {
				return err
			}
		}
		return end
	}
}

func TestRun(t *testing.T) {
	errRead, errFn := errors.New("read failed"), errors.New("fn failed")
	for _, tc := range []struct {
		name   string
		depth  int
		read   func(context.Context, func(int) error) error
		failAt int // fn fails on this item; -1: never
		want   []int
		err    error
	}{
		{"all items in order", 0, count(5, nil), -1, []int{0, 1, 2, 3, 4}, nil},
		{"deep buffer", 3, count(5, nil), -1, []int{0, 1, 2, 3, 4}, nil},
		{"read's error after its items", 2, count(3, errRead), -1, []int{0, 1, 2}, errRead},
		{"fn's error stops the read", 0, count(100, nil), 2, []int{0, 1, 2}, errFn},
		{"fn's error wins over read's", 4, count(3, errRead), 1, []int{0, 1}, errFn},
		{"nothing read", 1, count(0, nil), -1, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			err := Run(context.Background(), tc.depth, tc.read, func(i int) error {
				got = append(got, i)
				if i == tc.failAt {
					return errFn
				}
				return nil
			})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("fn took %v, want %v", got, tc.want)
			}
		})
	}
}

// A read that only ends with its context ends when fn fails, and when the
// caller's context ends; Run waits for it either way.
func TestRunEndsTheRead(t *testing.T) {
	forever := func(ended chan<- struct{}) func(context.Context, func(int) error) error {
		return func(ctx context.Context, yield func(int) error) error {
			defer close(ended)
			for i := 0; ; i++ {
				if err := yield(i); err != nil {
					return err
				}
			}
		}
	}
	ended := make(chan struct{})
	errFn := errors.New("enough")
	if err := Run(context.Background(), 1, forever(ended), func(i int) error {
		if i == 10 {
			return errFn
		}
		return nil
	}); !errors.Is(err, errFn) {
		t.Fatalf("err %v, want fn's", err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("Run returned before the read ended")
	}

	ctx, cancel := context.WithCancel(context.Background())
	ended = make(chan struct{})
	err := Run(ctx, 0, forever(ended), func(i int) error {
		if i == 10 {
			cancel()
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v after the context ended, want context.Canceled", err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("Run returned before the read ended")
	}
}
