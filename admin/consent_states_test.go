package admin

import (
	"testing"
	"time"
)

// TestConsentStatesPerSession: one console session cannot fill the table
// of consent round trips; another session still starts one, and a state
// is single use and expires.
func TestConsentStatesPerSession(t *testing.T) {
	c := newConsentStates()
	now := time.Now()
	for i := range consentsPerSession {
		if _, ok := c.put(now, consentState{session: "s1"}); !ok {
			t.Fatalf("put %d of session s1 refused", i)
		}
	}
	if _, ok := c.put(now, consentState{session: "s1"}); ok {
		t.Error("session s1 went past its share")
	}
	id, ok := c.put(now, consentState{session: "s2", connector: "m365"})
	if !ok {
		t.Fatal("session s2 refused")
	}
	if st, ok := c.take(now, id); !ok || st.connector != "m365" {
		t.Errorf("take = %+v, %v", st, ok)
	}
	if _, ok := c.take(now, id); ok {
		t.Error("state taken twice")
	}
	late, _ := c.put(now, consentState{session: "s2"})
	if _, ok := c.take(now.Add(consentTTL+time.Second), late); ok {
		t.Error("expired state taken")
	}
}
