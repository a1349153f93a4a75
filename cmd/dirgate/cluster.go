package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/dirgate/dirgate/cluster/changelog"
	"github.com/dirgate/dirgate/cluster/registry"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/state"
)

// clusterDB loads the command's configuration and connects to its
// cluster's database; the caller closes the pool.
func clusterDB(cmd *cobra.Command) (*config.Cluster, *pgxpool.Pool, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Cluster == nil {
		return nil, nil, errors.New("the configuration has no cluster section: this command works on a cluster's PostgreSQL database (cluster.postgres)")
	}
	pool, err := clusterPool(cmd.Context(), cfg.Cluster)
	return cfg.Cluster, pool, err
}

// dbConnectTimeout bounds a connection to the cluster's database (TCP,
// TLS and authentication) unless cluster.postgres sets connect_timeout:
// without a bound, a database whose packets are dropped hangs every call
// that needs a new connection instead of failing it.
const dbConnectTimeout = 5 * time.Second

// dbKeepAlive probes idle connections to the database, so that one to a
// host gone away is found dead in about half a minute rather than after
// the system's two hours.
var dbKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}

// clusterPool opens a pool on the cluster's database, with the password
// and TLS files of the configuration (pgx reads the files named by the
// sslrootcert, sslcert and sslkey parameters itself).
func clusterPool(ctx context.Context, c *config.Cluster) (*pgxpool.Pool, error) {
	u, err := url.Parse(c.Postgres)
	if err != nil {
		return nil, fmt.Errorf("cluster.postgres: %w", err)
	}
	if t := c.TLS; t != nil {
		q := u.Query()
		for param, file := range map[string]string{"sslrootcert": t.CAFile, "sslcert": t.CertFile, "sslkey": t.KeyFile} {
			if file != "" {
				q.Set(param, file)
			}
		}
		u.RawQuery = q.Encode()
	}
	pc, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("cluster.postgres: %w", err)
	}
	if pw := c.PostgresPassword.Reveal(); pw != "" {
		pc.ConnConfig.Password = pw
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = dbConnectTimeout
	}
	pc.ConnConfig.DialFunc = (&net.Dialer{Timeout: pc.ConnConfig.ConnectTimeout, KeepAliveConfig: dbKeepAlive}).DialContext
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to PostgreSQL: %w", err)
	}
	return pool, nil
}

// throttleSweepEvery paces the removal of the shared throttle's stale
// counters.
const throttleSweepEvery = time.Minute

// sweepThrottle removes, once a minute until ctx ends, the counters and
// reservations of the shared throttle that count for nothing any more
// under the configuration's window in force (window).
func sweepThrottle(ctx context.Context, t state.ThrottleSweeper, window func() time.Duration, log *slog.Logger) {
	tick := time.NewTicker(throttleSweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := t.SweepThrottle(ctx, time.Now(), window())
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("cluster: sweeping the throttle's stale counters failed", "err", err)
		case n > 0:
			log.Debug("cluster: swept the throttle's stale counters", "rows", n)
		}
	}
}

func clusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect a cluster of dirgate replicas",
	}
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the replicas, the sync leader and its epoch, the change log's head and each replica's position and lag",
		Long: `Read the cluster's status from PostgreSQL directly (no replica needs to run):
every replica that registered, whether it is the leader, its change-log
position, how many records it lacks, and its lag as it reported it at its
last heartbeat: zero while it is known to be at the log's head, otherwise
the time since it last was. A replica without a heartbeat for 30s is marked
gone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, pool, err := clusterDB(cmd)
			if err != nil {
				return err
			}
			defer pool.Close()
			ctx := cmd.Context()
			log, err := changelog.New(pool, changelog.Options{})
			if err != nil {
				return err
			}
			st, err := registry.Read(ctx, pool, registry.ReadOptions{Head: log.Head})
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printCluster(cmd.OutOrStdout(), st, c.MaxLag.Std())
			return nil
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	cmd.AddCommand(status)
	return cmd
}

// printCluster writes the status as a table. maxLag marks the replicas
// whose /readyz fails on lag.
func printCluster(w io.Writer, st *registry.Status, maxLag time.Duration) {
	switch l := st.Lease; {
	case l == nil:
		fmt.Fprintln(w, "Leader: none yet (no replica has taken the sync lease)")
	case !l.Valid:
		fmt.Fprintf(w, "Leader: none (the lease of %s, epoch %d, expired %s ago)\n", l.Holder, l.Epoch, st.Now.Sub(l.Expires).Round(time.Second))
	default:
		name := st.LeaderName()
		if name == "" {
			name = "unregistered holder " + l.Holder
		}
		fmt.Fprintf(w, "Leader: %s (epoch %d, lease valid for %s)\n", name, l.Epoch, l.Expires.Sub(st.Now).Round(time.Second))
	}
	head := "empty"
	if st.Head > 0 {
		head = fmt.Sprintf("%d at %s", st.Head, st.HeadAt.Local().Format(time.RFC3339))
	}
	fmt.Fprintln(w, "Change log head:", head)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tROLE\tSTATE\tPOSITION\tBEHIND\tLAG\tLAST SEEN\tVERSION\tSTARTED\tADMIN")
	for _, r := range st.Replicas {
		role := "standby"
		if r.Leader {
			role = "leader"
		}
		state := "up"
		switch {
		case r.Gone:
			state = "gone"
		case maxLag > 0 && r.Lag > maxLag:
			state = "lagging"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s ago\t%s\t%s\t%s\n", r.Name, role, state, strconv.FormatUint(r.Position, 10), r.Behind,
			r.Lag.Round(time.Millisecond), st.Now.Sub(r.Seen).Round(time.Second), r.Version, r.Started.Local().Format("2006-01-02 15:04"), cmp.Or(r.AdminURL, "-"))
	}
	_ = tw.Flush()
	if len(st.Replicas) == 0 {
		fmt.Fprintln(w, "(no replica has registered)")
	}
}
