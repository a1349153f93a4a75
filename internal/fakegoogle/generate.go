package fakegoogle

import (
	"fmt"
	"math/rand/v2"
)

// Generate fills the customer with users and groups made from seed (the
// same seed gives the same directory) and returns their IDs. Every user
// has an alias in the primary domain and a non-editable alias in the
// second domain (if any); one in 50 is suspended and one in 200 archived;
// the first user is an admin. Users are spread evenly over the groups,
// every tenth group nests the next one, and every twentieth has an
// external member. It is the bulk path for benchmarks: one lock, no
// per-call overhead.
func (c *Customer) Generate(users, groups int, seed uint64) (userIDs, groupIDs []string) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	dom := c.domains[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range users {
		email := fmt.Sprintf("user%06d@%s", i, dom)
		u := User{
			ID: fmt.Sprintf("1%020d", rng.Uint64()%1e18), PrimaryEmail: email,
			GivenName: "User", FamilyName: fmt.Sprintf("%06d", i), OrgUnitPath: "/",
			Aliases:   []string{fmt.Sprintf("u.%06d@%s", i, dom)},
			Suspended: i%50 == 49, Archived: i%200 == 199, IsAdmin: i == 0,
		}
		if len(c.domains) > 1 {
			u.NonEditableAliases = []string{fmt.Sprintf("user%06d@%s", i, c.domains[1])}
		}
		userIDs = append(userIDs, c.putUser(u))
	}
	for i := range groups {
		g := Group{ID: fmt.Sprintf("0%014x", rng.Uint64()>>8), Email: fmt.Sprintf("group%04d@%s", i, dom), Name: fmt.Sprintf("Group %04d", i)}
		groupIDs = append(groupIDs, c.putGroup(g))
	}
	for i, id := range groupIDs {
		g := c.groups[id]
		for j := i; j < users; j += groups {
			g.Members = append(g.Members, Member{ID: userIDs[j], Email: fmt.Sprintf("user%06d@%s", j, dom), Type: "USER"})
		}
		if i%10 == 0 && i+1 < groups {
			g.Members = append(g.Members, Member{ID: groupIDs[i+1], Email: fmt.Sprintf("group%04d@%s", i+1, dom), Type: "GROUP"})
		}
		if i%20 == 0 {
			g.Members = append(g.Members, Member{Email: fmt.Sprintf("partner%04d@external.test", i), Type: "EXTERNAL", Status: "ACTIVE"})
		}
	}
	return userIDs, groupIDs
}
