package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dirgate/dirgate/agent/pki"
)

// Typed enrollment failures, so the command can say what to do next.
var (
	// ErrTokenUsed: the token was redeemed already (tokens are single-use).
	ErrTokenUsed = errors.New("the enrollment token was already used; create a new one with `dirgate agent token create`")
	// ErrTokenExpired: the token's lifetime is over.
	ErrTokenExpired = errors.New("the enrollment token has expired; create a new one with `dirgate agent token create`")
	// ErrTokenUnknown: the hub never issued this token (mistyped, or
	// created on another hub).
	ErrTokenUnknown = errors.New("the hub does not know this enrollment token; check it was copied whole, from this hub")
	// ErrTokenConnector: the token is for another connector than the one
	// agent.yaml serves; the hub did not spend it.
	ErrTokenConnector = errors.New("the enrollment token is for another connector than connector.name in agent.yaml; create a token for this connector")
	// ErrFingerprint: the hub's certificate chain does not lead to the CA
	// whose fingerprint the operator gave. Nothing was sent.
	ErrFingerprint = errors.New("the hub's certificate chain does not match --ca-sha256; the token was NOT sent")
	// ErrHubUnreachable: no connection to the hub could be made.
	ErrHubUnreachable = errors.New("cannot reach the hub")
)

// Files of the state directory.
const (
	keyFile      = "agent.key"
	certFile     = "agent.crt"
	caFile       = "ca.crt"
	identityFile = "agent.json"
)

// EnrollOptions are the inputs of Enroll.
type EnrollOptions struct {
	Hub       string // https://host:port of the hub's agent listener
	Token     string
	CASHA256  string // the hub CA's SHA-256 fingerprint, hex, colons allowed
	StateDir  string
	Name      string // shown in the hub's console
	Version   string
	Connector string // the connector of agent.yaml; the token must be for it
}

// Identity is what enrollment leaves in the state directory.
type Identity struct {
	AgentID   string `json:"agent_id"`
	Connector string `json:"connector"`
	Hub       string `json:"hub"`
	// Cert is the agent's client certificate with its key; CA the hub's
	// agent CA, the only root the agent trusts for the hub.
	Cert tls.Certificate   `json:"-"`
	CA   *x509.Certificate `json:"-"`
}

// enrollRequest and enrollResponse are the bodies of the hub's
// POST /agent/v1/enroll.
type enrollRequest struct {
	Token   string `json:"token"`
	CSR     string `json:"csr"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// Connector makes the hub refuse, without spending it, a token for
	// another connector.
	Connector string `json:"connector,omitempty"`
}

type enrollResponse struct {
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
	AgentID     string `json:"agent_id"`
	Connector   string `json:"connector"`
}

// ParseFingerprint reads a SHA-256 fingerprint written in hex, with or
// without colons, in either case.
func ParseFingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%q is not a SHA-256 fingerprint (64 hex digits, colons allowed)", s)
	}
	return b, nil
}

// pinnedTLS returns a TLS configuration that trusts only a CA whose
// certificate hashes to fp, and which the hub must present in its chain.
// It verifies before any application data is sent, so a wrong hub never
// sees the token.
func pinnedTLS(fp []byte) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The chain is verified in VerifyConnection, against the pinned CA
		// taken from the chain itself, instead of the system roots.
		InsecureSkipVerify: true, //nolint:gosec
		NextProtos:         []string{"h2", "http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			var ca *x509.Certificate
			for _, c := range cs.PeerCertificates {
				if sum := sha256.Sum256(c.Raw); bytes.Equal(sum[:], fp) {
					ca = c
				}
			}
			if ca == nil || !ca.IsCA || len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("%w (the hub presented %s)", ErrFingerprint, chainFingerprints(cs.PeerCertificates))
			}
			return verifyServer(cs, ca)
		},
	}
}

// verifyServer checks the hub's leaf certificate against ca and the name
// dialed.
func verifyServer(cs tls.ConnectionState, ca *x509.Certificate) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, DNSName: cs.ServerName,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("the hub's certificate is not valid under its agent CA: %w", err)
	}
	return nil
}

func chainFingerprints(chain []*x509.Certificate) string {
	var fps []string
	for _, c := range chain {
		sum := sha256.Sum256(c.Raw)
		fps = append(fps, fmt.Sprintf("%s (%s)", hex.EncodeToString(sum[:]), c.Subject.CommonName))
	}
	if len(fps) == 0 {
		return "no certificate"
	}
	return strings.Join(fps, ", ")
}

// Enroll obtains a client certificate from the hub for a P-256 key made
// here (the key never leaves this machine), and stores key, certificate
// and the hub's CA in the state directory. The hub's chain is checked
// against the fingerprint before the token is sent.
func Enroll(ctx context.Context, o EnrollOptions) (*Identity, error) {
	fp, err := ParseFingerprint(o.CASHA256)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the agent's key: %w", err)
	}
	csr, err := pki.CSR(key, o.Name)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: pinnedTLS(fp), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	status, data, err := postJSON(ctx, &http.Client{Transport: tr}, strings.TrimSuffix(o.Hub, "/")+"/agent/v1/enroll",
		enrollRequest{Token: o.Token, Name: o.Name, Version: o.Version, CSR: string(csr), Connector: o.Connector})
	switch {
	case errors.Is(err, ErrFingerprint):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w at %s: %w", ErrHubUnreachable, o.Hub, err)
	case status != http.StatusOK:
		return nil, enrollRefusal(status, data)
	}
	var er enrollResponse
	if err := json.Unmarshal(data, &er); err != nil {
		return nil, fmt.Errorf("the hub's answer is not an enrollment: %w", err)
	}
	id, err := er.identity(key, fp, o)
	if err != nil {
		return nil, err
	}
	if err := id.save(o.StateDir, key, er); err != nil {
		return nil, err
	}
	return id, nil
}

// postJSON posts in as JSON to url with cl, giving up after a minute, and
// returns the answer's status and body (at most 1 MiB). A body that cannot
// be read is an error, as is no answer.
func postJSON(ctx context.Context, cl *http.Client, url string, in any) (int, []byte, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := cl.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the hub's answer: %w", err)
	}
	return resp.StatusCode, data, nil
}

// tokenErrors maps the hub's error codes about tokens to their errors.
var tokenErrors = map[string]error{
	"token_used": ErrTokenUsed, "token_expired": ErrTokenExpired,
	"token_unknown": ErrTokenUnknown, "token_connector": ErrTokenConnector,
}

// errorBody reads the hub's {"error": code, "message": text} answer; a
// body of another shape is the message itself.
func errorBody(body []byte) (code, msg string) {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return "", strings.TrimSpace(string(body))
	}
	if e.Message == "" {
		return e.Error, e.Error
	}
	return e.Error, e.Message
}

// enrollRefusal turns the hub's refusal into a typed error.
func enrollRefusal(status int, body []byte) error {
	code, msg := errorBody(body)
	if err, ok := tokenErrors[code]; ok {
		return err
	}
	return fmt.Errorf("the hub refused the enrollment (HTTP %d): %s", status, msg)
}

// identity checks the hub's answer: the CA is the pinned one, and the
// certificate is for our key, a client certificate under that CA, for the
// connector of agent.yaml.
func (er *enrollResponse) identity(key *ecdsa.PrivateKey, fp []byte, o EnrollOptions) (*Identity, error) {
	ca, err := pki.ParseCertificate([]byte(er.CA))
	if err != nil {
		return nil, fmt.Errorf("the hub's CA: %w", err)
	}
	if sum := sha256.Sum256(ca.Raw); !bytes.Equal(sum[:], fp) {
		return nil, fmt.Errorf("%w: the CA in the hub's answer is another one", ErrFingerprint)
	}
	cert, err := pki.ParseCertificate([]byte(er.Certificate))
	if err != nil {
		return nil, fmt.Errorf("the agent's certificate: %w", err)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("the hub returned a certificate for another key")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("the agent's certificate is not a client certificate of the hub's CA: %w", err)
	}
	if o.Connector != "" && er.Connector != o.Connector {
		return nil, fmt.Errorf("the token is for connector %q but agent.yaml serves %q; create a token for %q, or fix connector.name",
			er.Connector, o.Connector, o.Connector)
	}
	return &Identity{AgentID: er.AgentID, Connector: er.Connector, Hub: o.Hub, CA: ca,
		Cert: tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}, nil
}

// save writes the identity: key 0600, in a directory only the agent's user
// can enter.
func (id *Identity) save(dir string, key *ecdsa.PrivateKey, er enrollResponse) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	meta, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data []byte
	}{
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})},
		{certFile, []byte(er.Certificate)},
		{caFile, []byte(er.CA)},
		{identityFile, append(meta, '\n')},
	} {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	return nil
}

// writeFileAtomic replaces name with data (0600), so that a crash or a
// power loss leaves the old file or the new, never half of one: the data
// reaches the disk before the rename, and the rename before it returns.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	for _, step := range []func() error{
		func() error { _, err := tmp.Write(data); return err },
		func() error { return tmp.Chmod(0o600) },
		tmp.Sync,
	} {
		if err := step(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// LoadIdentity reads what Enroll stored in dir, finishing first a
// certificate renewal that a crash interrupted.
func LoadIdentity(dir string) (*Identity, error) {
	if err := promoteRenewed(dir); err != nil {
		return nil, fmt.Errorf("finishing a certificate renewal: %w", err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no enrollment; run `dirgate agent enroll` first", dir)
	}
	if err != nil {
		return nil, err
	}
	id := &Identity{}
	if err := json.Unmarshal(meta, id); err != nil {
		return nil, fmt.Errorf("%s: %w", identityFile, err)
	}
	if id.Cert, err = tls.LoadX509KeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile)); err != nil {
		return nil, fmt.Errorf("the agent's certificate and key: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, caFile))
	if err != nil {
		return nil, err
	}
	if id.CA, err = pki.ParseCertificate(caPEM); err != nil {
		return nil, fmt.Errorf("%s: %w", caFile, err)
	}
	return id, nil
}
