package proxy

import (
	"strings"
	"testing"
)

// TestParseOptionsBounded: repeated options count once and a description
// with more distinct options than any stored attribute selects nothing, so
// one long description cannot make every entry's attribute check cost the
// length of the request.
func TestParseOptionsBounded(t *testing.T) {
	many := func(n int, distinct bool) string {
		opts := make([]string, n)
		for i := range opts {
			opts[i] = "lang-en"
			if distinct {
				opts[i] = "x-" + strings.Repeat("a", i+1)
			}
		}
		return strings.Join(opts, ";")
	}
	tests := []struct {
		name     string
		opts     string
		ok       bool
		wantOpts int
	}{
		{"one", "lang-en", true, 1},
		{"repeated, any case", "lang-en;LANG-EN;lang-en", true, 1},
		{"a million repeats", many(1_000_000, false), true, 1},
		{"at the cap", many(maxOptions, true), true, maxOptions},
		{"past the cap", many(maxOptions+1, true), false, 0},
		{"empty option", "lang-en;", false, 0},
	}
	for _, tt := range tests {
		sel, ok := parseOptions(tt.opts)
		if ok != tt.ok || (ok && len(sel.opts) != tt.wantOpts) {
			t.Errorf("%s: ok %v with %d options, want ok %v with %d", tt.name, ok, len(sel.opts), tt.ok, tt.wantOpts)
		}
	}
}
