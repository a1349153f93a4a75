package entra

import (
	"errors"
	"fmt"

	"github.com/dirgate/dirgate/cloudapi"
)

// errForeignLink is a nextLink or deltaLink, from Graph or from a stored
// cursor, that is not on graph_url's scheme and host. It is not followed:
// the request would carry the app's token and the link's state tokens to
// that host.
var errForeignLink = errors.New("a Graph link to another host is not followed")

// checkLink returns errForeignLink, naming the link's scheme and host
// only (its query holds state tokens), unless link is on graphURL's.
func checkLink(link, graphURL string) error {
	if cloudapi.SameOrigin(link, graphURL) {
		return nil
	}
	origin := cloudapi.Origin(link)
	if origin == "" {
		origin = "a link without an http(s) scheme and host"
	}
	return fmt.Errorf("%w: %s is not graph_url's %s", errForeignLink, origin, cloudapi.Origin(graphURL))
}
