package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dirgate/dirgate/admin"
)

// The agents' administration runs on the hub, through the admin API of
// the running server (which holds the hub and its CA): these commands
// read the hub's configuration (-c, default dirgate.yaml), not agent.yaml.

// agentAdminCmds are `dirgate agent token create`, `list` and `revoke`.
func agentAdminCmds() []*cobra.Command {
	token := &cobra.Command{Use: "token", Short: "Manage the one-time tokens that enroll sync agents (on the hub)"}
	token.AddCommand(agentTokenCreateCmd())
	return []*cobra.Command{token, agentListCmd(), agentRevokeCmd()}
}

// hubAdmin is the admin API of the hub the command's configuration
// (-c, default dirgate.yaml) describes.
func hubAdmin(cmd *cobra.Command) (*admin.Client, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	if cfg.Admin == nil {
		return nil, fmt.Errorf("%s has no admin section: the agent commands go through the running hub's admin API", cfg.Path)
	}
	return adminClient(cfg), nil
}

func agentTokenCreateCmd() *cobra.Command {
	var connector string
	var ttl time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create --connector NAME [--ttl 1h]",
		Short: "Create a one-time enrollment token for an agent of a connector",
		Long: `Creates a one-time token that enrolls one agent for the connector, through the
running hub's admin API. It prints the token (shown only this once: the hub keeps
its hash), its expiry, the SHA-256 fingerprint of the hub's agent CA and the exact
"dirgate agent enroll" command line to run on the agent's machine.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := hubAdmin(cmd)
			if err != nil {
				return err
			}
			tok, err := c.CreateEnrollToken(cmd.Context(), connector, ttl)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), tok)
			}
			printToken(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&connector, "connector", "", "the connector the agent will serve")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "how long the token stays valid, 1m to 168h (default 1h)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token as JSON")
	_ = cmd.MarkFlagRequired("connector")
	return cmd
}

func printToken(w io.Writer, t *admin.EnrollToken) {
	fmt.Fprintf(w, "Enrollment token for connector %s (one agent, shown only this once):\n\n  %s\n\n", t.Connector, t.Token)
	fmt.Fprintf(w, "Expires:        %s (in %s)\n", t.Expires.Local().Format(time.RFC3339), time.Until(t.Expires).Round(time.Second))
	fmt.Fprintf(w, "Hub CA SHA-256: %s\n\n", t.CASHA256)
	fmt.Fprintf(w, "On the agent's machine, with its agent.yaml for connector %s:\n\n  %s\n", t.Connector, t.Command)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func agentListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the enrolled agents (revoked ones too) and their connections to the hub",
		Long: `Lists every enrolled agent, through the running hub's admin API: its connector,
name and state, and for an agent connected to the replica that answers, its version,
address, connection time, last heartbeat, round-trip time, requests in flight,
password checks per second, their average latency and reconnects; and when each
agent's certificate expires. Agents renew their certificates themselves four months
before they expire; "renewal overdue" marks one within 30 days of expiry, whose
agent is not running or cannot reach the hub (an expired agent can no longer
connect, and only a new enrollment gives it a new certificate).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := hubAdmin(cmd)
			if err != nil {
				return err
			}
			as, err := c.Agents(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), as)
			}
			printAgents(cmd.OutOrStdout(), as, time.Now())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the agents as JSON")
	return cmd
}

// printAgents writes the agents as a table.
func printAgents(w io.Writer, as []admin.AgentStatus, now time.Time) {
	if len(as) == 0 {
		fmt.Fprintln(w, `No agent is enrolled; create a token with "dirgate agent token create --connector NAME".`)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCONNECTOR\tNAME\tSTATE\tVERSION\tADDRESS\tCONNECTED\tHEARTBEAT\tRTT\tIN FLIGHT\tCHECKS/S\tLATENCY\tRECONNECTS\tCERT EXPIRES")
	for _, a := range as {
		state := "disconnected"
		cols := "-\t-\t-\t-\t-\t-\t-\t-\t-"
		switch {
		case !a.Revoked.IsZero():
			state = "revoked " + a.Revoked.Local().Format("2006-01-02 15:04")
		case a.Connected:
			state = "connected"
		}
		if len(a.Replicas) > 0 {
			state += " (on " + strings.Join(a.Replicas, ",") + ")"
		}
		if a.Connected {
			rtt := time.Duration(a.RTTSeconds * float64(time.Second))
			latency := "-"
			if a.CheckLatencySeconds > 0 {
				latency = time.Duration(a.CheckLatencySeconds * float64(time.Second)).Round(100 * time.Microsecond).String()
			}
			cols = fmt.Sprintf("%s\t%s\t%s\t%s ago\t%s\t%d\t%.1f\t%s\t%d", cmp.Or(a.Version, "-"), cmp.Or(a.Address, "-"),
				a.ConnectedSince.Local().Format("2006-01-02 15:04"), now.Sub(a.LastHeartbeat).Round(time.Second),
				rtt.Round(100*time.Microsecond), a.InFlight, a.ChecksPerSec, latency, a.Reconnects)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Connector, cmp.Or(a.Name, "-"), state, cols, certExpiry(a))
	}
	_ = tw.Flush()
}

// certExpiry is the CERT EXPIRES column: the date, flagged when the agent
// must be enrolled again soon.
func certExpiry(a admin.AgentStatus) string {
	if !a.Revoked.IsZero() || a.CertExpires.IsZero() {
		return "-"
	}
	s := a.CertExpires.Local().Format("2006-01-02")
	if a.CertExpiring {
		s += " (renewal overdue)"
	}
	return s
}

func agentRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an agent: its connections are cut and its certificate refused from then on",
		Long: `Revokes the agent with the ID "dirgate agent list" shows, through the running
hub's admin API. Its connection to that replica is cut at once, to the others within
a few seconds; the machine must be enrolled again with a new token to serve again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("give the ID of the agent to revoke")
			}
			c, err := hubAdmin(cmd)
			if err != nil {
				return err
			}
			if err := c.RevokeAgent(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s revoked\n", args[0])
			return nil
		},
	}
}
