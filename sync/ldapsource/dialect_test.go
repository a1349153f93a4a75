package ldapsource

import (
	"testing"

	"github.com/dirgate/dirgate/dirtype"
)

// TestDialectsMatchRegistry: every LDAP type of the registry has a dialect
// built on its own registry entry, and a dialect reads incremental changes
// exactly when the registry says the type can.
func TestDialectsMatchRegistry(t *testing.T) {
	for _, typ := range dirtype.All() {
		if typ.Protocol != dirtype.ProtocolLDAP {
			continue
		}
		d, ok := dialects[typ.Name]
		if !ok {
			t.Errorf("type %s: no dialect", typ.Name)
			continue
		}
		if d.Name != typ.Name || d.Mapping.StableID != typ.Mapping.StableID {
			t.Errorf("type %s: dialect built on type %s (ID %s)", typ.Name, d.Name, d.Mapping.StableID)
		}
		if got := d.cursor != nil; got != typ.Incremental {
			t.Errorf("type %s: dialect reads changes %v, registry says incremental %v", typ.Name, got, typ.Incremental)
		}
	}
}
