package testconn

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestExplainHTTPSNeutral: the DNS fix names the host that failed, not
// one cloud's settings, since Entra's and Google's steps share it.
func TestExplainHTTPSNeutral(t *testing.T) {
	err := fmt.Errorf("getting a token: %w", &net.DNSError{Err: "no such host", Name: "oauth2.example.test", IsNotFound: true})
	o := explainHTTPS(context.Background(), "oauth2.example.test", err, time.Second)
	if o.ok || !strings.Contains(o.fix, "oauth2.example.test") {
		t.Fatalf("%+v, want a failure whose fix names the host", o)
	}
	for _, entraOnly := range []string{"graph_url", "authority_url", "cloud"} {
		if strings.Contains(o.fix, entraOnly) {
			t.Errorf("fix %q names Entra's %s", o.fix, entraOnly)
		}
	}
}
