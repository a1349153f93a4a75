package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/dirgate/dirgate/agent/client"
	"github.com/dirgate/dirgate/config"
)

// agentConfigFile is the file the agent commands read when -c is not
// given: they run on another machine than the hub, with their own file.
const agentConfigFile = "agent.yaml"

// agentGCPercent is the agent's GOGC unless the environment sets one. An
// agent keeps almost nothing live (a page of the directory, a batch on its
// way) while a sync streams through it everything the directory holds:
// with the default, its heap is collected every few megabytes and the
// collector cost it more CPU than the read (about 1.5 s more of 4.2 s in a
// full sync of 100,000 users, measured by make bench's agent rows).
const agentGCPercent = 400

func agentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the sync agent next to a directory the hub cannot reach (reads agent.yaml)",
		Long: `Runs the sync agent: it dials out to the hub (hub: in agent.yaml, one connection
to every hub replica, through HTTPS_PROXY when set), and executes the directory reads,
password checks and Test Connection runs the hub sends for the connector in agent.yaml.
It never listens on a port. Enroll it once first with "dirgate agent enroll".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadAgentFile(cmd)
			if err != nil {
				return err
			}
			id, err := client.LoadIdentity(f.StateDir)
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), f.Log)
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(agentGCPercent)
			}
			a, err := client.New(client.Options{Config: f, Identity: id, Version: version, Log: log})
			if err != nil {
				return err
			}
			log.Info("agent starting", "connector", f.Connector.Name, "agent_id", id.AgentID, "version", version)
			return a.Run(cmd.Context())
		},
	}
	cmd.AddCommand(agentEnrollCmd())
	cmd.AddCommand(agentAdminCmds()...)
	return cmd
}

func agentEnrollCmd() *cobra.Command {
	var hub, token, fingerprint string
	cmd := &cobra.Command{
		Use:   "enroll --hub URL --token TOKEN --ca-sha256 FINGERPRINT",
		Short: "Enroll this agent with the hub: a key made here, a certificate from the hub",
		Long: `Generates the agent's private key in state_dir (never sent anywhere), checks that
the hub's certificate chain leads to the CA with the given SHA-256 fingerprint (printed
by "dirgate agent token create"), and only then sends the one-time token with a
certificate request. The certificate and the hub's CA are stored next to the key; the
agent trusts that CA alone from then on.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := loadAgentFile(cmd)
			if err != nil {
				return err
			}
			if hub == "" {
				hub = f.Hub
			}
			if hub == "" {
				return fmt.Errorf("--hub is required (or hub: in %s)", f.Path)
			}
			if err := config.CheckHubURL(hub); err != nil {
				return fmt.Errorf("--hub %s: %w", hub, err)
			}
			id, err := client.Enroll(cmd.Context(), client.EnrollOptions{Hub: hub, Token: token, CASHA256: fingerprint,
				StateDir: f.StateDir, Name: f.Name, Version: version, Connector: f.Connector.Name})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled as agent %s of connector %s; key and certificates are in %s\nstart it with: dirgate agent -c %s\n",
				id.AgentID, id.Connector, f.StateDir, f.Path)
			return nil
		},
	}
	cmd.Flags().StringVar(&hub, "hub", "", "the hub's agent URL, https://host:port (default: hub: in agent.yaml)")
	cmd.Flags().StringVar(&token, "token", "", "the one-time enrollment token")
	cmd.Flags().StringVar(&fingerprint, "ca-sha256", "", "SHA-256 fingerprint of the hub's agent CA")
	for _, f := range []string{"token", "ca-sha256"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// loadAgentFile reads -c, or agent.yaml when -c is not given.
func loadAgentFile(cmd *cobra.Command) (*config.AgentFile, error) {
	path := agentConfigFile
	if cmd.Flags().Changed("config") {
		path, _ = cmd.Flags().GetString("config")
	}
	f, err := config.LoadAgentFile(path)
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%s not found; write the agent's configuration there or name it with -c", path)
	}
	return f, err
}
