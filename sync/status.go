package dirsync

import (
	"encoding/json"
	"time"

	"github.com/dirgate/dirgate/cache"
)

// ConnectorStatus is what admins see of a connector. It is also the wire
// form of the admin API (GET /api/v1/connectors) and what the CLI's API
// client decodes, so the server and the client share one definition.
type ConnectorStatus struct {
	Name          string     `json:"name"`
	Type          string     `json:"type"`
	Description   string     `json:"description,omitempty"`
	Host          string     `json:"host"`
	AlternateHost string     `json:"alternate_host,omitempty"`
	Schedule      string     `json:"schedule"` // e.g. "daily at 08:00, 13:00, 23:00 Europe/Berlin"
	Running       bool       `json:"running"`
	State         string     `json:"state"`    // ok, error, blocked, never synced, running
	LastRun       *cache.Run `json:"last_run"` // nil when never synced
	Users         int        `json:"users"`
	Groups        int        `json:"groups"`
	// Blocked is the reason of a blocked plan waiting for review, if any.
	Blocked string `json:"blocked,omitempty"`

	// The fields below are encoded by MarshalJSON: the API writes an unset
	// instant as null and the cache age in whole seconds.

	NextRun     time.Time `json:"-"` // zero when none
	LastSuccess time.Time `json:"-"` // zero when never synced successfully
	// CacheAge is the time since LastSuccess when the status was taken;
	// zero when never synced successfully.
	CacheAge time.Duration `json:"-"`
}

// statusFields is ConnectorStatus without its JSON methods.
type statusFields ConnectorStatus

// statusWire adds the fields whose wire form differs from the Go one.
type statusWire struct {
	*statusFields
	NextRun         *time.Time `json:"next_run"`
	LastSuccess     *time.Time `json:"last_success"`
	CacheAgeSeconds *int64     `json:"cache_age_seconds"`
}

// MarshalJSON writes the API's form: next_run and last_success in UTC or
// null, cache_age_seconds null when never synced successfully.
func (s ConnectorStatus) MarshalJSON() ([]byte, error) {
	w := statusWire{statusFields: (*statusFields)(&s), NextRun: instant(s.NextRun), LastSuccess: instant(s.LastSuccess)}
	if !s.LastSuccess.IsZero() {
		age := int64(s.CacheAge / time.Second)
		w.CacheAgeSeconds = &age
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *ConnectorStatus) UnmarshalJSON(b []byte) error {
	*s = ConnectorStatus{}
	w := statusWire{statusFields: (*statusFields)(s)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.NextRun != nil {
		s.NextRun = *w.NextRun
	}
	if w.LastSuccess != nil {
		s.LastSuccess = *w.LastSuccess
	}
	if w.CacheAgeSeconds != nil {
		s.CacheAge = time.Duration(*w.CacheAgeSeconds) * time.Second
	}
	return nil
}

func instant(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
