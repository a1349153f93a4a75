package fakeentra

import (
	"fmt"
	"math/rand/v2"

	"github.com/dirgate/dirgate/internal/fakecloud"
)

// Generate fills the tenant with users and groups made from seed (the same
// seed gives the same directory) and returns their IDs. Every user has a
// primary and an alias SMTP address; one in 50 is disabled. Users are
// spread evenly over the groups, and every tenth group nests the next one.
// It is the bulk path for benchmarks: one lock, no per-call overhead.
func (t *Tenant) Generate(users, groups int, seed uint64) (userIDs, groupIDs []string) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	guid := func() string {
		var b [16]byte
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
		return fakecloud.FormatGUID(b[:])
	}
	dom := t.Domain()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range users {
		upn := fmt.Sprintf("user%06d@%s", i, dom)
		u := User{
			ID: guid(), UserPrincipalName: upn, Mail: upn,
			ProxyAddresses: []string{"SMTP:" + upn, fmt.Sprintf("smtp:u.%06d@%s", i, dom)},
			AccountEnabled: i%50 != 49, DisplayName: fmt.Sprintf("User %06d", i),
			GivenName: "User", Surname: fmt.Sprintf("%06d", i), UserType: "Member", Password: "Passw0rd!",
		}
		t.put(&object{kind: kindUser, user: u})
		userIDs = append(userIDs, u.ID)
	}
	for i := range groups {
		g := Group{ID: guid(), DisplayName: fmt.Sprintf("Group %04d", i), SecurityEnabled: true}
		t.put(&object{kind: kindGroup, group: g, members: map[string]bool{}})
		groupIDs = append(groupIDs, g.ID)
	}
	t.seq++
	add := func(g, m string) {
		t.groups[g].members[m] = true
		t.log = append(t.log, change{seq: t.seq, kind: kindGroup, id: g, member: m})
	}
	for i, g := range groupIDs {
		for j := i; j < users; j += groups {
			add(g, userIDs[j])
		}
		if i%10 == 0 && i+1 < groups {
			add(g, groupIDs[i+1])
		}
	}
	return userIDs, groupIDs
}
