package require

import (
	"errors"
	"testing"
)

type recorder struct{ failed, stopped bool }

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) FailNow()              { r.stopped = true }

// TestStopsOnFailure checks that a failed assertion stops the test and a
// held one does not.
func TestStopsOnFailure(t *testing.T) {
	for _, fail := range []bool{false, true} {
		r := &recorder{}
		var err error
		if fail {
			err = errors.New("x")
		}
		New(r).NoError(err)
		if r.failed != fail || r.stopped != fail {
			t.Errorf("error %v: failed %v, stopped %v", err, r.failed, r.stopped)
		}
	}
}
