package oidc

import (
	"context"

	"github.com/dirgate/dirgate/state"
)

// publishKeys returns the key ring's persist function: it publishes each
// new key set over the one read before (saved at start), so that a set
// another writer published meanwhile is never overwritten silently.
func publishKeys(keys state.Keys, saved []byte) func([]byte) error {
	prev := saved
	return func(next []byte) error {
		// Called with the key ring's lock held: prev needs no lock of its own.
		if err := keys.PublishSigningKeys(context.Background(), prev, next); err != nil {
			return err
		}
		prev = next
		return nil
	}
}
