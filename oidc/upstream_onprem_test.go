package oidc

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/dirgate/dirgate/cache"
)

// TestUpstreamSignInOfOnPremDuplicate: a Microsoft sign-in of an Entra
// user that the cache hides as the copy of an on-premises AD user
// (onPremisesImmutableId = the AD objectGUID, onPremisesSyncEnabled, and
// the AD connector paired with the Entra one) stands for the AD account:
// the same subject, name and groups as when that person signs in with
// the AD password, never a second identity; the switch is logged. A
// cloud-only user whose anchor was set to an AD user's objectGUID (anyone
// allowed to write the user can), or an Entra connector not paired with
// the AD one, signs in as the Entra user itself.
func TestUpstreamSignInOfOnPremDuplicate(t *testing.T) {
	guid := []byte{0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	adID := cache.FormatGUID(guid)
	paired := map[string][]string{"m365": {"onprem"}}
	for _, tc := range []struct {
		name   string
		synced []string // onPremisesSyncEnabled of the Entra user
		pairs  map[string][]string
		sub    string
		group  string
	}{
		{"synced and paired", []string{"TRUE"}, paired, adID, "ad-staff"},
		{"cloud-only, forged anchor", nil, paired, "u-ann", ""},
		{"sync flag FALSE", []string{"FALSE"}, paired, "u-ann", ""},
		{"not paired", []string{"TRUE"}, nil, "u-ann", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newUpstreamFixture(t, byID, nil)
			f.store.SetOnPremPairs(tc.pairs)
			f.putGeneration(t, "onprem",
				&cache.Entry{ID: adID, DN: "cn=Ann Onprem,ou=people,dc=corp", Kind: cache.KindUser, Addresses: []string{"ann@contoso.example"},
					Attrs: []cache.Attr{{Name: "objectGUID", Values: []string{string(guid)}}, {Name: "displayName", Values: []string{"Ann On-Premises"}}}},
				&cache.Entry{ID: "g-ad", DN: "cn=ad-staff,dc=corp", Kind: cache.KindGroup, Members: []string{"cn=Ann Onprem,ou=people,dc=corp"},
					Attrs: []cache.Attr{{Name: "cn", Values: []string{"ad-staff"}}}})
			attrs := []cache.Attr{{Name: "displayName", Values: []string{"Ann Synced"}},
				{Name: "onPremisesImmutableId", Values: []string{base64.StdEncoding.EncodeToString(guid)}}}
			if tc.synced != nil {
				attrs = append(attrs, cache.Attr{Name: "onPremisesSyncEnabled", Values: tc.synced})
			}
			f.putGeneration(t, "m365", &cache.Entry{ID: "u-ann", DN: "cn=ann,o=m365", Kind: cache.KindUser,
				Addresses: []string{"ann@contoso.example"}, Attrs: attrs})

			c, _ := f.signIn(t, "n")
			if groups := toStrings(c["groups"]); c["sub"] != tc.sub || strings.Join(groups, ",") != tc.group {
				t.Fatalf("id token: sub %v, groups %v; want %s, %q", c["sub"], groups, tc.sub, tc.group)
			}
			logged := strings.Contains(f.logs.String(), "account_dn=\"cn=Ann Onprem,ou=people,dc=corp\"")
			if want := tc.sub == adID; logged != want {
				t.Errorf("identity switch logged: %v, want %v\n%s", logged, want, f.logs)
			}
		})
	}
}
