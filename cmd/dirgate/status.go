package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	dirsync "github.com/dirgate/dirgate/sync"
)

func statusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each connector's state, last run, next run, cache age and entry counts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, demo, err := clientConfig(cmd)
			if err != nil {
				return err
			}
			if demo {
				st, err := adminClient(cfg).Status(cmd.Context())
				if err != nil {
					return demoHint(demo, err)
				}
				printStatus(cmd.OutOrStdout(), st, time.Now())
				return nil
			}
			log := newLogger(stderr, cfg.Log)
			var st []dirsync.ConnectorStatus
			if cfg.Admin != nil {
				// A running server holds the cache: ask it.
				if st, err = adminClient(cfg).Status(cmd.Context()); err == nil {
					printStatus(cmd.OutOrStdout(), st, time.Now())
					return nil
				}
				log.Debug("admin API not answering, reading the cache", "err", err)
			}
			store, err := openCache(cfg, log, false)
			if err != nil {
				return err
			}
			defer store.Close()
			sched, err := dirsync.NewScheduler(cfg, dirsync.New(store, openStates(store), log), store, nil, log)
			if err != nil {
				return err
			}
			if st, err = sched.Status(cmd.Context()); err != nil {
				return err
			}
			printStatus(cmd.OutOrStdout(), st, time.Now())
			return nil
		},
	}
	addDemoFlag(cmd)
	return cmd
}

func printStatus(w io.Writer, st []dirsync.ConnectorStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTOR\tTYPE\tSTATE\tLAST RUN\tRESULT\tNEXT RUN\tCACHE AGE\tUSERS\tGROUPS")
	for _, s := range st {
		last, result, age := "-", "-", "-"
		if s.LastRun != nil {
			r := s.LastRun
			last = r.Start.Local().Format("2006-01-02 15:04") + " (" + r.Trigger + ", " + r.Mode + ")"
			result = fmt.Sprintf("+%d ~%d -%d", r.Added, r.Updated, r.Deleted)
			switch {
			case r.Blocked != "":
				result = "blocked: " + r.Blocked
			case r.Error != "":
				result = "error: " + r.Error
			}
		}
		if !s.LastSuccess.IsZero() {
			age = now.Sub(s.LastSuccess).Round(time.Second).String()
		}
		next := "-"
		if !s.NextRun.IsZero() {
			next = s.NextRun.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.Name, s.Type, s.State, last, result, next, age, s.Users, s.Groups)
	}
	_ = tw.Flush()
}
