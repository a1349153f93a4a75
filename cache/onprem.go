package cache

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// A user that Entra Connect (or Cloud Sync) copies from on-premises Active
// Directory into Entra ID is the same person as the AD user: when one
// connector syncs the AD domain and another the Entra tenant, the cache
// holds both, and both claim the same addresses, which would make every
// login by address ambiguous (and refused). The AD connector's entry wins:
// on-premises AD is the source of authority for a synced user and its bind
// checks the real password. The Entra entry is then hidden from every
// lookup that serves entries (searches, DN and address lookups, group
// members); it stays in the cache, and is served again as soon as the AD
// entry is gone (deleted, or out of the AD connector's scope). Only Get,
// by stable ID, still returns it, for the sync engine and for callers that
// hold an ID already (see DuplicateOf).
//
// The join is onPremisesImmutableId, which Entra Connect sets to the
// base64 of the AD object's objectGUID (or of mS-DS-ConsistencyGuid, which
// holds the objectGUID's value by default), against the AD connector's
// stable ID, the objectGUID itself. The decoded GUID is stored with the
// Entra entry, outside its content hash (like the DN key), so a reader
// projecting attributes still has it; the AD side needs no index of its
// own, its entry key is the probe. Because the decision is made in each
// view from its own snapshot, it holds in whichever order the two
// connectors sync, and no commit has to revisit the other connector.
//
// The anchor alone proves nothing: on a cloud-only user a tenant
// administrator, or an app allowed User.ReadWrite.All, can write any
// value, and objectGUIDs are readable by every AD user. Trusting it would
// let whoever controls an Entra user hide an AD user's entry behind it
// and sign in through Microsoft as that AD user (the OIDC provider maps
// an upstream sign-in to the entry hiding it). So two more conditions
// hold before entries are joined: the Entra user is marked
// onPremisesSyncEnabled, which Graph does not let anyone write (only the
// directory sync sets it), and the AD connector is one the configuration
// pairs with this Entra connector (SetOnPremPairs); without a pairing
// nothing is hidden, and a synced user is served twice, as before the
// join existed.

// Entra attributes: the on-premises source anchor, and whether the user is
// synced from on-premises.
const (
	onPremAttr     = "onPremisesImmutableId"
	onPremSyncAttr = "onPremisesSyncEnabled"
)

// SetOnPremPairs names, for each Entra connector, the AD connectors whose
// users its directory sync copies into the tenant: only users of those
// connectors hide the Entra copies (see above). It replaces the previous
// pairing; nil pairs nothing. The server calls it at start and when the
// configuration is reloaded.
func (s *Store) SetOnPremPairs(pairs map[string][]string) {
	m := make(map[string][]string, len(pairs))
	for entra, ad := range pairs {
		if len(ad) > 0 {
			m[entra] = slices.Clone(ad)
		}
	}
	s.onPremPairs.Store(&m)
	s.version.Add(1) // lookups now answer differently
}

// onPremGUID returns the objectGUID, in AD's text form, of the on-premises
// user e is a synced copy of; "" when e is not a user synced from
// on-premises or its anchor is not the base64 of a 16-byte GUID (another
// anchor an install chose, or none).
func (e *Entry) onPremGUID() string {
	if e.Kind != KindUser || !e.syncedFromOnPrem() {
		return ""
	}
	v := e.First(onPremAttr)
	if v == "" {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return ""
	}
	return FormatGUID(b)
}

// syncedFromOnPrem reports whether Entra marks e as synced from
// on-premises, the flag only the directory sync can set.
func (e *Entry) syncedFromOnPrem() bool {
	return strings.EqualFold(e.First(onPremSyncAttr), "TRUE")
}

// FormatGUID formats a binary objectGUID as Active Directory displays it
// and as the AD connector keys its entries: the first three groups
// little-endian, lower-case hex. It returns "" unless b has 16 bytes.
func FormatGUID(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// DuplicateOf returns the on-premises AD user that hides e as its
// duplicate in this view, or nil when e is served. A complete entry (not
// read through Project) must carry the on-premises sync flag itself: the
// anchor stored beside an entry that an older release wrote was not
// checked for it.
func (v *View) DuplicateOf(e *Entry) (*Entry, error) {
	if !e.partial && !e.syncedFromOnPrem() {
		return nil, nil
	}
	conn, err := v.adTwin(e)
	if conn == "" || err != nil {
		return nil, err
	}
	return v.Get(conn, e.onPrem)
}

// IncludeHidden makes the view's lookups return hidden duplicates too,
// for the admin console, which shows them with the entry hiding them
// (DuplicateOf).
func (v *View) IncludeHidden() { v.all = true }

// hidden reports whether e is a duplicate that the view does not serve.
func (v *View) hidden(e *Entry) (bool, error) {
	if e.onPrem == "" || v.all {
		return false, nil // every entry but an Entra user synced from AD
	}
	conn, err := v.adTwin(e)
	return conn != "", err
}

// adTwin returns the connector serving the AD user whose objectGUID is
// e's on-premises anchor, "" when there is none. The match is a user of
// a connector paired with e's (SetOnPremPairs), keyed by that GUID and
// holding objectGUID: what the AD connector writes, and no other
// (OpenLDAP's entryUUID and Entra's IDs look alike, but their entries
// have no objectGUID).
func (v *View) adTwin(e *Entry) (string, error) {
	if e.onPrem == "" {
		return "", nil
	}
	pairs := v.store.onPremPairs.Load()
	if pairs == nil {
		return "", nil
	}
	for _, c := range (*pairs)[e.Connector] {
		gen, ok := v.gens[c]
		if !ok || c == e.Connector {
			continue
		}
		item, err := v.txn.Get(dataKey(c, gen, tEntry, e.onPrem))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		var ad bool
		err = item.Value(func(val []byte) error {
			if len(val) < 10 || Kind(val[9]) != KindUser {
				return nil
			}
			t, err := decodeEntryKeep(c, e.onPrem, val, isObjectGUID)
			ad = err == nil && len(t.Values("objectGUID")) > 0
			return err
		})
		if err != nil {
			return "", err
		}
		if ad {
			return c, nil
		}
	}
	return "", nil
}

func isObjectGUID(name string) bool { return strings.EqualFold(name, "objectGUID") }

// served filters es down to the entries the view serves, in place.
func (v *View) served(es []*Entry) ([]*Entry, error) {
	out := es[:0]
	for _, e := range es {
		hide, err := v.hidden(e)
		if err != nil {
			return nil, err
		}
		if !hide {
			out = append(out, e)
		}
	}
	return out, nil
}
