package cache

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
)

// BenchmarkByAddressBesideEntra measures the lookup behind a bind or a
// search by mail when an Entra connector holds synced copies of every AD
// user: the hot index proposes both, and the Entra one is left out.
func BenchmarkByAddressBesideEntra(b *testing.B) {
	s, err := Open(b.TempDir(), Options{HotIndex: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.SetOnPremPairs(map[string][]string{"m365": {"ad"}})
	const n = 5000
	ad, err := s.NewGeneration("ad")
	if err != nil {
		b.Fatal(err)
	}
	m365, err := s.NewGeneration("m365")
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		guid := append([]byte{}, janeGUID...)
		guid[0], guid[1] = byte(i), byte(i>>8)
		a, c := adJane(), entraJane(base64.StdEncoding.EncodeToString(guid))
		mail := fmt.Sprintf("user%05d@corp.test", i)
		a.ID, a.DN, a.Addresses = FormatGUID(guid), fmt.Sprintf("CN=User %05d,OU=People,DC=corp,DC=test", i), []string{mail}
		a.Attrs[1].Values = []string{string(guid)}
		c.ID, c.DN, c.Addresses = fmt.Sprintf("entra-%d", i), fmt.Sprintf("id=entra-%d,ou=users,o=t", i), []string{mail}
		if err := ad.Put(a); err != nil {
			b.Fatal(err)
		}
		if err := m365.Put(c); err != nil {
			b.Fatal(err)
		}
	}
	for _, g := range []*Generation{ad, m365} {
		if err := g.Commit(context.Background(), nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		err := s.View(context.Background(), func(v *View) error {
			got, err := v.ByAddress(fmt.Sprintf("user%05d@corp.test", i%n))
			if err == nil && (len(got) != 1 || got[0].Connector != "ad") {
				err = fmt.Errorf("got %d entries", len(got))
			}
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}
