package main

import (
	"context"
	"time"
)

// retryBackoff calls try after a second, then after waits doubling up to
// 30s, until it succeeds (true) or ctx ends (false). Each failure while
// ctx lasts goes to failed, with the wait before the next try.
func retryBackoff(ctx context.Context, try func() error, failed func(err error, next time.Duration)) bool {
	for wait := time.Second; ; {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		err := try()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		wait = min(2*wait, 30*time.Second)
		failed(err, wait)
	}
}
