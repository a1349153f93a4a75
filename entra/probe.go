package entra

import "net/http"

// AuthorizedClient returns a client that sends requests through hc with
// ts's bearer token, renewing the token once when Graph refuses it as
// expired. Test Connection reads Graph with it as the source does.
func (ts *TokenSource) AuthorizedClient(hc *http.Client) *http.Client {
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Timeout: hc.Timeout, Transport: &transport{ts: ts, base: base}}
}
