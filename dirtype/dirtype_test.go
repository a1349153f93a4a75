package dirtype

import (
	"slices"
	"strings"
	"testing"
)

// TestRegistryComplete: every type has what config, authn, testconn, admin
// and the sources read, and the built-in order (which error messages and
// the configuration's golden files show) is openldap, ad, domino, entra, google.
func TestRegistryComplete(t *testing.T) {
	if got, want := Names(), []string{OpenLDAP, ActiveDirectory, Domino, Entra, Google}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	seen := map[string]bool{}
	for _, typ := range All() {
		if err := typ.Check(); err != nil {
			t.Error(err)
		}
		if seen[typ.Name] {
			t.Errorf("type %s listed twice", typ.Name)
		}
		seen[typ.Name] = true
		if got, ok := Lookup(typ.Name); !ok || got != typ {
			t.Errorf("Lookup(%q) = %v, %v", typ.Name, got, ok)
		}
		for _, s := range typ.TestSteps {
			if !slices.Contains(ldapTestSteps, s) && !slices.Contains(EntraTestSteps, s) && !slices.Contains(GoogleTestSteps, s) {
				t.Errorf("type %s: unknown Test Connection step %q", typ.Name, s)
			}
		}
	}
}

func TestCheckReportsWhatIsMissing(t *testing.T) {
	err := (&Type{Name: "x", Protocol: ProtocolLDAP}).Check()
	for _, want := range []string{"DisplayName", "UserFilter", "GroupFilter", "Mapping.StableID", "PasswordStamp", "Disabled", "TestSteps"} {
		if err == nil || !strings.Contains(err.Error(), want+" is not set") {
			t.Errorf("Check() = %v, want it to name %s", err, want)
		}
	}
}

func TestRegister(t *testing.T) {
	fake := OpenLDAPType
	fake.Name, fake.DisplayName = "fake", "Fake Directory"
	remove, err := Register(&fake)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Register(&fake); err == nil {
		t.Error("a second type named fake was registered")
	}
	if _, err := Register(&Type{Name: "incomplete"}); err == nil {
		t.Error("an incomplete type was registered")
	}
	if got := Names(); !slices.Equal(got, []string{OpenLDAP, ActiveDirectory, Domino, Entra, Google, "fake"}) {
		t.Errorf("Names() = %v", got)
	}
	remove()
	if _, ok := Lookup("fake"); ok {
		t.Error("fake is still registered after remove")
	}
}

func TestPasswordStamp(t *testing.T) {
	cases := map[string][]string{
		ActiveDirectory: {"pwdLastSet"},
		Domino:          {"HTTPPasswordChangeDate", "modifyTimestamp"},
		OpenLDAP:        {"pwdChangedTime", "modifyTimestamp"},
		"":              {"pwdChangedTime", "modifyTimestamp"}, // connector no longer configured
	}
	for name, want := range cases {
		if got := PasswordStamp(name); !slices.Equal(got, want) {
			t.Errorf("PasswordStamp(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestDisabled(t *testing.T) {
	attrs := func(m map[string]string) func(string) string { return func(n string) string { return m[n] } }
	cases := []struct {
		typ  *Type
		attr map[string]string
		want bool
	}{
		{&ActiveDirectoryType, map[string]string{"userAccountControl": "514"}, true},
		{&ActiveDirectoryType, map[string]string{"userAccountControl": "512"}, false},
		{&ActiveDirectoryType, map[string]string{"userAccountControl": "junk"}, false},
		{&OpenLDAPType, map[string]string{"pwdAccountLockedTime": "000001010000Z"}, true},
		{&OpenLDAPType, nil, false},
		{&DominoType, map[string]string{"userAccountControl": "514"}, false},
		{&GoogleType, map[string]string{"suspended": "TRUE", "archived": "FALSE"}, true},
		{&GoogleType, map[string]string{"suspended": "FALSE", "archived": "TRUE"}, true},
		{&GoogleType, map[string]string{"suspended": "FALSE", "archived": "FALSE"}, false},
	}
	for _, c := range cases {
		if got := c.typ.Disabled(attrs(c.attr)); got != c.want {
			t.Errorf("%s %v: disabled = %v, want %v", c.typ.Name, c.attr, got, c.want)
		}
	}
}

func TestDecodeBindFailure(t *testing.T) {
	cases := []struct {
		diag     string
		ok       bool
		label    string
		cond     Condition
		verified bool
	}{
		{"80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data 52e, v4563", true, "AD error 52e", InvalidCredentials, false},
		{"... data 533, v1db1", true, "AD error 533", Disabled, true},
		{"... data 775, v1db1", true, "AD error 775", Locked, false},
		{"... data 52E", true, "AD error 52e", InvalidCredentials, false},
		{"... data 999, v1", true, "AD error 999", 0, false}, // AD's wording, a code dirgate does not know
		{"Invalid credentials", false, "", 0, false},
		{"data , v1", false, "", 0, false},
	}
	for _, c := range cases {
		f, ok := DecodeBindFailure(c.diag)
		if ok != c.ok || f.Label != c.label || f.Condition != c.cond || f.PasswordVerified != c.verified {
			t.Errorf("%q: %+v, %v", c.diag, f, ok)
		}
		if f.Condition != 0 && (f.What == "" || f.Fix == "") {
			t.Errorf("%q: known code without What or Fix", c.diag)
		}
	}
}

func FuzzDecodeBindFailure(f *testing.F) {
	f.Add("80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data 52e, v4563")
	f.Add("data ")
	f.Add("data 775")
	f.Fuzz(func(t *testing.T, diag string) {
		bf, ok := DecodeBindFailure(diag)
		if ok && (!strings.HasPrefix(bf.Label, "AD error ") || bf.Label == "AD error ") {
			t.Fatalf("%q: label %q", diag, bf.Label)
		}
		if !ok && bf != (BindFailure{}) {
			t.Fatalf("%q: not decoded but %+v", diag, bf)
		}
	})
}
