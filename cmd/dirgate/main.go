// Command dirgate is the directory gateway: it syncs users and groups from
// upstream directories into a local cache and serves them over LDAP.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := rootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dirgate:", err)
		var ec exitCoder
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// exitCoder lets a command choose its exit status (e.g. 3 for a sync the
// safety rules blocked, so scripts can tell it from a failure).
type exitCoder interface{ ExitCode() int }

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "dirgate",
		Short:         "Directory gateway: sync upstream directories into a cache, serve LDAP from it",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringP("config", "c", "dirgate.yaml", "configuration file")
	root.AddCommand(serveCmd(), syncCmd(), statusCmd(), hashPasswordCmd(), versionCmd())
	root.AddCommand(testConnectionCmd(), clusterCmd(), migrateCmd())
	root.AddCommand(agentCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "dirgate", version) },
	}
}
