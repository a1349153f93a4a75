package testconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/testnet"
	"github.com/dirgate/dirgate/internal/testpki"

	"github.com/dirgate/dirgate/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// parseConnector builds a connector from YAML lines (indented under the
// connector mapping) with config.Parse, defaults and validation included.
func parseConnector(t *testing.T, lines ...string) *config.Connector {
	t.Helper()
	y := "cache:\n  dir: " + t.TempDir() + "\nconnectors:\n  - name: t\n"
	for _, l := range lines {
		y += "    " + l + "\n"
	}
	cfg, err := config.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", y, err)
	}
	return &cfg.Connectors[0]
}

func stepOf(t *testing.T, r *Report, host, name string) Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Host == host && s.Name == name {
			return s
		}
	}
	t.Fatalf("no %s step for %s in\n%s", name, host, r.Text())
	return Step{}
}

// checkAfter checks that every step after the named one was skipped.
func checkSkippedAfter(t *testing.T, r *Report, host, name string) {
	t.Helper()
	after := false
	for _, s := range r.Steps {
		if s.Host != host {
			continue
		}
		if after && (!s.Skipped || s.OK || s.Fix != "") {
			t.Errorf("step %s after the failed %s step: want skipped, got %+v", s.Name, name, s)
		}
		if s.Name == name {
			after = true
		}
	}
}

// checkCloudReport checks the report of a cloud directory's test: its
// steps are steps, in order; it shows none of secrets; and either every
// step passes (failed "") and the report holds each of detail, or the
// failed step fails with a fix holding fix and a detail holding each of
// detail, and every step after it is skipped.
func checkCloudReport(t *testing.T, r *Report, steps, secrets []string, failed, fix string, detail []string) {
	t.Helper()
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, steps) {
		t.Fatalf("steps %v, want %v", names, steps)
	}
	text := r.Text()
	for _, secret := range secrets {
		if strings.Contains(text, secret) {
			t.Fatalf("the report shows %q:\n%s", secret, text)
		}
	}
	if failed == "" {
		if !r.OK {
			t.Fatalf("not OK:\n%s", text)
		}
		for _, d := range detail {
			if !strings.Contains(text, d) {
				t.Errorf("report lacks %q:\n%s", d, text)
			}
		}
		return
	}
	s := stepOf(t, r, r.Steps[0].Host, failed)
	if r.OK || s.OK || !strings.Contains(s.Fix, fix) {
		t.Fatalf("%s: ok %v, fix %q (want %q):\n%s", failed, s.OK, s.Fix, fix, text)
	}
	for _, d := range detail {
		if !strings.Contains(s.Detail, d) {
			t.Errorf("%s detail %q lacks %q", failed, s.Detail, d)
		}
	}
	checkSkippedAfter(t, r, s.Host, failed)
}

func TestTextGolden(t *testing.T) {
	ms := time.Millisecond
	r := &Report{Connector: "corp", OK: true, Steps: []Step{
		{Host: "ldap1.corp.example", Name: "dns", OK: true, Duration: 2 * ms, Detail: "ldap1.corp.example resolves to 10.0.0.5"},
		{Host: "ldap1.corp.example", Name: "tcp", Duration: 3 * time.Second, Detail: "no answer from ldap1.corp.example:636 within 3s",
			Fix: "a firewall is probably dropping the traffic: allow TCP port 636 from this machine to ldap1.corp.example; check also that the host is up and the address is right"},
		{Host: "ldap1.corp.example", Name: "tls", Skipped: true, Detail: "not run: the tcp step failed"},
		{Host: "ldap1.corp.example", Name: "bind", Skipped: true, Detail: "not run: the tcp step failed"},
		{Host: "10.0.0.6", Name: "dns", OK: true, Detail: "IP address"},
		{Host: "10.0.0.6", Name: "tcp", OK: true, Duration: 1500 * time.Microsecond, Detail: "connected to 10.0.0.6:636 in 2ms"},
		{Host: "10.0.0.6", Name: "tls", OK: true, Duration: 12 * ms, Detail: "TLS 1.3, certificate for ldap2.corp.example verified (strict), valid until 2027-03-01"},
		{Host: "10.0.0.6", Name: "bind", OK: true, Duration: 4 * ms, Detail: "bound as cn=sync,ou=services,dc=corp,dc=example"},
		{Host: "10.0.0.6", Name: "root_dn", OK: true, Duration: 800 * time.Microsecond, Detail: "dc=corp,dc=example exists"},
		{Host: "10.0.0.6", Name: "search", OK: true, Duration: 35 * ms, Detail: "50 users, 48 with mail, 50 with proxyAddresses (a sample: the first page)"},
		{Host: "10.0.0.6", Name: "paging", OK: true, Detail: "supported: the server returned a cookie for the next page (page size 50)"},
	}}
	failed := &Report{Connector: "dom", Steps: []Step{
		{Host: "127.0.0.1", Name: "dns", OK: true, Detail: "IP address"},
		{Host: "127.0.0.1", Name: "bind", Duration: 11500 * ms, Detail: "AD error 52e: wrong password",
			Fix: "check the password in the environment variable SYNC_PW (bind_password_env)"},
		{Host: "127.0.0.1", Name: "paging", Skipped: true, Detail: "not run: the bind step failed"},
	}}
	got := r.Text() + "\n" + failed.Text()
	golden := filepath.Join("testdata", "text.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestTextGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("Text() differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

func TestFmtDuration(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0.0ms"}, {420 * time.Microsecond, "0.4ms"}, {960 * time.Microsecond, "1.0ms"}, {1500 * time.Microsecond, "2ms"}, {1234 * time.Millisecond, "1.234s"},
		{12345 * time.Millisecond, "12.3s"},
	} {
		if got := fmtDuration(c.d); got != c.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

// TestPortClosed: a port nobody listens on fails at tcp with the firewall /
// service advice, and nothing after it runs.
func TestPortClosed(t *testing.T) {
	port := freePort(t)
	c := parseConnector(t, "type: openldap", "host: 127.0.0.1", fmt.Sprintf("port: %d", port), "encryption: none",
		"root_dn: dc=example,dc=test", "timeout: 2s")
	r := Run(context.Background(), c)
	if r.OK {
		t.Fatalf("OK with a closed port:\n%s", r.Text())
	}
	if s := stepOf(t, r, "127.0.0.1", StepDNS); !s.OK || s.Detail != "IP address" {
		t.Errorf("dns step: %+v", s)
	}
	s := stepOf(t, r, "127.0.0.1", StepTCP)
	if s.OK || !strings.Contains(s.Detail, "refused") || !strings.Contains(s.Fix, "is the LDAP service running?") ||
		!strings.Contains(s.Fix, fmt.Sprintf("is a firewall blocking port %d?", port)) {
		t.Errorf("tcp step: %+v", s)
	}
	checkSkippedAfter(t, r, "127.0.0.1", StepTCP)
	if n := len(r.Steps); n != 7 {
		t.Errorf("%d steps, want 7 (dns tcp tls bind root_dn search paging):\n%s", n, r.Text())
	}
}

// TestCancelled: a cancelled context stops the test without running steps.
func TestCancelled(t *testing.T) {
	c := parseConnector(t, "type: openldap", "host: 127.0.0.1", fmt.Sprintf("port: %d", freePort(t)), "encryption: none",
		"root_dn: dc=example,dc=test")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Run(ctx, c)
	if r.OK || r.Steps[0].OK || !strings.Contains(r.Steps[0].Detail, "stopped") {
		t.Fatalf("cancelled run:\n%s", r.Text())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestTLSFailures checks the tls step's reasons and fixes against local
// TLS servers with bad certificates (the OpenLDAP integration test covers
// the unknown CA against a real slapd).
func TestTLSFailures(t *testing.T) {
	ca, other := testpki.NewCA(t, "Test CA"), testpki.NewCA(t, "Other CA")
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(90 * 24 * time.Hour)
	cases := []struct {
		name       string
		cert       tls.Certificate
		encryption string
		ok         bool
		detail     []string
		fix        []string
	}{
		{"good", ca.Issue(t, ec, "127.0.0.1", later), "strict", true, []string{"TLS 1.3", "certificate for 127.0.0.1 verified (strict)"}, nil},
		{"expired", ca.Issue(t, ec, "127.0.0.1", time.Now().Add(-time.Hour)), "strict", false,
			[]string{"certificate expired on"}, []string{"renew the server certificate"}},
		{"name mismatch", ca.Issue(t, ec, "127.0.0.9", later), "strict", false,
			[]string{"certificate name mismatch", "127.0.0.9", "not 127.0.0.1"}, []string{"server_name"}},
		{"unknown CA", other.Issue(t, ec, "127.0.0.1", later), "strict", false,
			[]string{"certificate signed by an unknown CA", "Other CA"},
			[]string{"set ca_file to the CA that signed the server certificate, or encryption: relaxed"}},
		{"weak key", ca.Issue(t, weak, "127.0.0.1", later), "strict", false,
			[]string{"1024-bit RSA key"}, []string{"2048 bits", "encryption: relaxed"}},
		{"relaxed unknown CA", other.Issue(t, ec, "127.0.0.1", later), "relaxed", true,
			[]string{"NOT verified (encryption: relaxed)"}, nil},
		{"relaxed weak expired", other.Issue(t, weak, "127.0.0.1", time.Now().Add(-time.Hour)), "relaxed", true,
			[]string{"NOT verified", "it expired on", "1024-bit RSA key would be refused by strict mode"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := testpki.ServeTLS(t, tc.cert)
			lines := []string{"type: openldap", "host: 127.0.0.1", fmt.Sprintf("port: %d", port), "encryption: " + tc.encryption,
				"root_dn: dc=example,dc=test", "timeout: 2s"}
			if tc.encryption == "strict" {
				lines = append(lines, "ca_file: "+ca.File(t))
			}
			r := Run(context.Background(), parseConnector(t, lines...))
			s := stepOf(t, r, "127.0.0.1", StepTLS)
			if s.OK != tc.ok {
				t.Fatalf("tls step OK=%v, want %v:\n%s", s.OK, tc.ok, r.Text())
			}
			for _, w := range tc.detail {
				if !strings.Contains(s.Detail, w) {
					t.Errorf("detail %q lacks %q", s.Detail, w)
				}
			}
			for _, w := range tc.fix {
				if !strings.Contains(s.Fix, w) {
					t.Errorf("fix %q lacks %q", s.Fix, w)
				}
			}
			if tc.ok {
				if s.Fix != "" {
					t.Errorf("a passed step has a fix: %q", s.Fix)
				}
				return
			}
			checkSkippedAfter(t, r, "127.0.0.1", StepTLS)
		})
	}
}

// TestLDAPSOnPlainPort: LDAPS against a port that answers in plain text
// says so.
func TestLDAPSOnPlainPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := testnet.Serve(t, ln, func(c net.Conn) {
		// An LDAP notice of disconnection is not a TLS record.
		_, _ = c.Write([]byte("0\x0c\x02\x01\x00x\x07\n\x01\x02\x04\x00\x04\x00"))
		time.Sleep(100 * time.Millisecond)
		c.Close()
	})
	c := parseConnector(t, "type: openldap", "host: 127.0.0.1", fmt.Sprintf("port: %d", port),
		"encryption: relaxed", "root_dn: dc=example,dc=test", "timeout: 2s")
	r := Run(context.Background(), c)
	s := stepOf(t, r, "127.0.0.1", StepTLS)
	if s.OK || !strings.Contains(s.Detail, "does not speak TLS") || !strings.Contains(s.Fix, "tls_mode: starttls") {
		t.Fatalf("tls step: %+v", s)
	}
}
