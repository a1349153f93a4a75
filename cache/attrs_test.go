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

func TestAddressScope(t *testing.T) {
	in := []string{" Ann@Contoso.com ", "ann@contoso.com", "a.smith@other.example", "nobody", "@contoso.com", "x@", "b@CONTOSO.com"}
	if got, want := NewAddressScope([]string{"Contoso.com"}).Addresses(in...), []string{"ann@contoso.com", "b@contoso.com"}; !slices.Equal(got, want) {
		t.Errorf("scoped: %v, want %v", got, want)
	}
	if got, want := NewAddressScope(nil).Addresses(in...), []string{"ann@contoso.com", "a.smith@other.example", "b@contoso.com"}; !slices.Equal(got, want) {
		t.Errorf("unscoped: %v, want %v", got, want)
	}
	if NewAddressScope(nil).Restricted() || !NewAddressScope([]string{"x.test"}).Restricted() {
		t.Error("Restricted")
	}
}
