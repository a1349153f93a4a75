package syncreq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	dirsync "github.com/dirgate/dirgate/sync"
)

// options is the stored form of dirsync.Options: everything but Progress,
// which cannot travel to another process.
type options struct {
	DryRun   bool     `json:"dry_run,omitempty"`
	Trigger  string   `json:"trigger,omitempty"`
	Mode     string   `json:"mode,omitempty"`
	Force    bool     `json:"force,omitempty"`
	Approved []string `json:"approved,omitempty"`
}

func encodeOptions(o dirsync.Options) ([]byte, error) {
	return json.Marshal(options{DryRun: o.DryRun, Trigger: o.Trigger, Mode: o.Mode, Force: o.Force, Approved: o.Approved})
}

func decodeOptions(b []byte) (dirsync.Options, error) {
	var w options
	if err := json.Unmarshal(b, &w); err != nil {
		return dirsync.Options{}, fmt.Errorf("syncreq: decode options: %w", err)
	}
	return dirsync.Options{DryRun: w.DryRun, Trigger: w.Trigger, Mode: w.Mode, Force: w.Force, Approved: w.Approved}, nil
}

// runError is the stored form of a run's error. Callers branch on the
// error's type and sentinels (the admin API answers 409 for a run in
// progress, a blocked plan is offered for review), so those are kept.
type runError struct {
	Message string `json:"message"`
	// Sentinel names the entry of sentinels the error wraps, if any.
	Sentinel string `json:"sentinel,omitempty"`
	// Blocked holds a *dirsync.BlockedError.
	Blocked *dirsync.BlockedError `json:"blocked,omitempty"`
}

// sentinels are the errors a caller of SyncNow tests with errors.Is, by
// their stored names.
var sentinels = []struct {
	name string
	err  error
}{
	{"running", dirsync.ErrRunning},
	{"unknown-connector", dirsync.ErrUnknownConnector},
	{"cursor-invalid", dirsync.ErrCursorInvalid},
	{"canceled", context.Canceled},
	{"deadline", context.DeadlineExceeded},
}

func encodeError(err error) ([]byte, error) {
	if err == nil {
		return nil, nil
	}
	w := runError{Message: err.Error()}
	if !errors.As(err, &w.Blocked) {
		w.Blocked = nil
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			w.Sentinel = s.name
			break
		}
	}
	return json.Marshal(w)
}

func decodeError(b []byte) error {
	if b == nil {
		return nil
	}
	var w runError
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("syncreq: decode the leader's error: %w", err)
	}
	if w.Blocked != nil {
		return w.Blocked
	}
	e := &remoteError{msg: w.Message}
	for _, s := range sentinels {
		if s.name == w.Sentinel {
			e.sentinel = s.err
		}
	}
	return e
}

// remoteError is an error of the leader's run: its message as the leader
// wrote it, wrapping the sentinel it wrapped there.
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }
