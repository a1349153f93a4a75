package pgstate

import (
	"testing"

	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/statetest"
)

func TestAgentsConformance(t *testing.T) {
	statetest.RunAgents(t, func(t *testing.T) state.Agents {
		s, _ := testStore(t)
		return s
	})
}
