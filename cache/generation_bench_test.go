package cache

import (
	"context"
	"fmt"
	"testing"
)

// entraLike is a user as the Entra mapping builds it: eleven Badger keys
// (entry, DN, two addresses, seven attribute index keys).
func entraLike(i int) *Entry {
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
	upn := fmt.Sprintf("user%06d@contoso.test", i)
	var a Attrs
	a.Add("objectClass", "top", "person", "organizationalPerson", "inetOrgPerson")
	a.Add("cn", fmt.Sprintf("User %06d", i), id)
	a.Add("id", id)
	a.Add("uid", upn)
	a.Add("userPrincipalName", upn)
	a.Add("mail", upn)
	a.Add("displayName", fmt.Sprintf("User %06d", i))
	a.Add("givenName", "User")
	a.Add("sn", fmt.Sprintf("%06d", i))
	a.Add("mailNickname", fmt.Sprintf("user%06d", i))
	a.Add("userType", "Member")
	a.Add("proxyAddresses", "SMTP:"+upn, fmt.Sprintf("smtp:u.%06d@contoso.test", i))
	a.Add("accountEnabled", "TRUE")
	a.Add("lastPasswordChangeDateTime", "2024-01-02T03:04:05Z")
	return &Entry{ID: id, DN: "id=" + id + ",ou=users,o=contoso", Kind: KindUser,
		Addresses: []string{upn, fmt.Sprintf("u.%06d@contoso.test", i)}, Attrs: a}
}

// BenchmarkGenerationEntra writes a full sync's generation of Entra-like
// users into a fresh on-disk store and commits it; ns/op is per entry.
func BenchmarkGenerationEntra(b *testing.B) {
	const n = 30000
	entries := make([]*Entry, n)
	for i := range entries {
		entries[i] = entraLike(i)
	}
	b.ReportAllocs()
	benchWrites(b, n, func(s *Store) {
		writeGeneration(b, s, entries)
	})
}

// BenchmarkBadgerFloorEntra is the least a full sync of the same users
// could cost the store: their encoded entries alone, written through a
// Badger write batch with the cache's options and flushed to disk at
// Close, without the DN key, the index or the generation's bookkeeping.
// ns/entry against BenchmarkGenerationEntra's is the share of a sync's
// writes that any index layout could save.
func BenchmarkBadgerFloorEntra(b *testing.B) {
	const n = 30000
	values := make([][]byte, n)
	ids := make([]string, n)
	for i := range values {
		e := entraLike(i)
		e.Normalize()
		e.DNKey = dnKeyOf(e.DN)
		values[i], ids[i] = e.encode(), e.ID
	}
	benchWrites(b, n, func(s *Store) {
		wb := s.db.NewWriteBatch()
		for i, v := range values {
			if err := wb.Set(dataKey("m365", 1, tEntry, ids[i]), v); err != nil {
				b.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			b.Fatal(err)
		}
	})
}

// benchWrites times write into a fresh on-disk store and its Close, and
// reports ns per entry of the n it writes.
func benchWrites(b *testing.B, n int, write func(s *Store)) {
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s, err := Open(b.TempDir(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		write(s)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}

// writeGeneration writes copies of entries as a generation of connector
// m365 and commits it.
func writeGeneration(b *testing.B, s *Store, entries []*Entry) {
	g, err := s.NewGeneration("m365")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		c := *e
		if err := g.Put(&c); err != nil {
			b.Fatal(err)
		}
	}
	if err := g.Commit(context.Background(), nil, nil); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIndexLoad opens a store holding a full sync of Entra-like users
// and loads their in-memory index from the records, as `dirgate serve`
// does at start-up; ns/entry is per user.
func BenchmarkIndexLoad(b *testing.B) {
	const n = 30000
	entries := make([]*Entry, n)
	for i := range entries {
		entries[i] = entraLike(i)
	}
	dir := b.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	writeGeneration(b, s, entries)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		s, err := Open(dir, Options{HotIndex: true})
		if err != nil {
			b.Fatal(err)
		}
		s.hotBuilds.Wait()
		b.StopTimer()
		if x := s.hotFor("m365", s.served.Load().gens["m365"]); x == nil || !x.ready.Load() || len(x.ids) != n {
			b.Fatal("index not loaded")
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
}
