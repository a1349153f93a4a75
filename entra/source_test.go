package entra

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/internal/fakecached"
	"github.com/dirgate/dirgate/internal/fakeentra"
	dirsync "github.com/dirgate/dirgate/sync"
)

// full runs Full and returns the entries by ID, and the cursor.
func full(t *testing.T, s *Source) (map[string]*cache.Entry, []byte) {
	t.Helper()
	got := map[string]*cache.Entry{}
	l, err := s.Full(context.Background(), func(e *cache.Entry) error { got[e.ID] = e; return nil })
	if err != nil {
		t.Fatalf("Full: %v", err)
	}
	return got, l.Cursor
}

// changes runs Changes against the entries cached (by ID), as the engine
// does: known from them, and them as the dirsync.Cached.
func changes(t *testing.T, s *Source, cur []byte, cached map[string]*cache.Entry) (map[string]*cache.Entry, []string, []byte) {
	t.Helper()
	ups := map[string]*cache.Entry{}
	var dels []string
	cs, err := s.Changes(withEntries(cached), cur, knownOf(cached), func(c dirsync.Change) error {
		if c.Upsert != nil {
			ups[c.Upsert.ID] = c.Upsert
		} else {
			dels = append(dels, c.DeleteID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	return ups, dels, cs.Cursor
}

func withEntries(m map[string]*cache.Entry) context.Context {
	return dirsync.WithCached(context.Background(), fakecached.Entries(m))
}

func knownOf(m map[string]*cache.Entry) dirsync.Known {
	k := dirsync.Known{}
	for id, e := range m {
		k[id] = e.Hash()
	}
	return k
}

// TestMapping: addresses from proxyAddresses (SMTP: primary first), a
// disabled account, guests out of scope, onPremisesImmutableId kept,
// nested groups as member DNs.
func TestMapping(t *testing.T) {
	for _, cred := range []string{"", "certificate", "certificate-ps256"} {
		t.Run("credential="+cred, func(t *testing.T) {
			tn := newTenant(t, cred)
			ann := tn.user(fakeentra.User{Mail: "ann@contoso.com", OnPremisesImmutableID: "ZmFrZS1ndWlkLTAx",
				LastPasswordChangeDateTime: time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC),
				ProxyAddresses:             []string{"smtp:a.smith@contoso.com", "SMTP:Ann.Smith@contoso.com", "X500:/o=x/cn=ann"}})
			bob := tn.user(fakeentra.User{UserType: "disabled"})
			guest := tn.user(fakeentra.User{UserType: "Guest", UserPrincipalName: "g_ext.example#EXT#@contoso.onmicrosoft.com"})
			inner := tn.group("Inner", bob, guest)
			outer := tn.group("Outer", ann, inner)

			got, _ := full(t, tn.source(t, tn.conn))
			if len(got) != 4 || got[guest] != nil {
				t.Fatalf("entries %v, want ann, bob and two groups (no guest)", slices.Collect(maps.Keys(got)))
			}
			a := got[ann]
			if want := []string{"ann.smith@contoso.com", "ann@contoso.com", "a.smith@contoso.com", "user1@contoso.com"}; !slices.Equal(a.Addresses, want) {
				t.Errorf("addresses %v, want %v", a.Addresses, want)
			}
			if a.First("lastPasswordChangeDateTime") != "2026-11-02T09:30:00Z" {
				t.Errorf("password stamp %q", a.First("lastPasswordChangeDateTime"))
			}
			if a.First("onPremisesImmutableId") != "ZmFrZS1ndWlkLTAx" || a.DN != "cn="+ann+",ou=users,"+tn.conn.RootDN || a.Disabled {
				t.Errorf("ann = %+v", a)
			}
			if !got[bob].Disabled || got[bob].First("accountEnabled") != "FALSE" {
				t.Errorf("bob is not disabled: %+v", got[bob])
			}
			if m := got[inner].Values("member"); !slices.Equal(m, []string{"cn=" + bob + ",ou=users," + tn.conn.RootDN}) {
				t.Errorf("inner member attribute %v (the guest must not be served)", m)
			}
			if m := got[outer].Members; len(m) != 2 || m[1] != "cn="+inner+",ou=groups,"+tn.conn.RootDN {
				t.Errorf("outer members %v", m)
			}
		})
	}
}

// TestIncremental: soft delete, restore, hard delete, membership changes
// and a renamed user reach the source's changes; a deleted user leaves its
// groups at once.
func TestIncremental(t *testing.T) {
	tn := newTenant(t, "")
	ann, bob, cat := tn.user(fakeentra.User{}), tn.user(fakeentra.User{}), tn.user(fakeentra.User{})
	g := tn.group("Team", ann, bob)
	s := tn.source(t, tn.conn)
	cached, cur := full(t, s)

	tn.SoftDelete(ann)
	tn.AddMember(g, cat)
	ups, dels, cur := changes(t, s, cur, cached)
	if !slices.Equal(dels, []string{ann}) {
		t.Errorf("deletes %v, want ann (soft delete)", dels)
	}
	if m := ups[g].Values("member"); len(m) != 2 || slices.Contains(m, "cn="+ann+",ou=users,"+tn.conn.RootDN) {
		t.Errorf("group members %v, want bob and cat", m)
	}
	delete(cached, ann)

	tn.Restore(ann)
	ups, _, cur = changes(t, s, cur, cached)
	if ups[ann] == nil {
		t.Error("a restored user did not come back")
	}
	cached[ann] = ups[ann]

	tn.HardDelete(bob)
	ups, dels, _ = changes(t, s, cur, cached)
	if !slices.Contains(dels, bob) || ups[g] == nil || slices.Contains(ups[g].Members, "cn="+bob+",ou=users,"+tn.conn.RootDN) {
		t.Errorf("hard delete: deletes %v, group %v", dels, ups[g])
	}
}

// TestExpiredAndResetTokens: syncStateNotFound and 410 Gone make the
// cursor invalid, so the engine reads in full.
func TestExpiredAndResetTokens(t *testing.T) {
	for name, fault := range map[string]func(*fakeentra.Tenant){
		"expired": (*fakeentra.Tenant).ExpireDeltaTokens,
		"reset":   (*fakeentra.Tenant).ResetSyncState,
	} {
		t.Run(name, func(t *testing.T) {
			tn := newTenant(t, "")
			tn.user(fakeentra.User{})
			s := tn.source(t, tn.conn)
			cached, cur := full(t, s)
			fault(tn.Tenant)
			_, err := s.Changes(withEntries(cached), cur, knownOf(cached), func(dirsync.Change) error { return nil })
			if !errors.Is(err, dirsync.ErrCursorInvalid) {
				t.Fatalf("Changes = %v, want ErrCursorInvalid", err)
			}
		})
	}
}

// TestThrottled: 429 and 503, with and without Retry-After, are waited
// out on the fake clock and the round completes.
func TestThrottled(t *testing.T) {
	for _, tc := range []struct {
		status int
		after  int
	}{{429, 30}, {503, 5}, {429, 0}} {
		tn := newTenant(t, "")
		for range 5 {
			tn.user(fakeentra.User{})
		}
		s := tn.source(t, tn.conn)
		tn.Throttle(2, tc.status, secs(tc.after))
		got, _ := full(t, s)
		if len(got) != 5 {
			t.Errorf("%d: %d entries, want 5", tc.status, len(got))
		}
		if tc.after > 0 && tn.clk.Slept() < 2*secs(tc.after) {
			t.Errorf("%d: slept %v, want Retry-After honoured twice", tc.status, tn.clk.Slept())
		}
		if tc.after == 0 && tn.clk.Slept() == 0 {
			t.Errorf("%d without Retry-After: no backoff", tc.status)
		}
	}
}

// TestThrottledBeyondCap: a run that stays throttled fails and keeps the
// cursor.
func TestThrottledBeyondCap(t *testing.T) {
	tn := newTenant(t, "")
	tn.user(fakeentra.User{})
	s := tn.source(t, tn.conn)
	cached, cur := full(t, s)
	tn.Throttle(100, 429, secs(1))
	_, err := s.Changes(withEntries(cached), cur, knownOf(cached), func(dirsync.Change) error { return nil })
	if err == nil {
		t.Fatal("a run throttled beyond the retry cap succeeded")
	}
}

// TestTokenExpiresMidRun: an access token that expires between pages is
// renewed and the round goes on.
func TestTokenExpiresMidRun(t *testing.T) {
	tn := newTenant(t, "", fakeentra.WithPageSize(1))
	for range 4 {
		tn.user(fakeentra.User{})
	}
	tn.SetAccessTokenLifetime(secs(90))
	s := tn.source(t, tn.conn)
	tn.Throttle(3, 429, secs(60)) // the waits outlast the token
	got, _ := full(t, s)
	if len(got) != 4 {
		t.Fatalf("%d entries, want 4", len(got))
	}
	if tn.TokenRequests() < 2 {
		t.Errorf("%d token requests, want a renewal", tn.TokenRequests())
	}
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }

// TestEmptyPagesAndReplays: a round with an empty page and a replayed
// group slice gives the same entries as a clean one.
func TestEmptyPagesAndReplays(t *testing.T) {
	tn := newTenant(t, "", fakeentra.WithPageSize(2), fakeentra.WithMemberChunk(2))
	var ids []string
	for range 5 {
		ids = append(ids, tn.user(fakeentra.User{}))
	}
	g := tn.group("Big", ids...)
	s := tn.source(t, tn.conn)
	clean, cur := full(t, s)
	tn.InjectEmptyPage()
	tn.InjectReplay()
	again, _ := full(t, s)
	if len(again) != len(clean) || again[g].Hash() != clean[g].Hash() || len(again[g].Members) != 5 {
		t.Fatalf("with an empty page and a replay: %d entries, group members %v", len(again), again[g].Members)
	}
	tn.RemoveMember(g, ids[0])
	tn.InjectReplay()
	ups, _, _ := changes(t, s, cur, clean)
	if len(ups[g].Members) != 4 {
		t.Fatalf("after a removal replayed: members %v", ups[g].Members)
	}
}
