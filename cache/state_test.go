package cache

import (
	"testing"

	"github.com/dirgate/dirgate/state"
	"github.com/dirgate/dirgate/state/statetest"
)

func TestStateConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Stores { return openTest(t).States() })
}
