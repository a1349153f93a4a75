package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cluster/schema"
	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/pgstate"
)

func migrateCmd() *cobra.Command {
	var fromCache string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the cluster's PostgreSQL schema migrations; with --from-cache, copy a single instance's state into PostgreSQL",
		Long: `Apply the pending schema migrations of the database named by cluster.postgres
and print what was applied.

With --from-cache DIR, also copy the state of a single instance's cache into
PostgreSQL: refresh tokens (with their families and revocations), the OIDC
signing keys, offline verifiers, the sync engine's state and the sync
history. Directory data is not copied: the first leader's sync (or the old
cache's snapshot, when that instance joins as a replica) publishes it. Stop
the instance first. Running it again copies only what is missing; records
the cluster already changed are kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, pool, err := clusterDB(cmd)
			if err != nil {
				return err
			}
			defer pool.Close()
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			applied, err := schema.Apply(ctx, pool)
			if err != nil {
				return err
			}
			for _, name := range applied {
				fmt.Fprintln(out, "applied", name)
			}
			if len(applied) == 0 {
				fmt.Fprintln(out, "schema up to date")
			}
			if fromCache == "" {
				return nil
			}
			src, err := openCacheToCopy(fromCache)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := pgstate.New(pool, c.Key())
			if err != nil {
				return err
			}
			rep, err := copyState(ctx, src, dst.Stores(), time.Now())
			rep.print(out)
			return err
		},
	}
	cmd.Flags().StringVar(&fromCache, "from-cache", "", "copy the state of the single-instance cache in this directory into PostgreSQL")
	return cmd
}

// openCacheToCopy opens the cache in dir, refusing a directory without one
// (Open would create an empty cache there) and one a running server holds.
func openCacheToCopy(dir string) (*cache.Store, error) {
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return nil, fmt.Errorf("%s holds no dirgate cache (no MANIFEST): give the directory of cache.dir", dir)
	}
	if err := badgerLockFree(dir); err != nil {
		return nil, err
	}
	return cache.Open(dir, cache.Options{})
}

// badgerLockFree fails when a process holds Badger's lock on dir, trying
// the lock the way Badger takes it (flock on the directory). Badger's own
// error on a held lock carries no error value to test.
func badgerLockFree(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("the cache in %s is open by a running dirgate (Badger's directory lock is held): stop that server first, so that no token or run changes after it was copied", dir)
	}
	if err != nil {
		return fmt.Errorf("check the lock of %s: %w", dir, err)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}

// copyCount is what happened to one kind of record.
type copyCount struct {
	name    string
	copied  int
	present int // already in PostgreSQL, kept
	skipped int // not worth copying (expired)
	note    string
}

// copyReport lists the counts of every kind, in copy order.
type copyReport []*copyCount

func (r copyReport) print(w io.Writer) {
	for _, c := range r {
		fmt.Fprintf(w, "%s: %d copied, %d already present, %d expired and skipped\n", c.name, c.copied, c.present, c.skipped)
		if c.note != "" {
			fmt.Fprintln(w, "  note:", c.note)
		}
	}
}

// copyState copies src's state into dst. It is idempotent, and never
// overwrites a record dst already holds: after the cluster started, its
// record (a rotated token, a newer verifier or engine state) is the true
// one.
func copyState(ctx context.Context, src *cache.Store, dst state.Stores, now time.Time) (copyReport, error) {
	tokens := &copyCount{name: "refresh tokens"}
	families := &copyCount{name: "revoked token families"}
	keys := &copyCount{name: "signing key sets"}
	verifiers := &copyCount{name: "offline verifiers"}
	engines := &copyCount{name: "engine states"}
	runs := &copyCount{name: "sync runs"}
	rep := copyReport{tokens, families, keys, verifiers, engines, runs}
	steps := []func() error{
		func() error {
			return src.ExportRefresh(ctx, func(hash string, r state.Refresh) error {
				if now.After(r.Expires) {
					tokens.skipped++
					return nil
				}
				// Refresh finds live tokens only; a token of a revoked
				// family stays revoked when put again.
				return putMissing(tokens, func() error { _, err := dst.Grants.Refresh(ctx, hash, now); return err },
					func() error { return dst.Grants.PutRefresh(ctx, hash, r) })
			})
		},
		func() error {
			return src.ExportRevokedFamilies(ctx, func(family string, at time.Time) error {
				families.copied++ // a revocation is merged, never undone
				return dst.Grants.RevokeFamily(ctx, family, at)
			})
		},
		func() error { return copyKeys(ctx, src.States().Keys, dst.Keys, keys) },
		func() error {
			return src.ExportVerifiers(ctx, func(conn, id string, v state.Verifier) error {
				return putMissing(verifiers, func() error { _, err := dst.Verifiers.Verifier(ctx, conn, id); return err },
					func() error { return dst.Verifiers.PutVerifier(ctx, conn, id, v) })
			})
		},
		func() error {
			return src.ExportEngineStates(ctx, func(conn string, e state.Engine) error {
				return putMissing(engines, func() error {
					cur, err := dst.Sync.EngineState(ctx, conn)
					if err == nil && cur == (state.Engine{}) {
						return state.ErrNotFound
					}
					return err
				}, func() error { return dst.Sync.SaveEngineState(ctx, conn, e) })
			})
		},
		func() error {
			return src.ExportRuns(ctx, func(r *state.Run) error {
				runs.copied++ // a run's record is final: storing it again changes nothing
				return dst.Sync.RecordRun(ctx, r)
			})
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return rep[:i+1], fmt.Errorf("copy %s: %w", rep[i].name, err)
		}
	}
	return rep, nil
}

// putMissing puts a record unless get finds it (get returns
// state.ErrNotFound for a missing one), counting either way.
func putMissing(c *copyCount, get, put func() error) error {
	err := get()
	switch {
	case err == nil:
		c.present++
		return nil
	case !errors.Is(err, state.ErrNotFound):
		return err
	}
	if err := put(); err != nil {
		return err
	}
	c.copied++
	return nil
}

// copyKeys publishes src's signing key set when dst has none. A different
// set already in dst belongs to a running cluster and is kept: replacing
// it would invalidate the tokens it signed.
func copyKeys(ctx context.Context, src, dst state.Keys, c *copyCount) error {
	set, err := src.SigningKeys(ctx)
	if err != nil || set == nil {
		return err
	}
	cur, err := dst.SigningKeys(ctx)
	switch {
	case err != nil:
		return err
	case bytes.Equal(cur, set):
		c.present++
		return nil
	case cur != nil:
		c.present++
		c.note = "PostgreSQL already holds a different signing key set (a cluster has run on it) and keeps it: " +
			"ID tokens the single instance signed no longer verify, refresh tokens still work"
		return nil
	}
	if err := dst.PublishSigningKeys(ctx, nil, set); err != nil {
		return err
	}
	c.copied++
	return nil
}
