package pgstate

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dirgate/dirgate/internal/testenv"
	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/statetest"
)

// testPool returns a pool on a fresh schema of the test database, dropped
// when the test ends, so that tests and runs do not see each other's rows.
// It is not migrated.
func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := testenv.PostgresURL(t)
	ctx := context.WithoutCancel(t.Context())
	schema := "t_" + strings.ToLower(rand.Text())
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, url)
		if err == nil {
			_, err = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 20 // the concurrency tests run up to 20 at once
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// Open every connection now: connecting takes longer than a statement,
	// so a concurrency test on a cold pool would barely overlap.
	conns := make([]*pgxpool.Conn, cfg.MaxConns)
	for i := range conns {
		if conns[i], err = pool.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range conns {
		c.Release()
	}
	return pool
}

// testStore returns a store on a fresh, migrated schema.
func testStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	pool := testPool(t)
	if err := Migrate(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	s, err := New(pool, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s, pool
}

func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Stores {
		s, _ := testStore(t)
		return s.Stores()
	})
}

// Replicas starting at once migrate the schema once: the others wait on
// the advisory lock and find nothing left to do.
func TestMigrateConcurrently(t *testing.T) {
	pool := testPool(t)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = Migrate(t.Context(), pool) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ms := Migrations()
	var count, max int
	if err := pool.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&count, &max); err != nil {
		t.Fatal(err)
	}
	if count != len(ms) || max != ms[len(ms)-1].Version {
		t.Errorf("schema_migrations has %d versions up to %d, want %d up to %d", count, max, len(ms), ms[len(ms)-1].Version)
	}
	if err := Migrate(t.Context(), pool); err != nil {
		t.Errorf("Migrate of an up-to-date schema: %v", err)
	}
}

// The signing keys are stored encrypted, and only the same key opens them.
func TestSigningKeysEncrypted(t *testing.T) {
	s, pool := testStore(t)
	ctx := t.Context()
	plain := []byte(`{"keys":[{"kid":"k1","d":"very-secret-private-key-material"}]}`)
	if err := s.PublishSigningKeys(ctx, nil, plain); err != nil {
		t.Fatal(err)
	}
	var sealed []byte
	if err := pool.QueryRow(ctx, `SELECT sealed FROM signing_keys`).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("very-secret")) || bytes.Contains(sealed, plain[:16]) {
		t.Fatalf("stored key set holds the plaintext: %q", sealed)
	}
	if got, err := s.SigningKeys(ctx); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("SigningKeys = %q, %v; want the published set", got, err)
	}
	other, err := New(pool, bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.SigningKeys(ctx); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("SigningKeys with another key = %v, want ErrCorrupt", err)
	}
	for _, n := range []int{0, 16, 33} {
		if _, err := New(pool, make([]byte, n)); err == nil {
			t.Errorf("New accepted a %d-byte key", n)
		}
	}
}

// The store persists: a second store on the same schema (another replica)
// sees what the first wrote, and a code one replica spent is spent for the
// other.
func TestReplicasShareState(t *testing.T) {
	s1, pool := testStore(t)
	s2, err := New(pool, bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	if err := s1.PutCode(ctx, "h", state.Code{ClientID: "app", Expires: now.Add(time.Minute)}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.RedeemCode(ctx, "h", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.RedeemCode(ctx, "h", now); !errors.Is(err, state.ErrReplayed) {
		t.Errorf("redemption on the other replica = %v, want ErrReplayed", err)
	}
	if err := s1.PublishSigningKeys(ctx, nil, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if got, err := s2.SigningKeys(ctx); err != nil || string(got) != "v1" {
		t.Errorf("other replica's SigningKeys = %q, %v", got, err)
	}
	if err := s2.PublishSigningKeys(ctx, nil, []byte("v1b")); !errors.Is(err, state.ErrConflict) {
		t.Errorf("second first publication = %v, want ErrConflict", err)
	}
}
