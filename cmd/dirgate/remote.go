package main

import (
	"crypto/tls"
	"net/http"
	"net/url"
	"time"

	"github.com/dirgate/dirgate/admin"
	"github.com/dirgate/dirgate/config"
)

// The CLI talks to a running server through its admin API: the server
// holds the cache, which one process at a time may open.

// adminClient returns a client of the admin API cfg configures.
func adminClient(cfg *config.Config) *admin.Client {
	base := &url.URL{Scheme: "http", Host: cfg.Admin.Listen}
	hc := &http.Client{Timeout: 30 * time.Minute} // a full sync runs inside the request
	if cfg.Admin.TLS != nil {
		base.Scheme = "https"
		// The CLI runs on the server's host; the admin certificate is the
		// server's own, often without a name for the loopback address.
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec
	}
	return admin.NewClient(base, cfg.Admin.Token.Reveal(), hc)
}
