package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/config"
)

// loadConfig reads the file named by --config.
func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	path, _ := cmd.Flags().GetString("config")
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

func newLogger(w io.Writer, l config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openCache opens the cache directory, explaining the common failure of a
// second process holding it. serving keeps the in-memory lookup indexes
// that only a server answering binds and searches needs; only a server
// opens a replica's cache.
func openCache(cfg *config.Config, log *slog.Logger, serving bool) (*cache.Store, error) {
	if cfg.Cluster != nil && !serving {
		// A replica's cache follows the leader and its state is in
		// PostgreSQL: a sync into it from the CLI would diverge from both.
		return nil, errors.New("in cluster mode the command works through a running replica's admin API (configure admin:)")
	}
	s, err := cache.Open(cfg.Cache.Dir, cache.Options{Logger: log, HotIndex: serving})
	if err != nil {
		return nil, fmt.Errorf("%w (is another dirgate process using %s?)", err, cfg.Cache.Dir)
	}
	s.SetOnPremPairs(cfg.OnPremPairs())
	return s, nil
}

var stderr io.Writer = os.Stderr
