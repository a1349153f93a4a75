package cloudapi

import (
	"net/http"
	"net/url"
	"strings"
)

// RefuseRedirects is an http.Client CheckRedirect that follows no
// redirect: the client returns the 3xx answer, which Client reports as an
// *HTTPError. Cloud APIs name their next pages in the body, never by a
// redirect, and a followed redirect takes the request to whatever host the
// Location names: a header the transport adds (a bearer token) on every
// hop, a form (a password) re-posted on 307 and 308, the query (state
// tokens) in the URL.
func RefuseRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// NoRedirects returns a copy of hc (nil: a zero client) whose requests
// follow no redirect, for requests that carry secrets in their headers or
// body.
func NoRedirects(hc *http.Client) *http.Client {
	c := http.Client{}
	if hc != nil {
		c = *hc
	}
	c.CheckRedirect = RefuseRedirects
	return &c
}

// Origin is the scheme and host of an absolute URL, lower-cased and
// without the scheme's default port ("https://graph.microsoft.com"); ""
// when rawURL is not an absolute http or https URL.
func Origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return ""
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	switch {
	case scheme == "https":
		host = strings.TrimSuffix(host, ":443")
	case scheme == "http":
		host = strings.TrimSuffix(host, ":80")
	default:
		return ""
	}
	return scheme + "://" + host
}

// SameOrigin reports whether link is on base's scheme and host: a link an
// API returned (a next page, a delta link) is followed only then.
func SameOrigin(link, base string) bool {
	o := Origin(link)
	return o != "" && o == Origin(base)
}
