package cloudapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dirgate/dirgate/clock"
)

// flaky answers status (with retryAfter, if set) to the first fails
// requests, then {"ok":true}; it records every request URI.
func flaky(t *testing.T, fails, status int, retryAfter string) (*httptest.Server, *[]string) {
	t.Helper()
	var n atomic.Int32
	var uris []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris = append(uris, r.URL.RequestURI())
		if int(n.Add(1)) <= fails {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":{"code":"TooManyRequests","message":"slow down"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &uris
}

func TestRetries(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		fails      int
		status     int
		retryAfter string
		wantErr    error
		minSlept   time.Duration
		maxSlept   time.Duration
	}{
		{"429 with Retry-After seconds", 2, 429, "7", nil, 14 * time.Second, 14 * time.Second},
		{"503 with Retry-After date", 1, 503, t0.Add(30 * time.Second).Format(http.TimeFormat), nil, 30 * time.Second, 30 * time.Second},
		{"429 without Retry-After backs off", 3, 429, "", nil, (1 + 2 + 4) * time.Second / 2, (1 + 2 + 4) * time.Second},
		{"retry cap", 10, 429, "1", ErrRetriesExhausted, 3 * time.Second, 3 * time.Second},
		{"404 is not retried", 1, 404, "", nil, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, uris := flaky(t, tc.fails, tc.status, tc.retryAfter)
			clk := clock.NewFake(t0)
			c := &Client{HTTP: srv.Client(), Clock: clk, MaxRetries: 3}
			var out struct{ OK bool }
			u := srv.URL + "/v1.0/users/delta?$skiptoken=abc"
			err := c.GetJSON(context.Background(), u, &out)
			var he *HTTPError
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			case tc.status == 404:
				if !errors.As(err, &he) || he.Status != 404 || he.Code != "TooManyRequests" {
					t.Fatalf("err = %#v, want the 404 as *HTTPError", err)
				}
			case err != nil || !out.OK:
				t.Fatalf("GetJSON = %v, %+v", err, out)
			}
			if s := clk.Slept(); s < tc.minSlept || s > tc.maxSlept {
				t.Errorf("slept %v, want %v to %v", s, tc.minSlept, tc.maxSlept)
			}
			for _, got := range *uris {
				if got != "/v1.0/users/delta?$skiptoken=abc" {
					t.Errorf("request %q, want the same link every time", got)
				}
			}
		})
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	srv, uris := flaky(t, 1, 429, "3600")
	c := &Client{HTTP: srv.Client(), Clock: clock.NewFake(time.Unix(0, 0)), MaxRetryAfter: time.Minute}
	if err := c.GetJSON(context.Background(), srv.URL, new(any)); err == nil {
		t.Fatal("a Retry-After beyond MaxRetryAfter was waited for")
	}
	if len(*uris) != 1 {
		t.Fatalf("%d requests, want 1", len(*uris))
	}
}

func TestGarbageJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"value": [`))
	}))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), Clock: clock.NewFake(time.Unix(0, 0))}
	err := c.GetJSON(context.Background(), srv.URL+"/x?$deltatoken=SECRETISH", new(any))
	var de *DecodeError
	if !errors.As(err, &de) || de.Path != srv.URL+"/x" {
		t.Fatalf("err = %v, want a DecodeError naming the path without the query", err)
	}
}

// TestBudgetCalledPerAttempt: every attempt, retries included, goes
// through the budget, and tells it of its answer before the next begins.
func TestBudgetCalledPerAttempt(t *testing.T) {
	srv, _ := flaky(t, 2, 503, "1")
	var calls, done int
	c := &Client{HTTP: srv.Client(), Clock: clock.NewFake(time.Unix(0, 0)),
		Budget: func(context.Context) (func(), error) {
			if calls != done {
				t.Errorf("attempt %d began before attempt %d was answered", calls+1, calls)
			}
			calls++
			return func() { done++ }, nil
		}}
	if err := c.GetJSON(context.Background(), srv.URL, new(any)); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || done != 3 {
		t.Fatalf("budget called %d times and told of %d answers, want 3 and 3", calls, done)
	}
}

func TestDecodeErrorBody(t *testing.T) {
	for _, tc := range []struct{ body, code, msg string }{
		{`{"error":{"code":"syncStateNotFound","message":"expired"}}`, "syncStateNotFound", "expired"},
		{`{"error":{"code":403,"message":"quota","errors":[{"reason":"rateLimitExceeded"}]}}`, "rateLimitExceeded", "quota"},
		{`<html>`, "", ""},
	} {
		if c, m := decodeErrorBody([]byte(tc.body)); c != tc.code || m != tc.msg {
			t.Errorf("decodeErrorBody(%s) = %q, %q", tc.body, c, m)
		}
	}
}

func FuzzDecodeErrorBody(f *testing.F) {
	f.Add([]byte(`{"error":{"code":"x","message":"y"}}`))
	f.Add([]byte(`{"error":{"code":1,"errors":[{"reason":"r"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) { decodeErrorBody(b) })
}

// TestTotalWaitBounded: a server that keeps asking for long Retry-Afters
// fails the request after MaxTotalWait of waiting, not after MaxRetries of
// them.
func TestTotalWaitBounded(t *testing.T) {
	srv, uris := flaky(t, 100, 429, "600")
	clk := clock.NewFake(time.Unix(0, 0))
	c := &Client{HTTP: srv.Client(), Clock: clk, MaxTotalWait: 15 * time.Minute}
	err := c.GetJSON(context.Background(), srv.URL, new(any))
	if !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("err = %v, want ErrRetriesExhausted", err)
	}
	if clk.Slept() != 10*time.Minute || len(*uris) != 2 {
		t.Fatalf("waited %s over %d requests, want 10m0s over 2", clk.Slept(), len(*uris))
	}
}
