package cache

import (
	"testing"

	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/statetest"
)

func TestAgentsConformance(t *testing.T) {
	statetest.RunAgents(t, func(t *testing.T) state.Agents { return openTest(t) })
}
