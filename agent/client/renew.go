package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/dirgate/dirgate/agent/pki"
)

// Files of a renewal in progress: the new key, written before the hub is
// asked, and the certificate the hub issued for it. Both are moved over
// the current key and certificate only once both are on disk, and
// LoadIdentity finishes or drops a renewal a crash interrupted, so the
// state directory always holds a key and a certificate that belong
// together.
const (
	renewedKeyFile  = "renewed.key"
	renewedCertFile = "renewed.crt"
)

// renewAfter is how much of its validity a certificate has used when the
// agent renews it: a year's certificate is renewed four months before it
// expires, which leaves months of daily retries to a hub that is away.
const renewAfter = 2.0 / 3

// moveBefore is how long before the replaced certificate expires the
// agent moves the connections still made with it onto new ones: until
// then they are left alone (the hub accepts that certificate, and most
// connections are made again long before, at a restart of either side).
const moveBefore = 7 * 24 * time.Hour

// renewAt is when the agent renews leaf.
func renewAt(leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotBefore.Add(time.Duration(float64(life) * renewAfter))
}

// identityState is the certificate the agent presents to new connections
// and the HTTP client that makes them with it. A renewal replaces both:
// a client of its own, so that no connection of the old one (made with
// the old certificate) is reused for a new request.
type identityState struct {
	cert *tls.Certificate
	http *http.Client
}

// newIdentityState returns the state of cert, trusting roots alone.
func newIdentityState(cert *tls.Certificate, roots *x509.CertPool) *identityState {
	tr := &http.Transport{
		// HTTPS_PROXY and NO_PROXY: an HTTP CONNECT tunnel, inside which
		// TLS runs end to end with the hub.
		Proxy: http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			RootCAs:      roots,
			Certificates: []tls.Certificate{*cert},
		},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 30 * time.Second,
		IdleConnTimeout:     2 * time.Minute,
	}
	return &identityState{cert: cert, http: &http.Client{Transport: tr}}
}

// current is the certificate and client for new requests.
func (a *Agent) current() *identityState { return a.ident.Load() }

// checkCert renews the certificate once it is due, moves connections off
// a replaced certificate that is about to expire, and warns of an
// expiring certificate that could not be renewed.
func (a *Agent) checkCert(ctx context.Context, now time.Time) {
	if leaf := a.current().cert.Leaf; leaf != nil && !now.Before(renewAt(leaf)) {
		if err := a.renew(ctx); err != nil {
			a.log.Warn("renewing the agent's certificate failed; retrying in a day", slog.String("agent", a.id.AgentID),
				slog.Time("expiry", leaf.NotAfter), slog.Any("err", err))
		}
	}
	a.moveOffOldCerts(now)
	a.warnCert(now)
}

// renew asks the hub, with the current certificate, for one for a new
// key, stores it and makes it the one new connections present.
func (a *Agent) renew(ctx context.Context) error {
	dir := a.cfg.StateDir
	// A certificate left by an earlier renewal that could not be moved
	// into place would be paired with this renewal's key.
	if err := os.Remove(filepath.Join(dir, renewedCertFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state directory: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the new key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, renewedKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	er, err := a.askRenewal(ctx, key)
	if err != nil {
		_ = os.Remove(filepath.Join(dir, renewedKeyFile))
		return err
	}
	caSum := sha256.Sum256(a.id.CA.Raw)
	id, err := er.identity(key, caSum[:], EnrollOptions{Hub: a.id.Hub, Connector: a.id.Connector})
	if err != nil {
		_ = os.Remove(filepath.Join(dir, renewedKeyFile))
		return err
	}
	if got, err := pki.AgentID(id.Cert.Leaf); err != nil || got != a.id.AgentID {
		_ = os.Remove(filepath.Join(dir, renewedKeyFile))
		return fmt.Errorf("the hub renewed the certificate of agent %q, not %s", got, a.id.AgentID)
	}
	if err := writeFileAtomic(filepath.Join(dir, renewedCertFile), []byte(er.Certificate)); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := promoteRenewed(dir); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	old := a.ident.Swap(newIdentityState(&id.Cert, a.roots))
	old.http.CloseIdleConnections()
	a.log.Info("agent certificate renewed", slog.String("agent", a.id.AgentID), slog.Time("expiry", id.Cert.Leaf.NotAfter))
	return nil
}

// askRenewal posts a CSR for key to the hub's renewal endpoint.
func (a *Agent) askRenewal(ctx context.Context, key *ecdsa.PrivateKey) (*enrollResponse, error) {
	csr, err := pki.CSR(key, a.cfg.Name)
	if err != nil {
		return nil, err
	}
	status, data, err := postJSON(ctx, a.current().http, a.hub+"/agent/v1/renew", struct {
		CSR string `json:"csr"`
	}{string(csr)})
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w at %s: %w", ErrHubUnreachable, a.hub, err)
	case status != http.StatusOK:
		return nil, httpErrorOf(status, data)
	}
	er := &enrollResponse{AgentID: a.id.AgentID, Connector: a.id.Connector}
	if err := json.Unmarshal(data, er); err != nil {
		return nil, fmt.Errorf("the hub's answer is not a certificate: %w", err)
	}
	return er, nil
}

// promoteRenewed moves a renewal's key and certificate over the current
// ones once they are known to belong together, or drops a renewal that
// cannot be finished: a key without a certificate (the hub was not asked,
// refused, or its answer was lost; the current pair still authenticates,
// as the hub keeps a replaced certificate pinned until it expires), or a
// certificate that belongs to neither key.
func promoteRenewed(dir string) error {
	key, cert := filepath.Join(dir, renewedKeyFile), filepath.Join(dir, renewedCertFile)
	drop := func() error {
		for _, f := range []string{cert, key} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	certPEM, err := os.ReadFile(cert)
	if errors.Is(err, os.ErrNotExist) {
		return drop()
	}
	if err != nil {
		return err
	}
	// The key first: a crash after moving it leaves the certificate to
	// move, whose key is then the current one.
	keyPath := key
	if _, err := os.Stat(key); errors.Is(err, os.ErrNotExist) {
		keyPath = filepath.Join(dir, keyFile)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return err
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return drop()
	}
	if keyPath == key {
		if err := os.Rename(key, filepath.Join(dir, keyFile)); err != nil {
			return err
		}
	}
	if err := os.Rename(cert, filepath.Join(dir, certFile)); err != nil {
		return err
	}
	return syncDir(dir)
}

// moveOffOldCerts ends the connections still made with a replaced
// certificate that expires within moveBefore: their sessions connect
// again at once, with the current one.
func (a *Agent) moveOffOldCerts(now time.Time) {
	cur := a.current()
	a.mu.Lock()
	defer a.mu.Unlock()
	for c := range a.conns {
		if c.ident != cur && c.ident.cert.Leaf != nil && c.ident.cert.Leaf.NotAfter.Sub(now) < moveBefore {
			c.log.Info("moving this connection onto the renewed certificate")
			c.cut(errCertReplaced)
		}
	}
}

// errCertReplaced ends a connection made with a replaced certificate.
var errCertReplaced = errors.New("the connection's certificate was renewed and the old one expires soon")
