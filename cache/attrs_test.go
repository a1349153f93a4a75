package cache

import (
	"slices"
	"testing"
)

func TestAttrsAdd(t *testing.T) {
	var a Attrs
	a.Add("cn", "Ann", "", "Ann", "a-1")
	a.Add("mail")
	a.Add("sn", "")
	a.Add("accountEnabled", Bool(false))
	want := Attrs{{Name: "cn", Values: []string{"Ann", "a-1"}}, {Name: "accountEnabled", Values: []string{"FALSE"}}}
	if !slices.EqualFunc(a, want, func(x, y Attr) bool { return x.Name == y.Name && slices.Equal(x.Values, y.Values) }) {
		t.Fatalf("got %+v, want %+v", a, want)
	}
}
