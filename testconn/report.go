package testconn

import (
	"encoding/json"
	"math"
	"time"
)

// stepFields is Step without its JSON methods.
type stepFields Step

// stepWire adds the duration in milliseconds, the API's unit.
type stepWire struct {
	*stepFields
	DurationMS float64 `json:"duration_ms"`
}

// MarshalJSON writes the API's form of a step: the duration as
// milliseconds with microsecond precision.
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(stepWire{stepFields: (*stepFields)(&s), DurationMS: float64(s.Duration.Microseconds()) / 1000})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Step) UnmarshalJSON(b []byte) error {
	*s = Step{}
	w := stepWire{stepFields: (*stepFields)(s)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	// Rounding to whole microseconds undoes the float's error: 1.001 ms
	// is 1001µs, not 1000.999999µs.
	s.Duration = time.Duration(math.Round(w.DurationMS*1000)) * time.Microsecond
	return nil
}
