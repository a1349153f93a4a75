package testconn

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/dirgate/dirgate/dirtype"
)

// TestStepsMatchRegistry: the steps the registry names are this package's
// steps, and every step of this package applies to some type.
func TestStepsMatchRegistry(t *testing.T) {
	ours := []string{StepDNS, StepTCP, StepTLS, StepStartTLS, StepBind, StepRootDN, StepSearch, StepPaging,
		StepAuthority, StepCredentials, StepPermissions, StepSample, StepDelta, StepPasswordCheck,
		StepTokenEndpoint, StepDelegation, StepGroups}
	var named []string
	for _, typ := range dirtype.All() {
		for _, s := range typ.TestSteps {
			if !slices.Contains(ours, s) {
				t.Errorf("type %s names step %q, which testconn does not have", typ.Name, s)
			}
			named = append(named, s)
		}
	}
	for _, s := range ours {
		if !slices.Contains(named, s) {
			t.Errorf("step %q applies to no type", s)
		}
	}
}

// TestOnlyTheTypesSteps: a test of a connector runs the steps its type
// lists and no others.
func TestOnlyTheTypesSteps(t *testing.T) {
	fake := dirtype.OpenLDAPType
	fake.Name, fake.UserFilter, fake.TestSteps = "fakedir", "(objectClass=fakePerson)", []string{StepDNS, StepTCP}
	remove, err := dirtype.Register(&fake)
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	c := parseConnector(t, "type: fakedir", "host: 127.0.0.1", fmt.Sprintf("port: %d", freePort(t)), "encryption: none",
		"root_dn: dc=example,dc=test", "timeout: 2s")
	r := Run(context.Background(), c)
	var got []string
	for _, s := range r.Steps {
		got = append(got, s.Name)
	}
	if !slices.Equal(got, fake.TestSteps) {
		t.Errorf("steps %v, want %v:\n%s", got, fake.TestSteps, r.Text())
	}
	if want := fake.UserFilter; defaultFilter("fakedir") != want {
		t.Errorf("defaultFilter = %q, want the type's %q", defaultFilter("fakedir"), want)
	}
}
