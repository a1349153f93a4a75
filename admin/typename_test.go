package admin

import (
	"testing"

	"github.com/dirgate/dirgate/dirtype"
)

// TestTypeName: the console names a type, built in or registered, as the
// registry does, and shows an unknown type's raw name.
func TestTypeName(t *testing.T) {
	fake := dirtype.OpenLDAPType
	fake.Name, fake.DisplayName = "fakedir", "Fake Directory"
	remove, err := dirtype.Register(&fake)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	typeName := funcs["typeName"].(func(string) string)
	for in, want := range map[string]string{
		"ad": "Active Directory", "AD": "Active Directory", "domino": "HCL Domino", "openldap": "OpenLDAP",
		"fakedir": "Fake Directory", "x500": "x500",
	} {
		if got := typeName(in); got != want {
			t.Errorf("typeName(%q) = %q, want %q", in, got, want)
		}
	}
}
