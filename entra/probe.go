package entra

import "net/http"

// AuthorizedClient returns a client that sends requests through hc with
// ts's bearer token, renewing the token once when Graph refuses it as
// expired. The token goes to the scheme and host of the connector's
// graph_url only, and no redirect is followed. Test Connection reads Graph
// with it as the source does.
func (ts *TokenSource) AuthorizedClient(hc *http.Client) *http.Client {
	return ts.cache.AuthorizedClient(hc, ts.graphURL)
}
