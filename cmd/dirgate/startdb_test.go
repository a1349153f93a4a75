package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/demodir"
)

// TestServeWithoutPostgres: a replica restarted while its database is
// unreachable starts and serves LDAP from its cache, is ready within
// max_lag, answers OIDC with 503 temporarily_unavailable (its signing
// keys are in the database), and once the database answers it joins the
// cluster and serves OIDC without a restart.
func TestServeWithoutPostgres(t *testing.T) {
	r := newProxiedReplica(t, 30*time.Second)
	stop := startServe(t, r.testReplica)
	eventually(t, "ready", func() bool { s, _, _ := r.get("/readyz"); return s == http.StatusOK })
	stop()

	r.proxy.set("refuse")
	startServe(t, r.testReplica)
	c, err := ldap.DialURL("ldap://" + r.ldap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(demodir.SampleLogin, demodir.SamplePassword); err != nil {
		t.Fatalf("bind from the cache while the database is unreachable: %v", err)
	}
	if s, body, _ := r.get("/readyz"); s != http.StatusOK {
		t.Errorf("/readyz right after a start without the database: %d %s", s, body)
	}
	discovery := "http://" + r.oidc + "/.well-known/openid-configuration"
	resp, err := http.Get(discovery)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("OIDC while the signing keys cannot be read: %d, want 503", resp.StatusCode)
	}

	r.proxy.set("")
	eventually(t, "OIDC served once the database answers", func() bool {
		resp, err := http.Get(discovery)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	eventually(t, "registered in the cluster", func() bool {
		req, _ := http.NewRequest("GET", "http://"+r.admin+"/api/v1/cluster", nil)
		req.Header.Set("Authorization", "Bearer test-admin-token-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(b.String(), `"name": "a"`)
	})
}
