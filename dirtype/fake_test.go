package dirtype_test

import (
	"strings"
	"testing"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/dirtype"
)

// registerFake registers a directory type the build does not have, as a
// new source package would, for the length of the test.
func registerFake(t *testing.T) *dirtype.Type {
	t.Helper()
	fake := &dirtype.Type{
		Name:          "fakedir",
		DisplayName:   "Fake Directory",
		Protocol:      dirtype.ProtocolLDAP,
		UserFilter:    "(objectClass=fakePerson)",
		GroupFilter:   "(objectClass=fakeGroup)",
		Mapping:       dirtype.Mapping{StableID: "fakeID", Members: []string{"member"}, Aliases: []string{"fakeAlias"}},
		PasswordStamp: []string{"fakePasswordChanged"},
		Disabled:      func(attr func(string) string) bool { return attr("fakeDisabled") == "yes" },
		DisabledBy:    "fakeDisabled is yes",
		TestSteps:     []string{"dns", "tcp"},
	}
	remove, err := dirtype.Register(fake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(remove)
	return fake
}

// TestConfigAcceptsRegisteredType: config validation knows a type from
// its registration alone: it accepts the name, fills in the type's
// defaults, does not require root_dn, and lists it among the valid types.
func TestConfigAcceptsRegisteredType(t *testing.T) {
	fake := registerFake(t)
	cfg, err := config.Parse("test.yaml", []byte(`
connectors:
  - name: corp
    type: fakedir
    host: ldap.example.com
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	c := cfg.Connectors[0]
	if c.UserFilter != fake.UserFilter || c.GroupFilter != fake.GroupFilter {
		t.Errorf("filters = %q, %q, want the type's defaults", c.UserFilter, c.GroupFilter)
	}
	if len(c.AliasAttributes) != 1 || c.AliasAttributes[0] != "fakeAlias" {
		t.Errorf("alias_attributes = %v, want the type's default", c.AliasAttributes)
	}

	_, err = config.Parse("test.yaml", []byte(`
connectors:
  - name: corp
    host: ldap.example.com
`))
	if err == nil || !strings.Contains(err.Error(), "set one of openldap, ad, domino, entra, google, fakedir") {
		t.Errorf("missing type: %v, want the registered type listed", err)
	}
}
