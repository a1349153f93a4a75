package entra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/fakeentra"
)

const testClientID = "00000000-0000-4000-8000-0000000000a1"

// tenant is a fake tenant with dirgate's app registered, and a
// connector for it.
type tenant struct {
	*fakeentra.Tenant
	clk  *clock.Fake
	conn *config.Connector
	n    int
}

// newTenant starts a fake tenant. extra is YAML added to the entra
// section (credentials default to a client secret in a file).
func newTenant(t testing.TB, extra string, opts ...fakeentra.Option) *tenant {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	ft := fakeentra.New(t, append([]fakeentra.Option{fakeentra.WithClock(clk)}, opts...)...)
	app := fakeentra.App{ClientID: testClientID, Secret: "s3cret-value", Roles: []string{"User.Read.All", "GroupMember.Read.All"}}
	dir := t.TempDir()
	cred := "client_secret_file: " + filepath.Join(dir, "secret")
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte(app.Secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if extra == "certificate" || extra == "certificate-ps256" {
		app.Cert, cred = writeCert(t, dir), "certificate_file: "+filepath.Join(dir, "app.crt")+"\n      private_key_file: "+filepath.Join(dir, "app.key")
		if extra == "certificate-ps256" {
			cred += "\n      signing_algorithm: PS256"
		}
		extra = ""
	}
	ft.AddApp(app)
	cfg, err := config.Parse("t.yaml", []byte(fmt.Sprintf(`
connectors:
  - name: m365
    type: entra
    entra:
      tenant: %s
      client_id: %s
      %s
      authority_url: %s
      graph_url: %s
      %s
`, ft.ID(), testClientID, cred, ft.AuthorityURL(), ft.GraphURL(), extra)))
	if err != nil {
		t.Fatal(err)
	}
	return &tenant{Tenant: ft, clk: clk, conn: &cfg.Connectors[0]}
}

func (tn *tenant) source(t testing.TB, c *config.Connector) *Source {
	t.Helper()
	s, err := New(c, nil, cloudapi.WithHTTPClient(tn.HTTPClient()), cloudapi.WithClock(tn.clk))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// user adds a user and returns its ID.
func (tn *tenant) user(u fakeentra.User) string {
	tn.n++
	if u.ID == "" {
		u.ID = fmt.Sprintf("11111111-0000-4000-8000-%012d", tn.n)
	}
	if u.UserPrincipalName == "" {
		u.UserPrincipalName = fmt.Sprintf("user%d@contoso.com", tn.n)
	}
	if u.DisplayName == "" {
		u.DisplayName = fmt.Sprintf("User %d", tn.n)
	}
	u.AccountEnabled = u.AccountEnabled || u.UserType != "disabled"
	if u.UserType == "disabled" {
		u.UserType, u.AccountEnabled = "Member", false
	}
	tn.PutUser(u)
	return u.ID
}

func (tn *tenant) group(name string, members ...string) string {
	tn.n++
	id := fmt.Sprintf("22222222-0000-4000-8000-%012d", tn.n)
	tn.PutGroup(fakeentra.Group{ID: id, DisplayName: name, SecurityEnabled: true, Members: members})
	return id
}

// writeCert writes a self-signed RSA certificate and its key as app.crt
// and app.key in dir.
func writeCert(t testing.TB, dir string) *x509.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dirgate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("app.crt", "CERTIFICATE", der)
	write("app.key", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	return cert
}
