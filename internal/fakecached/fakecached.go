// Package fakecached is a dirsync.Cached over a map, for the tests of
// sources that read the cache through it.
package fakecached

import (
	"context"
	"slices"

	"github.com/dirgate/dirgate/cache"
)

// Entries is a dirsync.Cached over entries by stable ID.
type Entries map[string]*cache.Entry

// Get returns the entry with ID id, nil when there is none.
func (m Entries) Get(_ context.Context, id string) (*cache.Entry, error) { return m[id], nil }

// GroupsListing returns the IDs of the groups that list dn as a member.
func (m Entries) GroupsListing(_ context.Context, dn string) ([]string, error) {
	var ids []string
	for id, e := range m {
		if e.Kind == cache.KindGroup && slices.Contains(e.Members, dn) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
