// Package upstream connects to a connector's upstream directory hosts: the
// primary, then the alternate (failover), over plain LDAP, LDAPS or StartTLS,
// with the connector's certificate policy (strict, relaxed, none). Both the
// sync engine and the password checks dial through it, so failover and TLS
// behave the same for both.
package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/metrics"
)

// Encryption modes, as in the connector configuration.
const (
	EncryptionStrict  = "strict"
	EncryptionRelaxed = "relaxed"
	EncryptionNone    = "none"
	TLSModeLDAPS      = "ldaps"
	TLSModeStartTLS   = "starttls"
)

// MinRSABits is the smallest RSA key strict mode accepts: keys of 1024 bits
// or less are refused.
const MinRSABits = 1025

// Target is everything needed to reach one connector's upstream.
type Target struct {
	Name       string   // connector name, for messages
	Hosts      []string // primary first, then alternate
	Port       int
	Encryption string
	TLSMode    string
	RootCAs    *x509.CertPool // nil: the system pool
	ServerName string         // overrides the host name checked in strict mode
	Timeout    time.Duration
	// ClientCert is presented when the server asks for one: Google's
	// Secure LDAP admits only LDAP clients with the certificate it issued
	// them. nil: none.
	ClientCert *tls.Certificate
}

// FromConnector builds a Target from configuration, loading the CA file.
func FromConnector(c *config.Connector) (*Target, error) {
	t := &Target{
		Name:       c.Name,
		Hosts:      []string{c.Host},
		Port:       c.Port,
		Encryption: c.Encryption,
		TLSMode:    c.TLSMode,
		ServerName: c.ServerName,
		Timeout:    c.Timeout.Std(),
	}
	if c.AlternateHost != "" {
		t.Hosts = append(t.Hosts, c.AlternateHost)
	}
	if c.CAFile != "" {
		var err error
		if t.RootCAs, err = LoadCAFile(c.CAFile); err != nil {
			return nil, fmt.Errorf("connector %s: ca_file: %w", c.Name, err)
		}
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	return t, nil
}

// DefaultTimeout bounds each network operation of a target whose
// connector sets no timeout.
const DefaultTimeout = 10 * time.Second

// LoadCAFile reads the PEM certificates of path into a pool.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// Step names the phase of a connection attempt that failed.
type Step string

// The phases of a connection attempt.
const (
	StepDNS      Step = "dns"
	StepTCP      Step = "tcp"
	StepTLS      Step = "tls"
	StepStartTLS Step = "starttls"
	StepBind     Step = "bind"
)

// DialError tells which host failed at which step and why.
type DialError struct {
	Host string
	Step Step
	Err  error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("%s: %s: %v", e.Host, e.Step, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// ErrUnreachable is matched (errors.Is) by a Dial failure on every host: the
// upstream is unavailable, as opposed to refusing what we asked.
var ErrUnreachable = errors.New("no upstream host reachable")

type unreachable struct{ errs []error }

func (u *unreachable) Error() string {
	return fmt.Sprintf("%v: %v", ErrUnreachable, errors.Join(u.errs...))
}
func (u *unreachable) Unwrap() []error { return append([]error{ErrUnreachable}, u.errs...) }

// Dial connects to the first host that answers, in order (failover). It
// returns the connection and the host it reached.
func (t *Target) Dial(ctx context.Context) (*ldap.Conn, string, error) {
	raw, host, err := t.dialAny(ctx)
	if err != nil {
		return nil, "", err
	}
	return t.ldapConn(raw), host, nil
}

// DialHost connects to one host, with the TLS handshake the mode asks for.
func (t *Target) DialHost(ctx context.Context, host string) (*ldap.Conn, error) {
	raw, err := t.dialRaw(ctx, host)
	if err != nil {
		return nil, err
	}
	return t.ldapConn(raw), nil
}

func (t *Target) ldapConn(raw net.Conn) *ldap.Conn {
	_, isTLS := raw.(*tls.Conn)
	c := ldap.NewConn(raw, isTLS)
	c.Start()
	c.SetTimeout(t.Timeout)
	return c
}

// dialAny is the failover loop of Dial and DialBind.
func (t *Target) dialAny(ctx context.Context) (net.Conn, string, error) {
	var errs []error
	for _, h := range t.Hosts {
		c, err := t.dialRaw(ctx, h)
		if err == nil {
			metrics.UpstreamUp.WithLabelValues(t.Name, h).Set(1)
			return c, h, nil
		}
		if ctx.Err() == nil {
			metrics.UpstreamUp.WithLabelValues(t.Name, h).Set(0)
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", &unreachable{errs}
}

// dialRaw connects to one host and completes LDAPS or StartTLS as the
// mode asks, within the target's timeout.
func (t *Target) dialRaw(ctx context.Context, host string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	addr := net.JoinHostPort(host, strconv.Itoa(t.Port))
	if net.ParseIP(host) == nil {
		if _, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
			return nil, &DialError{host, StepDNS, err}
		}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &DialError{host, StepTCP, err}
	}
	if t.Encryption == EncryptionNone || (t.TLSMode != TLSModeLDAPS && t.TLSMode != TLSModeStartTLS) {
		return raw, nil
	}
	cfg, asked := t.handshakeConfig(host)
	if t.TLSMode == TLSModeStartTLS {
		tc, err := startTLS(ctx, raw, cfg)
		if err != nil {
			raw.Close()
			return nil, &DialError{host, StepStartTLS, explainHandshake(err, *asked)}
		}
		return tc, nil
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &DialError{host, StepTLS, explainHandshake(err, *asked)}
	}
	return tc, nil
}

// handshakeConfig is TLSConfig for one handshake, noting in *asked whether
// the server asked for a client certificate: under TLS 1.2 a server that
// refuses the one sent (or misses one) answers with a plain handshake
// failure, which only that request tells from other failures.
func (t *Target) handshakeConfig(host string) (*tls.Config, *bool) {
	cfg, asked := t.TLSConfig(host), new(bool)
	cfg.GetClientCertificate = func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		*asked = true
		return t.clientCertificate(cri)
	}
	return cfg, asked
}

// clientCertificate answers a server's request for a client certificate
// with ClientCert, whatever CAs the request names: Google issues the
// certificates it accepts, and a CA list that does not name their issuer
// must not make the client send none. Without ClientCert it sends none.
func (t *Target) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	if t.ClientCert == nil {
		return &tls.Certificate{}, nil
	}
	return t.ClientCert, nil
}

// explainHandshake is Explain, but a TLS alert from a server that asked
// for a client certificate reports that certificate refused.
func explainHandshake(err error, asked bool) error {
	var op *net.OpError
	if asked && errors.As(err, &op) && op.Op == "remote error" && !clientCertRefused(err) {
		return refusedClientCert(err)
	}
	return Explain(err)
}

// TLSConfig returns the client TLS configuration for host under the
// target's encryption mode.
func (t *Target) TLSConfig(host string) *tls.Config {
	name := host
	if t.ServerName != "" {
		name = t.ServerName
	}
	cfg := &tls.Config{ServerName: name, RootCAs: t.RootCAs, MinVersion: tls.VersionTLS12}
	cfg.GetClientCertificate = t.clientCertificate
	switch t.Encryption {
	case EncryptionRelaxed:
		// Self-signed and mismatched certificates are accepted on purpose:
		// that is what relaxed means. The channel is still encrypted.
		cfg.InsecureSkipVerify = true
	case EncryptionStrict:
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			return CheckKeyStrength(cs.PeerCertificates[0])
		}
	}
	return cfg
}

// WeakKeyError reports a certificate key below strict mode's minimum.
type WeakKeyError struct{ Bits int }

func (e *WeakKeyError) Error() string {
	return fmt.Sprintf("weak key: server certificate has a %d-bit RSA key; strict mode needs more than 1024 bits", e.Bits)
}

// CheckKeyStrength refuses RSA keys of 1024 bits or less.
func CheckKeyStrength(cert *x509.Certificate) error {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return &WeakKeyError{Bits: k.N.BitLen()}
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported certificate key type %T", k)
	}
	return nil
}

// Explain turns a TLS verification failure into an error whose message
// names the reason an admin can act on (expired, name mismatch, unknown CA,
// weak key, our client certificate refused) while keeping the original
// error in the chain.
func Explain(err error) error {
	var (
		inv  x509.CertificateInvalidError
		host x509.HostnameError
		ua   x509.UnknownAuthorityError
		weak *WeakKeyError
		verr *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &weak):
		return err
	case clientCertRefused(err):
		return refusedClientCert(err)
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return fmt.Errorf("certificate expired or not yet valid: %w", err)
	case errors.As(err, &host):
		return fmt.Errorf("certificate name mismatch: %w", err)
	case errors.As(err, &ua):
		return fmt.Errorf("certificate signed by an unknown CA (set ca_file, or use encryption: relaxed): %w", err)
	case errors.As(err, &verr):
		return fmt.Errorf("certificate rejected: %w", err)
	}
	return err
}

// ErrClientCertRefused is matched (errors.Is) by a failure that is the
// server refusing the TLS client certificate, or demanding one.
var ErrClientCertRefused = errors.New("the server refused the TLS client certificate")

// refusedClientCert says that the server refused our client certificate.
func refusedClientCert(err error) error {
	return fmt.Errorf("%w (it demands one and none was sent, or it does not trust the one sent): %w", ErrClientCertRefused, err)
}

// clientCertRefused reports whether err is a TLS alert from the server
// about the client's certificate (certificate required, bad, unknown,
// expired or from an unknown CA). Under TLS 1.3 the server checks the
// client certificate after the client finished its handshake, so the
// alert is what the first read after the handshake returns.
func clientCertRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil &&
		strings.Contains(op.Err.Error(), "certificate")
}
