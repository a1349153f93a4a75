package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/testconn"
)

// testConnFailed is returned when no host of the connector passed every
// step: exit status 1, after the report has been printed.
type testConnFailed struct{ error }

func (testConnFailed) ExitCode() int { return 1 }

func testConnectionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test-connection NAME",
		Short: "Test a connector's upstream hosts step by step and explain what to fix",
		Long: `Tests the primary and the alternate host of a connector, step by step: DNS, TCP
connection, TLS (LDAPS or StartTLS, with the connector's certificate policy), the
service account bind, the root DN, a sample search of users (with their address
attributes) and paged results. Each step shows its duration and, when it fails,
what to do about it. Nothing is written to the directory or the cache.
Exit status 0 when at least one host passed every step, 1 otherwise.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, demo, err := clientConfig(cmd)
			if err != nil {
				return err
			}
			c, err := connectorToTest(cfg, args)
			if err != nil {
				return err
			}
			var r *testconn.Report
			if demo {
				// The demo directory listens on a port only the demo knows.
				if r, err = adminClient(cfg).TestConnection(cmd.Context(), c.Name); err != nil {
					return demoHint(demo, err)
				}
			} else {
				r = testconn.Run(cmd.Context(), c)
			}
			fmt.Fprint(cmd.OutOrStdout(), r.Text())
			if !r.OK {
				return testConnFailed{fmt.Errorf("connector %s: no host passed every step", c.Name)}
			}
			return nil
		},
	}
	addDemoFlag(cmd)
	return cmd
}

// connectorToTest picks the named connector, or the only one.
func connectorToTest(cfg *config.Config, args []string) (*config.Connector, error) {
	names := make([]string, len(cfg.Connectors))
	for i, c := range cfg.Connectors {
		names[i] = c.Name
	}
	if len(args) == 0 {
		if len(cfg.Connectors) == 1 {
			return &cfg.Connectors[0], nil
		}
		return nil, fmt.Errorf("name the connector to test: %s", strings.Join(names, ", "))
	}
	c, ok := cfg.Connector(args[0])
	if !ok {
		return nil, fmt.Errorf("no connector named %q in %s (configured: %s)", args[0], cfg.Path, strings.Join(names, ", "))
	}
	return c, nil
}
