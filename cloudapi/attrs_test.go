package cloudapi

import (
	"reflect"
	"testing"

	"github.com/dirgate/dirgate/cache"
)

// TestAttrsAddLikeCache: Attrs holds what cache.Attrs.Add would (empty
// and repeated values dropped, attributes without values left out), and
// an append to one attribute's values leaves the next one's alone.
func TestAttrsAddLikeCache(t *testing.T) {
	adds := []struct {
		name   string
		values []string
	}{{"objectClass", []string{"top", "person"}}, {"cn", []string{"A", "", "A", "1"}}, {"empty", []string{""}},
		{"none", nil}, {"mail", []string{"a@example.test"}}, {"aliases", []string{"b@example.test", "c@example.test", "b@example.test"}}}
	var want cache.Attrs
	got := NewAttrs(2, 3) // too small: the arrays grow
	for _, a := range adds {
		want.Add(a.name, a.values...)
		got.Add(a.name, a.values...)
	}
	if !reflect.DeepEqual(got.Attrs, want) {
		t.Fatalf("got %v, want %v", got.Attrs, want)
	}
	got.Attrs[1].Values = append(got.Attrs[1].Values, "x")
	if !reflect.DeepEqual(got.Attrs[2], want[2]) {
		t.Errorf("an append to cn changed mail: %v", got.Attrs[2])
	}
}
