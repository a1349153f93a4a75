// Package sources opens the source that reads a connector's directory,
// from the connector's type: the one table from directory types
// (dirtype) to the packages under sync/ that implement dirsync.Source.
//
// It sits above every source package, which config, authn and the other
// readers of dirtype must not import; that is why the table of openers is
// kept apart from the table of facts. It is also where another way of
// reaching the same type, through a sync agent (via: agent), is chosen.
package sources

import (
	"fmt"
	"log/slog"

	"github.com/dirgate/dirgate/agent/hub"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/google"
	dirsync "github.com/dirgate/dirgate/sync"
	"github.com/dirgate/dirgate/sync/agentsource"
	"github.com/dirgate/dirgate/sync/ldapsource"
)

// Opener prepares the source of a connector; it does not connect.
type Opener func(c *config.Connector, log *slog.Logger) (dirsync.Source, error)

// openers holds one line per directory type of dirtype's registry.
var openers = map[string]Opener{
	dirtype.OpenLDAP:        openLDAP,
	dirtype.ActiveDirectory: openLDAP,
	dirtype.Domino:          openLDAP,
	dirtype.Entra:           func(c *config.Connector, log *slog.Logger) (dirsync.Source, error) { return entra.New(c, log) },
	dirtype.Google:          func(c *config.Connector, log *slog.Logger) (dirsync.Source, error) { return google.New(c, log) },
}

func openLDAP(c *config.Connector, log *slog.Logger) (dirsync.Source, error) {
	return ldapsource.New(c, log)
}

// New returns the source of the connector's upstream. A via: agent
// connector's is read through agents, which a process without the hub's
// agent listener cannot reach: NewWithHub gives it the hub.
func New(c *config.Connector, log *slog.Logger) (dirsync.Source, error) {
	return NewWithHub(c, nil, log)
}

// NewWithHub is New in the process that runs the hub's agent listener h
// (nil: none).
func NewWithHub(c *config.Connector, h *hub.Hub, log *slog.Logger) (dirsync.Source, error) {
	if c.ViaAgent() {
		return agentsource.New(h, c)
	}
	open, ok := openers[c.Type]
	if !ok {
		return nil, fmt.Errorf("connector %s: type %q is not supported by this build", c.Name, c.Type)
	}
	return open(c, log)
}
