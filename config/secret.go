package config

import (
	"fmt"
	"io"
	"log/slog"
)

const redacted = "[redacted]"

// Secret holds a credential read at load time. Every way Go has of printing
// or serialising a value shows "[redacted]" instead of the content, so a
// Config can be logged or dumped for debugging without leaking passwords;
// only Reveal returns the real value, which makes each use easy to audit.
type Secret string

// Reveal returns the secret itself. Call it only where the value is sent
// to the upstream directory.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer.
func (s Secret) String() string { return redacted }

// GoString implements fmt.GoStringer, covering %#v.
func (s Secret) GoString() string { return redacted }

// Format implements fmt.Formatter so that verbs which bypass String, such
// as %x or %q, cannot print the content either.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// MarshalText implements encoding.TextMarshaler, which yaml and other
// encoders fall back to.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
