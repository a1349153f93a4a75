package entra

import (
	"slices"
	"testing"

	"github.com/dirgate/dirgate/internal/fakeentra"
)

// TestRestoreKeepsMemberships: a soft-deleted user leaves its groups at
// once, and a restore brings it back into them, although groups/delta
// reports no member change for either (the memberships were kept in the
// recycle bin).
func TestRestoreKeepsMemberships(t *testing.T) {
	tn := newTenant(t, "")
	ann, bob := tn.user(fakeentra.User{}), tn.user(fakeentra.User{})
	g := tn.group("Team", ann, bob)
	annDN := "cn=" + ann + ",ou=users," + tn.conn.RootDN
	s := tn.source(t, tn.conn)
	cached, cur := full(t, s)

	tn.SoftDelete(ann)
	ups, _, cur := changes(t, s, cur, cached)
	if ups[g] == nil || slices.Contains(ups[g].Values("member"), annDN) {
		t.Fatalf("after the soft delete, group %v still lists ann", ups[g])
	}
	delete(cached, ann)
	cached[g] = ups[g]

	tn.Restore(ann)
	ups, _, _ = changes(t, s, cur, cached)
	if ups[ann] == nil || ups[g] == nil || !slices.Contains(ups[g].Values("member"), annDN) {
		t.Fatalf("after the restore: ann %v, group %v; want ann back in the group", ups[ann], ups[g])
	}
}
