package cache

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// janeGUID is an AD objectGUID as the directory stores it (binary).
var janeGUID = []byte{0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a, 0xf0, 0xde, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}

const (
	janeADDN    = "CN=Jane Doe,OU=People,DC=corp,DC=test"
	janeEntraDN = "id=0b6e1c2a-aaaa-4bbb-8ccc-000000000001,ou=users,o=contoso.onmicrosoft.com"
	janeEntraID = "0b6e1c2a-aaaa-4bbb-8ccc-000000000001"
)

// adJane is the user as the AD connector caches it: keyed by its
// objectGUID in text form, holding the binary objectGUID.
func adJane() *Entry {
	return &Entry{ID: FormatGUID(janeGUID), DN: janeADDN, Kind: KindUser, Addresses: []string{"jane@corp.test"},
		Attrs: []Attr{
			{Name: "mail", Values: []string{"jane@corp.test"}},
			{Name: "objectGUID", Values: []string{string(janeGUID)}},
			{Name: "sAMAccountName", Values: []string{"jane"}},
			{Name: "userPrincipalName", Values: []string{"jane@corp.test"}},
		}}
}

// entraJane is the same user as the Entra connector caches her when the
// directory sync copied her from AD, with the source anchor immutableID.
func entraJane(immutableID string) *Entry {
	return cloudJane(immutableID, "TRUE")
}

// cloudJane is an Entra user with the source anchor immutableID and the
// on-premises sync flag synced ("": absent, a cloud-only user).
func cloudJane(immutableID, synced string) *Entry {
	e := &Entry{ID: janeEntraID, DN: janeEntraDN, Kind: KindUser, Addresses: []string{"jane@corp.test"},
		Attrs: []Attr{
			{Name: "mail", Values: []string{"jane@corp.test"}},
			{Name: "uid", Values: []string{"jane@corp.test"}},
			{Name: "userPrincipalName", Values: []string{"jane@corp.test"}},
		}}
	if immutableID != "" {
		e.Attrs = append(e.Attrs, Attr{Name: onPremAttr, Values: []string{immutableID}})
	}
	if synced != "" {
		e.Attrs = append(e.Attrs, Attr{Name: onPremSyncAttr, Values: []string{synced}})
	}
	return e
}

func entraGroup() *Entry {
	return &Entry{ID: "grp", DN: "id=grp,ou=groups,o=contoso.onmicrosoft.com", Kind: KindGroup,
		Members: []string{janeEntraDN}, Attrs: []Attr{{Name: "cn", Values: []string{"staff"}}}}
}

var janeAnchor = base64.StdEncoding.EncodeToString(janeGUID)

// whoIsJane describes what every serving lookup of the view returns for
// Jane: by address, by UPN, by the Entra DN, in a scan, as a member of
// the Entra group, and the entry hiding the Entra one.
func whoIsJane(v *View) (string, error) {
	var parts []string
	ids := func(what string) func([]*Entry, error) error {
		return func(es []*Entry, err error) error {
			if err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			var names []string
			for _, e := range es {
				names = append(names, e.Connector)
			}
			parts = append(parts, what+"="+strings.Join(names, "+"))
			return nil
		}
	}
	if err := ids("address")(v.ByAddress("JANE@corp.test")); err != nil {
		return "", err
	}
	if err := ids("upn")(v.ByAttr("userPrincipalName", "jane@corp.test")); err != nil {
		return "", err
	}
	e, err := v.ByDN(janeEntraDN)
	switch {
	case errors.Is(err, ErrNotFound):
		parts = append(parts, "dn=none")
	case err != nil:
		return "", err
	default:
		parts = append(parts, "dn="+e.Connector)
	}
	var scanned []*Entry
	err = v.Scan("", func(e *Entry) (bool, error) {
		if len(e.Addresses) > 0 && e.Addresses[0] == "jane@corp.test" {
			scanned = append(scanned, e)
		}
		return true, nil
	})
	if err := ids("scan")(scanned, err); err != nil {
		return "", err
	}
	if g, err := v.Get("m365", "grp"); err == nil {
		if err := ids("members")(v.Members(g)); err != nil {
			return "", err
		}
	}
	if e, err := v.Get("m365", janeEntraID); err == nil {
		dup, err := v.DuplicateOf(e)
		switch {
		case err != nil:
			return "", err
		case dup != nil:
			parts = append(parts, "duplicateOf="+dup.DN)
		}
	}
	return strings.Join(parts, " "), nil
}

const (
	janeHidden = "address=ad upn=ad dn=none scan=ad members= duplicateOf=" + janeADDN
	janeBoth   = "address=ad+m365 upn=ad+m365 dn=m365 scan=ad+m365 members=m365"
	entraOnly  = "address=m365 upn=m365 dn=m365 scan=m365 members=m365"
)

func expectJane(t *testing.T, s *Store, step, want string) {
	t.Helper()
	var got string
	err := s.View(context.Background(), func(v *View) error {
		var err error
		got, err = whoIsJane(v)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	if got != want {
		t.Errorf("%s:\n got %s\nwant %s", step, got, want)
	}
}

func applyDelta(t *testing.T, s *Store, conn string, d *Delta) {
	t.Helper()
	run := &Run{Connector: conn, Start: time.Now(), Mode: "incremental"}
	if _, err := s.ApplyDelta(context.Background(), conn, d, nil, run, false); err != nil {
		t.Fatal(err)
	}
}

// TestOnPremDuplicateHidden: an Entra user synced from the AD domain
// another connector syncs is served once, as the AD user, whichever
// connector synced first, and is served again when the AD user goes.
func TestOnPremDuplicateHidden(t *testing.T) {
	for _, hot := range []bool{false, true} {
		t.Run(fmt.Sprintf("hot=%v", hot), func(t *testing.T) {
			t.Run("ad first", func(t *testing.T) {
				s := openPaired(t, hot)
				commitAll(t, s, "ad", adJane())
				commitAll(t, s, "m365", entraJane(janeAnchor), entraGroup())
				expectJane(t, s, "both synced", janeHidden)
			})
			t.Run("entra first, AD deleted and restored by deltas", func(t *testing.T) {
				s := openPaired(t, hot)
				commitAll(t, s, "m365", entraJane(janeAnchor), entraGroup())
				commitAll(t, s, "ad", &Entry{ID: "other", DN: "CN=Other,DC=corp,DC=test", Kind: KindUser})
				expectJane(t, s, "entra alone", entraOnly)
				applyDelta(t, s, "ad", &Delta{Upserts: []*Entry{adJane()}})
				expectJane(t, s, "AD user added", janeHidden)
				applyDelta(t, s, "ad", &Delta{Deletes: []string{FormatGUID(janeGUID)}})
				expectJane(t, s, "AD user deleted", entraOnly)
				applyDelta(t, s, "ad", &Delta{Upserts: []*Entry{adJane()}})
				expectJane(t, s, "AD user back", janeHidden)
			})
			t.Run("AD user leaves the scope of a full sync", func(t *testing.T) {
				s := openPaired(t, hot)
				commitAll(t, s, "ad", adJane())
				commitAll(t, s, "m365", entraJane(janeAnchor), entraGroup())
				commitAll(t, s, "ad", &Entry{ID: "other", DN: "CN=Other,DC=corp,DC=test", Kind: KindUser})
				expectJane(t, s, "AD user out of scope", entraOnly)
			})
			t.Run("anchor changed by an Entra delta", func(t *testing.T) {
				s := openPaired(t, hot)
				commitAll(t, s, "ad", adJane())
				commitAll(t, s, "m365", entraJane(""), entraGroup())
				expectJane(t, s, "no anchor", janeBoth)
				applyDelta(t, s, "m365", &Delta{Upserts: []*Entry{entraJane(janeAnchor)}})
				expectJane(t, s, "anchor set", janeHidden)
				applyDelta(t, s, "m365", &Delta{Upserts: []*Entry{entraJane("amFuZQ==")}})
				expectJane(t, s, "anchor not a GUID", janeBoth)
			})
		})
	}
}

// openPaired opens a store in which the Entra connector m365 is paired
// with the AD connector ad.
func openPaired(t *testing.T, hot bool) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{HotIndex: hot})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.SetOnPremPairs(map[string][]string{"m365": {"ad"}})
	return s
}

// TestOnPremDuplicateNoMatch: an anchor that is not the base64 of a
// 16-byte GUID, or that names an entry which is not an AD user, hides
// nothing; the address stays ambiguous, as without the rule.
func TestOnPremDuplicateNoMatch(t *testing.T) {
	other := append([]byte{}, janeGUID...)
	other[0] ^= 1
	notAD := adJane()
	// No objectGUID: the entryUUID of a directory that looks alike.
	notAD.Attrs = slices.DeleteFunc(notAD.Attrs, func(a Attr) bool { return a.Name == "objectGUID" })
	group := adJane()
	group.Kind = KindGroup
	for _, tc := range []struct {
		name   string
		anchor string
		ad     *Entry
	}{
		{"not base64", "not base64!", adJane()},
		{"15 bytes", base64.StdEncoding.EncodeToString(janeGUID[:15]), adJane()},
		{"unpadded", base64.RawStdEncoding.EncodeToString(janeGUID) + "!", adJane()},
		{"another GUID", base64.StdEncoding.EncodeToString(other), adJane()},
		{"no objectGUID", janeAnchor, notAD},
		{"AD group", janeAnchor, group},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openPaired(t, false)
			commitAll(t, s, "ad", tc.ad)
			commitAll(t, s, "m365", entraJane(tc.anchor), entraGroup())
			expectJane(t, s, "both synced", janeBoth)
		})
	}
	t.Run("same connector", func(t *testing.T) {
		s := openPaired(t, false)
		e := entraJane(janeAnchor)
		e.Addresses = []string{"jane2@corp.test"}
		commitAll(t, s, "ad", adJane(), e)
		err := s.View(context.Background(), func(v *View) error {
			got, err := v.ByAddress("jane2@corp.test")
			if err != nil || len(got) != 1 {
				return fmt.Errorf("an anchor within one connector hid the entry: %v %v", got, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestOnPremDuplicateProjected: a reader projecting a few attributes (the
// LDAP search path) still leaves the duplicate out: the anchor is stored
// beside the entry, not only among its attributes.
func TestOnPremDuplicateProjected(t *testing.T) {
	s := openPaired(t, false)
	commitAll(t, s, "ad", adJane())
	commitAll(t, s, "m365", entraJane(janeAnchor), entraGroup())
	err := s.View(context.Background(), func(v *View) error {
		v.Project(func(name string) bool { return strings.EqualFold(name, "mail") })
		got, err := v.ByAttr("mail", "jane@corp.test")
		if err != nil || len(got) != 1 || got[0].Connector != "ad" {
			return fmt.Errorf("projected search by mail: %v %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOnPremDuplicateIncludeHidden: the admin console's view lists the
// hidden entry, and DuplicateOf names the AD user hiding it.
func TestOnPremDuplicateIncludeHidden(t *testing.T) {
	s := openPaired(t, false)
	commitAll(t, s, "ad", adJane())
	commitAll(t, s, "m365", entraJane(janeAnchor), entraGroup())
	err := s.View(context.Background(), func(v *View) error {
		v.IncludeHidden()
		got, err := whoIsJane(v)
		if want := janeBoth + " duplicateOf=" + janeADDN; err != nil || got != want {
			return fmt.Errorf("with hidden entries:\n got %s (%v)\nwant %s", got, err, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFormatGUID(t *testing.T) {
	if got, want := FormatGUID(janeGUID), "12345678-9abc-def0-0123-456789abcdef"; got != want {
		t.Errorf("FormatGUID = %q, want %q", got, want)
	}
	if got := FormatGUID(janeGUID[:15]); got != "" {
		t.Errorf("FormatGUID of 15 bytes = %q", got)
	}
}

// TestOnPremForgedAnchor: an anchor naming an AD user hides nothing, and
// DuplicateOf (which the OIDC provider signs in as) names nobody, unless
// the Entra user is synced from on-premises, a flag only the directory
// sync sets, and the AD connector is paired with the Entra connector. On
// a cloud-only user anyone allowed to write the user can set the anchor to
// the objectGUID of an AD administrator.
func TestOnPremForgedAnchor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entra *Entry
		pairs map[string][]string
		want  string
	}{
		{"synced and paired", entraJane(janeAnchor), map[string][]string{"m365": {"ad"}}, janeHidden},
		{"cloud-only", cloudJane(janeAnchor, ""), map[string][]string{"m365": {"ad"}}, janeBoth},
		{"sync flag FALSE", cloudJane(janeAnchor, "FALSE"), map[string][]string{"m365": {"ad"}}, janeBoth},
		{"no pairing", entraJane(janeAnchor), nil, janeBoth},
		{"paired with another AD connector", entraJane(janeAnchor), map[string][]string{"m365": {"corp2"}}, janeBoth},
		{"another Entra connector paired", entraJane(janeAnchor), map[string][]string{"m365b": {"ad"}}, janeBoth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			s.SetOnPremPairs(tc.pairs)
			commitAll(t, s, "ad", adJane())
			commitAll(t, s, "corp2", &Entry{ID: "other", DN: "CN=Other,DC=corp2,DC=test", Kind: KindUser})
			commitAll(t, s, "m365", tc.entra, entraGroup())
			expectJane(t, s, "both synced", tc.want)
		})
	}
}

// TestOnPremPairsReplaced: a new pairing applies to the next view and
// changes Version, so answers cached by version are recomputed.
func TestOnPremPairsReplaced(t *testing.T) {
	s := openPaired(t, true)
	commitAll(t, s, "ad", adJane())
	commitAll(t, s, "m365", entraJane(janeAnchor), entraGroup())
	expectJane(t, s, "paired", janeHidden)
	before := s.Version()
	s.SetOnPremPairs(nil)
	if s.Version() == before {
		t.Error("Version unchanged by a new pairing")
	}
	expectJane(t, s, "unpaired", janeBoth)
	s.SetOnPremPairs(map[string][]string{"m365": {"ad"}})
	expectJane(t, s, "paired again", janeHidden)
}

// TestOnPremDuplicateOfChecksFlag: an entry whose stored anchor was
// written without the sync flag being checked (by an older release) is
// not mapped to the AD user when read whole.
func TestOnPremDuplicateOfChecksFlag(t *testing.T) {
	s := openPaired(t, false)
	commitAll(t, s, "ad", adJane())
	e := cloudJane(janeAnchor, "")
	e.Connector, e.onPrem = "m365", FormatGUID(janeGUID)
	err := s.View(context.Background(), func(v *View) error {
		d, err := v.DuplicateOf(e)
		if err != nil || d != nil {
			return fmt.Errorf("DuplicateOf a cloud-only entry = %v, %v; want nil", d, err)
		}
		e.Attrs = append(e.Attrs, Attr{Name: onPremSyncAttr, Values: []string{"TRUE"}})
		if d, err = v.DuplicateOf(e); err != nil || d == nil || d.DN != janeADDN {
			return fmt.Errorf("DuplicateOf a synced entry = %v, %v; want %s", d, err, janeADDN)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
