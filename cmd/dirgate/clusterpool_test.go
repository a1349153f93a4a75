package main

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/config"
)

// silentServer accepts connections and never answers: a database whose
// host drops every packet after the handshake, or hangs.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

// TestClusterPoolConnectTimeout: a call on a database that never answers
// fails after the connect timeout (5s, or the URL's connect_timeout)
// instead of hanging for as long as its context allows.
func TestClusterPoolConnectTimeout(t *testing.T) {
	addr := silentServer(t)
	for _, tc := range []struct {
		name     string
		query    string
		min, max time.Duration
	}{
		{"default", "", dbConnectTimeout - time.Second, 4 * dbConnectTimeout},
		{"the URL's", "?connect_timeout=1", 0, 3 * dbConnectTimeout / 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := clusterPool(t.Context(), &config.Cluster{Postgres: "postgres://dirgate@" + addr + "/dirgate" + tc.query})
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			t0 := time.Now()
			err = pool.Ping(ctx)
			took := time.Since(t0)
			if err == nil || ctx.Err() != nil || took < tc.min || took > tc.max {
				t.Fatalf("ping of a silent database: %v after %v, want a failure after %v to %v", err, took, tc.min, tc.max)
			}
		})
	}
}
