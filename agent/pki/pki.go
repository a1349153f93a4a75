// Package pki is the hub's agent certificate authority: an ECDSA P-256 CA
// kept in a directory (every replica of a cluster is given the same
// files), which signs the agent listener's server certificate and each
// enrolled agent's client certificate, and the checks the hub makes on an
// agent's certificate.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names in the CA directory.
const (
	CertFile = "ca.crt"
	KeyFile  = "ca.key"
)

// Validity periods.
const (
	caValidity     = 20 * 365 * 24 * time.Hour
	AgentValidity  = 365 * 24 * time.Hour
	serverValidity = 365 * 24 * time.Hour
	// backdate absorbs clock skew between the hub and its agents.
	backdate = 5 * time.Minute
)

// agentURIPrefix starts the URI SAN that names the agent in its
// certificate: the agent ID follows.
const agentURIPrefix = "urn:dirgate:agent:"

// Errors an agent certificate or CSR can fail with.
var (
	ErrBadCSR       = errors.New("pki: bad certificate signing request")
	ErrNotAgentCert = errors.New("pki: not an agent certificate of this hub")
)

// CA is the hub's agent certificate authority.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is Cert in PEM, as enrolled agents are given it.
	PEM  []byte
	pool *x509.CertPool
}

// LoadOrCreate loads the CA from dir, generating it there first when dir
// holds neither file. A directory holding only one of them is an error
// rather than a reason to replace it: agents trust the existing CA.
func LoadOrCreate(dir string) (*CA, error) {
	_, errC := os.Stat(filepath.Join(dir, CertFile))
	_, errK := os.Stat(filepath.Join(dir, KeyFile))
	if errors.Is(errC, os.ErrNotExist) && errors.Is(errK, os.ErrNotExist) {
		if err := create(dir); err != nil {
			return nil, err
		}
	}
	return Load(dir)
}

func create(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: generate CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "dirgate agent CA", Organization: []string{"dirgate"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki: create CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: encode CA key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: CA directory: %w", err)
	}
	// The key first, exclusively: two replicas started at once on a shared
	// directory must not each write a CA.
	if err := writeNew(filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})); err != nil {
		return err
	}
	return writeNew(filepath.Join(dir, CertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}

// Load reads the CA from dir. The key file must not be readable by others.
func Load(dir string) (*CA, error) {
	keyPath := filepath.Join(dir, KeyFile)
	fi, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pki: CA key %s is accessible to other users (mode %v); chmod 600 it", keyPath, fi.Mode().Perm())
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("pki: CA key %s: no PEM block", keyPath)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key %s: %w", keyPath, err)
	}
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	if !cert.IsCA || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s is not a CA certificate for the key in %s", CertFile, KeyFile)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, key: key, PEM: certPEM, pool: pool}, nil
}

// ParseCertificate reads the first certificate of a PEM text.
func ParseCertificate(pemText []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(pemText)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// Fingerprint is the SHA-256 of a certificate's DER, in lower-case hex:
// what operators compare and what the hub pins agents by.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Fingerprint is the CA certificate's fingerprint.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.Cert) }

// Pool holds the CA alone, for verifying agent certificates.
func (ca *CA) Pool() *x509.CertPool { return ca.pool }

// Agent is what the hub signs into an agent certificate.
type Agent struct {
	ID        string
	Connector string
}

// SignAgent checks an agent's CSR (PEM, an ECDSA P-256 key, a valid
// signature) and issues its client certificate: client authentication
// only, the agent ID in the subject and in a URI SAN, valid for a year.
// Only the CSR's key is taken from it; the names are the hub's.
func (ca *CA) SignAgent(csrPEM []byte, a Agent, now time.Time) (*x509.Certificate, []byte, error) {
	b, _ := pem.Decode(csrPEM)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, nil, fmt.Errorf("%w: no PEM CERTIFICATE REQUEST", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("%w: signature: %v", ErrBadCSR, err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, nil, fmt.Errorf("%w: the key must be ECDSA P-256", ErrBadCSR)
	}
	if a.ID == "" || strings.ContainsAny(a.ID, "/?#") {
		return nil, nil, fmt.Errorf("pki: bad agent ID %q", a.ID)
	}
	uri, err := url.Parse(agentURIPrefix + a.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: agent ID %q: %w", a.ID, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: a.ID, OrganizationalUnit: []string{a.Connector}, Organization: []string{"dirgate agent"}},
		URIs:         []*url.URL{uri},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(AgentValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return ca.sign(tmpl, pub)
}

func (ca *CA) sign(tmpl *x509.Certificate, pub any) (*x509.Certificate, []byte, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: sign %s: %w", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// ServerCertificate issues the agent listener's certificate for hosts
// (DNS names or IP addresses), with a fresh key. Its chain includes the
// CA, so that an enrolling agent can check the CA's fingerprint.
func (ca *CA) ServerCertificate(hosts []string, now time.Time) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("pki: the agent listener's certificate needs at least one host name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"dirgate"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	c, _, err := ca.sign(tmpl, &key.PublicKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw, ca.Cert.Raw}, PrivateKey: key, Leaf: c}, nil
}

// VerifyAgent checks that c is a client certificate this CA issued, valid
// at now, and returns the agent ID it names. The caller still checks that
// the agent is enrolled with c's fingerprint and not revoked.
func (ca *CA) VerifyAgent(c *x509.Certificate, now time.Time) (string, error) {
	_, err := c.Verify(x509.VerifyOptions{Roots: ca.pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotAgentCert, err)
	}
	return AgentID(c)
}

// AgentID returns the agent ID an agent certificate names.
func AgentID(c *x509.Certificate) (string, error) {
	for _, u := range c.URIs {
		if id, ok := strings.CutPrefix(u.String(), agentURIPrefix); ok && id != "" && id == c.Subject.CommonName {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: it names no agent", ErrNotAgentCert)
}

// serial returns a random 128-bit serial number.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic("pki: crypto/rand failed: " + err.Error()) // crypto/rand does not fail on supported platforms
	}
	return n
}

// CSR returns a PEM certificate signing request for key, as an agent
// sends it to enroll.
func CSR(key *ecdsa.PrivateKey, name string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
