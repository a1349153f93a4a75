package cache

import (
	"context"
	"fmt"
	"testing"
)

// benchDirectory commits users and groups of groupSize members each, every
// user in one group.
func benchDirectory(b *testing.B, s *Store, users, groupSize int) {
	b.Helper()
	g, err := s.NewGeneration("c")
	if err != nil {
		b.Fatal(err)
	}
	var members []string
	groups := 0
	flush := func() {
		groups++
		gid := fmt.Sprintf("g%05d", groups)
		if err := g.Put(&Entry{ID: gid, DN: "cn=" + gid + ",ou=groups,dc=x", Kind: KindGroup, Members: members}); err != nil {
			b.Fatal(err)
		}
		members = nil
	}
	for i := range users {
		dn := fmt.Sprintf("uid=u%06d,ou=people,dc=x", i)
		if err := g.Put(user(fmt.Sprintf("u%06d", i), dn, fmt.Sprintf("u%06d@x.test", i))); err != nil {
			b.Fatal(err)
		}
		if members = append(members, dn); len(members) == groupSize {
			flush()
		}
	}
	if err := g.Commit(context.Background(), nil, nil); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGenerationWithGroups measures a full sync's writes of a
// directory whose users are all in groups.
func BenchmarkGenerationWithGroups(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s, err := Open("", Options{InMemory: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		benchDirectory(b, s, 20000, 1000)
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkMembership measures the lookups a search with memberOf and the
// in-chain rule make: a user's groups, and a big group's members.
func BenchmarkMembership(b *testing.B) {
	s, err := Open("", Options{InMemory: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchDirectory(b, s, 20000, 1000)
	ctx := context.Background()
	b.Run("MemberOf", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			err := s.View(ctx, func(v *View) error {
				e, err := v.Get("c", fmt.Sprintf("u%06d", i%20000))
				if err != nil {
					return err
				}
				mo, err := v.MemberOf(e)
				if err == nil && len(mo) != 1 {
					err = fmt.Errorf("memberOf %v", mo)
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Members", func(b *testing.B) {
		for b.Loop() {
			err := s.View(ctx, func(v *View) error {
				g, err := v.Get("c", "g00001")
				if err != nil {
					return err
				}
				ms, err := v.Members(g)
				if err == nil && len(ms) != 1000 {
					err = fmt.Errorf("%d members", len(ms))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
