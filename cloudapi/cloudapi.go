// Package cloudapi is the HTTP plumbing shared by the cloud directory
// sources (Microsoft Graph now, Google's Directory API next): a JSON GET
// that retries throttled and unavailable answers, honouring Retry-After
// through a clock.Clock so tests need no sleeping, with a retry cap, a
// per-request budget hook, and typed errors that carry the API's own error
// code. Authentication is the caller's http.Client (an oauth2.Transport):
// this package never sees, and so never logs, a token. Pipe (emit.go)
// hands a source's entries to the engine on a goroutine of its own, so
// that the cache writes overlap the requests.
package cloudapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/dirgate/dirgate/clock"
)

// Defaults of Client's limits.
const (
	DefaultMaxRetries    = 6
	DefaultBaseBackoff   = time.Second
	DefaultMaxBackoff    = time.Minute
	DefaultMaxRetryAfter = 10 * time.Minute
	DefaultMaxTotalWait  = 15 * time.Minute
	DefaultMaxBody       = 64 << 20
)

// Client issues GET requests to a cloud API and decodes JSON answers.
// The zero value of every field but HTTP takes the default.
type Client struct {
	// HTTP sends the requests; it adds the credentials (oauth2.Transport).
	HTTP *http.Client
	// Clock is waited on between retries. Default clock.Real.
	Clock clock.Clock
	// MaxRetries is how often one request is re-sent after a retryable
	// answer before the call fails.
	MaxRetries int
	// BaseBackoff and MaxBackoff bound the exponential backoff (with
	// jitter) used when a retryable answer has no Retry-After.
	BaseBackoff, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a longer one
	// fails the call rather than stalling the run.
	MaxRetryAfter time.Duration
	// MaxTotalWait bounds the waits of one request's retries together: a
	// server that keeps answering with long Retry-Afters fails the call
	// after this much waiting instead of MaxRetries × MaxRetryAfter.
	MaxTotalWait time.Duration
	// MaxBody caps the size of an answer.
	MaxBody int64
	// Budget, when set, is called before every request (retries included)
	// and may wait or refuse: APIs with a requests-per-minute quota
	// (Google) meter themselves here. The done it returns is called once
	// the request is answered or has failed, so that a budget counting
	// requests as the server does (when they arrive) can date them.
	Budget func(ctx context.Context) (done func(), err error)
	// Retryable, when set, marks further errors as retryable (Google's
	// 403 rateLimitExceeded); 429, 502, 503 and 504 always are.
	Retryable func(*HTTPError) bool
	// Header is added to every request (e.g. a throttle priority).
	Header http.Header
	// Log receives one line per retry; nil logs nothing.
	Log *slog.Logger
}

// HTTPError is a non-2xx answer.
type HTTPError struct {
	Status int
	// Code and Message are the API's error code and text, when the body
	// was the API's error object.
	Code, Message string
	// RetryAfter is the server's Retry-After, or 0.
	RetryAfter time.Duration
	// Location is the Location header (Graph's 410 Gone names the URL to
	// start over from).
	Location string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// ErrRetriesExhausted wraps the last error of a request that stayed
// throttled or unavailable through every retry.
var ErrRetriesExhausted = errors.New("gave up after retries")

// ErrTooLarge is an answer larger than the client's MaxBody.
var ErrTooLarge = errors.New("the answer is larger than the size limit")

// DecodeError is an answer whose body is not the JSON expected.
type DecodeError struct {
	Path string // the request's path, without the query (which holds state tokens)
	Err  error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%s: the answer is not the JSON expected: %v", e.Path, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// GetJSON gets rawURL, exactly as given, and decodes the JSON answer into
// out. A throttled or unavailable answer is retried on the same URL after
// the server's Retry-After, or after a bounded exponential backoff.
func (c *Client) GetJSON(ctx context.Context, rawURL string, out any) error {
	body, err := c.Get(ctx, rawURL)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &DecodeError{Path: PathOf(rawURL), Err: err}
	}
	return nil
}

// Get gets rawURL like GetJSON and returns the body undecoded.
func (c *Client) Get(ctx context.Context, rawURL string) ([]byte, error) {
	maxRetries := or(c.MaxRetries, DefaultMaxRetries)
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		body, err := c.once(ctx, rawURL)
		if err == nil {
			return body, nil
		}
		err = withoutQuery(err)
		wait, retry := c.retryWait(err, attempt)
		if !retry {
			return nil, err
		}
		if attempt >= maxRetries {
			return nil, fmt.Errorf("%s: %w (%d): %w", PathOf(rawURL), ErrRetriesExhausted, maxRetries, err)
		}
		if maxWait := or(c.MaxRetryAfter, DefaultMaxRetryAfter); wait > maxWait {
			return nil, fmt.Errorf("%s: the server asks to retry after %s, longer than the %s dirgate waits: %w", PathOf(rawURL), wait, maxWait, err)
		}
		if total := or(c.MaxTotalWait, DefaultMaxTotalWait); waited+wait > total {
			return nil, fmt.Errorf("%s: %w after waiting %s (at most %s a request): %w", PathOf(rawURL), ErrRetriesExhausted, waited, total, err)
		}
		waited += wait
		if c.Log != nil {
			c.Log.Warn("cloud API request will be retried", "path", PathOf(rawURL), "attempt", attempt+1, "wait", wait, "err", err)
		}
		if err := c.clock().Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (c *Client) once(ctx context.Context, rawURL string) ([]byte, error) {
	if c.Budget != nil {
		done, err := c.Budget(ctx)
		if err != nil {
			return nil, err
		}
		defer done()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := or(c.MaxBody, DefaultMaxBody)
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", PathOf(rawURL), err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%s: %w (%d bytes)", PathOf(rawURL), ErrTooLarge, limit)
	}
	if resp.StatusCode/100 != 2 {
		return nil, newHTTPError(resp, body, c.clock().Now())
	}
	return body, nil
}

func (c *Client) clock() clock.Clock {
	if c.Clock == nil {
		return clock.Real
	}
	return c.Clock
}

// retryWait says whether err is worth another attempt and how long to
// wait before it.
func (c *Client) retryWait(err error, attempt int) (time.Duration, bool) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 0, false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		switch {
		case he.Status == http.StatusTooManyRequests, he.Status == http.StatusBadGateway,
			he.Status == http.StatusServiceUnavailable, he.Status == http.StatusGatewayTimeout:
		case c.Retryable != nil && c.Retryable(he):
		default:
			return 0, false
		}
		if he.RetryAfter > 0 {
			return he.RetryAfter, true
		}
		return c.backoff(attempt), true
	}
	if permanent(err) {
		return 0, false
	}
	return c.backoff(attempt), true
}

// permanent reports whether an error that is not an HTTP answer would
// repeat on another attempt: a token endpoint's refusal, an unreadable or
// oversized answer, a certificate that does not verify, a request the
// authorized client refuses to send. Anything else is a transport failure
// worth retrying.
func permanent(err error) bool {
	var re *oauth2.RetrieveError
	var de *DecodeError
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	return errors.As(err, &re) || errors.As(err, &de) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrForeignHost) ||
		errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) || errors.As(err, &rh)
}

// withoutQuery takes the query out of the URL a transport error quotes
// (*url.Error's "Get \"<url>\": ..."): it holds paging and delta tokens,
// and the error reaches logs, run history and the console.
func withoutQuery(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = PathOf(ue.URL)
	}
	return err
}

// backoff is base·2^attempt, capped, with "equal jitter": half fixed, half
// random, so that clients throttled together do not retry together.
func (c *Client) backoff(attempt int) time.Duration {
	base, ceiling := or(c.BaseBackoff, DefaultBaseBackoff), or(c.MaxBackoff, DefaultMaxBackoff)
	d := ceiling
	if attempt < 30 && base<<attempt < ceiling {
		d = base << attempt
	}
	return d/2 + rand.N(d/2+1)
}

func newHTTPError(resp *http.Response, body []byte, now time.Time) *HTTPError {
	e := &HTTPError{Status: resp.StatusCode, Location: resp.Header.Get("Location")}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	e.Code, e.Message = decodeErrorBody(body)
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// decodeErrorBody reads the error object of Graph ({"error": {"code":
// "...", "message": "..."}}) and of Google ({"error": {"code": 403,
// "message": "...", "errors": [{"reason": "..."}], "status": "..."}}).
func decodeErrorBody(body []byte) (code, message string) {
	var b struct {
		Error struct {
			Code    json.RawMessage `json:"code"`
			Message string          `json:"message"`
			Status  string          `json:"status"`
			Errors  []struct {
				Reason string `json:"reason"`
			} `json:"errors"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil {
		return "", ""
	}
	if err := json.Unmarshal(b.Error.Code, &code); err != nil {
		code = ""
	}
	if code == "" && len(b.Error.Errors) > 0 {
		code = b.Error.Errors[0].Reason
	}
	if code == "" {
		code = b.Error.Status
	}
	return code, b.Error.Message
}

// PathOf is the URL without its query, fragment or user, for messages:
// queries of cloud APIs hold paging and state tokens, which are long, of
// no use to a reader and must not reach logs.
func PathOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
