package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in YAML as a Go duration string such
// as "30s", "5m" or "1h30m". Bare numbers are refused because nothing in
// the file would say whether 30 means seconds or nanoseconds.
type Duration time.Duration

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats like time.Duration, e.g. "15m0s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the same form that UnmarshalYAML reads, so dumps of a
// Config stay readable.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a duration such as \"30s\" or \"5m\", got %s", describe(n))
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		return fmt.Errorf("%s has no unit; write it with one, e.g. \"%ss\" for seconds or \"%sm\" for minutes", n.Value, n.Value, n.Value)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration; use a number with a unit (ms, s, m, h), e.g. \"30s\" or \"1h30m\"", n.Value)
	}
	*d = Duration(v)
	return nil
}
