package fakecached

import (
	"context"
	"slices"
	"testing"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
)

var _ dirsync.Cached = Entries(nil)

func TestEntries(t *testing.T) {
	m := Entries{
		"u": {ID: "u", DN: "cn=u", Kind: cache.KindUser},
		"g": {ID: "g", DN: "cn=g", Kind: cache.KindGroup, Members: []string{"cn=u"}},
		"h": {ID: "h", DN: "cn=h", Kind: cache.KindGroup, Members: []string{"cn=g"}},
	}
	ctx := context.Background()
	if e, _ := m.Get(ctx, "u"); e != m["u"] {
		t.Errorf("Get(u) = %v", e)
	}
	if e, _ := m.Get(ctx, "x"); e != nil {
		t.Errorf("Get(x) = %v, want nil", e)
	}
	for dn, want := range map[string][]string{"cn=u": {"g"}, "cn=g": {"h"}, "cn=h": nil} {
		if got, _ := m.GroupsListing(ctx, dn); !slices.Equal(got, want) {
			t.Errorf("GroupsListing(%s) = %v, want %v", dn, got, want)
		}
	}
}
