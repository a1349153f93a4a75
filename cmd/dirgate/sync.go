package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/sources"
)

type blockedExit struct{ error }

func (blockedExit) ExitCode() int { return 3 }

// syncGCPercent is GOGC for a sync run by this command in its own
// process, unless the environment sets one: a batch that exits when done,
// with no resident size to keep low, whose full reads turn over the whole
// directory as garbage (at the default, collection took a tenth of the CPU
// of a cloud full sync of 100,000 users).
const syncGCPercent = 200

func syncCmd() *cobra.Command {
	var dryRun, force, all, full, incremental bool
	cmd := &cobra.Command{
		Use:   "sync [CONNECTOR...]",
		Short: "Sync connectors from their upstream directories now",
		Long: `Reads every in-scope user and group from the upstream, diffs it against the cache,
checks the safety rules and applies the plan atomically. With --dry-run it prints the
plan (adds, updates, deletes with DNs) and changes nothing. Exit status 3 means the
safety rules blocked the run.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, demo, err := clientConfig(cmd)
			if err != nil {
				return err
			}
			log := newLogger(stderr, cfg.Log)
			conns, err := pickConnectors(cfg, args, all)
			if err != nil {
				return err
			}
			mode := dirsync.ModeAuto
			switch {
			case full && incremental:
				return errors.New("--full and --incremental exclude each other")
			case full:
				mode = dirsync.ModeFull
			case incremental:
				mode = dirsync.ModeIncremental
			}
			opts := dirsync.Options{DryRun: dryRun, Force: force, Trigger: "cli", Mode: mode}
			// The cache is open in one process at a time: when a server holds
			// it (the demo's always), the run happens there, through the
			// admin API.
			run := func(c *config.Connector) (*dirsync.Result, error) {
				res, err := adminClient(cfg).Sync(cmd.Context(), c.Name, opts)
				return res, demoHint(demo, err)
			}
			if !demo {
				store, err := openCache(cfg, log, false)
				switch {
				case err == nil:
					defer store.Close()
					if os.Getenv("GOGC") == "" {
						debug.SetGCPercent(syncGCPercent)
					}
					eng := dirsync.New(store, openStates(store), log)
					run = func(c *config.Connector) (*dirsync.Result, error) { return runSync(cmd, eng, c, log, opts) }
				case cfg.Admin != nil && cfg.Cluster != nil:
					fmt.Fprintln(cmd.ErrOrStderr(), "cluster mode: asking the running replica over the admin API (the run happens on the sync leader)")
				case cfg.Admin != nil:
					fmt.Fprintln(cmd.ErrOrStderr(), "the cache is in use: asking the running server over the admin API")
				default:
					return fmt.Errorf("%w; configure admin: to let the CLI reach a running server, or stop it first", err)
				}
			}
			var failed error
			for _, c := range conns {
				res, err := run(c)
				if res != nil {
					printResult(cmd.OutOrStdout(), res, dryRun)
				}
				if err != nil {
					var b *dirsync.BlockedError
					if errors.As(err, &b) {
						failed = blockedExit{err}
					} else if failed == nil {
						failed = err
					}
				}
			}
			return failed
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan, change nothing")
	cmd.Flags().BoolVar(&force, "force", false, "apply a plan that the safety rules block")
	cmd.Flags().BoolVar(&all, "all", false, "sync every configured connector")
	cmd.Flags().BoolVar(&full, "full", false, "force a full sync (the default picks incremental when possible)")
	cmd.Flags().BoolVar(&incremental, "incremental", false, "only an incremental sync; fail if one is not possible")
	addDemoFlag(cmd)
	return cmd
}

func pickConnectors(cfg *config.Config, names []string, all bool) ([]*config.Connector, error) {
	if all || len(names) == 0 {
		if len(names) > 0 {
			return nil, errors.New("give connector names or --all, not both")
		}
		if !all && len(cfg.Connectors) > 1 {
			return nil, errors.New("several connectors are configured: name them or pass --all")
		}
		out := make([]*config.Connector, len(cfg.Connectors))
		for i := range cfg.Connectors {
			out[i] = &cfg.Connectors[i]
		}
		return out, nil
	}
	var out []*config.Connector
	for _, n := range names {
		c, ok := cfg.Connector(n)
		if !ok {
			return nil, fmt.Errorf("no connector named %q in %s", n, cfg.Path)
		}
		out = append(out, c)
	}
	return out, nil
}

func runSync(cmd *cobra.Command, eng *dirsync.Engine, c *config.Connector, log *slog.Logger, o dirsync.Options) (*dirsync.Result, error) {
	src, err := sources.New(c, log)
	if err != nil {
		return nil, err
	}
	o.Progress = func(n int) { fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d entries read...\n", c.Name, n) }
	return eng.Run(cmd.Context(), c, src, o)
}

func printResult(w io.Writer, r *dirsync.Result, dry bool) {
	status := "applied"
	switch {
	case r.Blocked != "":
		status = "BLOCKED: " + r.Blocked
	case r.Error != "":
		status = "FAILED: " + r.Error
	case dry:
		status = "dry run, nothing applied"
	case r.Added+r.Updated+r.Deleted == 0:
		status = "no changes"
	}
	if r.DeletesPaused > 0 {
		status += fmt.Sprintf("; %d deletions paused because the previous run failed", r.DeletesPaused)
	}
	mode := r.Mode
	if r.Method != "" {
		mode += " via " + r.Method
	}
	fmt.Fprintf(w, "%s: %s sync read %d from %s in %s: %d added, %d updated, %d deleted, %d unchanged (%s)\n",
		r.Connector, mode, r.Read, orDash(r.Host), r.Duration.Round(1e6), r.Added, r.Updated, r.Deleted, r.Unchanged, status)
	if dry || r.Blocked != "" {
		for _, c := range r.Plan.Adds {
			fmt.Fprintf(w, "  + %-5s %s\n", c.Kind, c.DN)
		}
		for _, c := range r.Plan.Updates {
			fmt.Fprintf(w, "  ~ %-5s %s\n", c.Kind, c.DN)
		}
		for _, c := range r.Plan.Deletes {
			fmt.Fprintf(w, "  - %-5s %s\n", kindOr(c.Kind), c.DN)
		}
	}
}

func kindOr(k cache.Kind) string {
	if k == 0 {
		return "?"
	}
	return k.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
