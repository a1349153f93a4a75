package cache

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestApplyDelta(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	if _, err := s.ApplyDelta(ctx, "corp", &Delta{}, nil, nil, false); !errors.Is(err, ErrNoGeneration) {
		t.Fatalf("delta before any full sync: %v", err)
	}
	grp := func(members ...string) *Entry {
		return &Entry{ID: "g", DN: "cn=g,dc=x", Kind: KindGroup, Members: members, Attrs: []Attr{{Name: "cn", Values: []string{"g"}}}}
	}
	commitAll(t, s, "corp",
		user("a", "uid=a,dc=x", "a@x.test"),
		user("b", "uid=b,dc=x", "b@x.test"),
		user("c", "uid=c,dc=x", "c@x.test"),
		grp("uid=a,dc=x", "uid=b,dc=x"))

	renamed := user("a", "uid=a2,dc=x", "a2@x.test")
	d := &Delta{
		Upserts: []*Entry{
			renamed,
			user("n", "uid=n,dc=x", "n@x.test"),
			grp("uid=a2,dc=x", "uid=n,dc=x"), // b removed, n added, a renamed
			user("c", "uid=c,dc=x", "c@x.test"),
		},
		Deletes: []string{"b", "unknown"},
	}
	dry, err := s.ApplyDelta(ctx, "corp", d, nil, nil, true)
	if err != nil || dry != (DeltaCounts{Added: 1, Updated: 2, Deleted: 1, Unchanged: 1}) {
		t.Fatalf("dry run counts %+v, %v", dry, err)
	}
	err = s.View(ctx, func(v *View) error {
		if _, err := v.Get("corp", "b"); err != nil {
			return fmt.Errorf("dry run deleted b: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := s.ApplyDelta(ctx, "corp", d, []byte("c2"), &Run{Connector: "corp", Mode: "incremental"}, false)
	if err != nil || counts != dry {
		t.Fatalf("apply: %+v %v", counts, err)
	}
	err = s.View(ctx, func(v *View) error {
		if _, err := v.ByDN("uid=a,dc=x"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("old DN of a renamed entry still resolves: %v", err)
		}
		a, err := v.ByDN("uid=a2,dc=x")
		if err != nil || a.ID != "a" {
			return fmt.Errorf("renamed entry: %v %v", a, err)
		}
		if got, _ := v.ByAddress("a@x.test"); len(got) != 0 {
			return fmt.Errorf("old address still indexed")
		}
		if got, _ := v.ByAddress("a2@x.test"); len(got) != 1 {
			return fmt.Errorf("new address not indexed")
		}
		if got, _ := v.ByAttr("uid", "b"); len(got) != 0 {
			return fmt.Errorf("deleted entry still in the uid index")
		}
		g, _ := v.Get("corp", "g")
		ids, _ := v.MemberIDs(g)
		if fmt.Sprint(ids) != "[a n]" {
			return fmt.Errorf("members = %v, want [a n]", ids)
		}
		n, _ := v.Get("corp", "n")
		if mo, _ := v.MemberOf(n); len(mo) != 1 {
			return fmt.Errorf("memberOf of the added user = %v", mo)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Cursor("corp"); string(c) != "c2" {
		t.Fatalf("cursor = %q", c)
	}
	// Deleting a member removes it from its groups.
	if _, err := s.ApplyDelta(ctx, "corp", &Delta{Deletes: []string{"n"}}, nil, nil, false); err != nil {
		t.Fatal(err)
	}
	_ = s.View(ctx, func(v *View) error {
		g, _ := v.Get("corp", "g")
		if ids, _ := v.MemberIDs(g); fmt.Sprint(ids) != "[a]" {
			t.Errorf("members after deleting n = %v", ids)
		}
		return nil
	})
	// A rename onto another entry's DN is refused, and nothing is applied.
	clash := user("c", "uid=a2,dc=x", "c@x.test")
	if _, err := s.ApplyDelta(ctx, "corp", &Delta{Upserts: []*Entry{clash}, Deletes: []string{"a"}}, nil, nil, false); err != nil {
		t.Fatalf("moving c to a's old DN after deleting a must work: %v", err)
	}
	clash2 := user("g2", "uid=a2,dc=x", "z@x.test")
	if _, err := s.ApplyDelta(ctx, "corp", &Delta{Upserts: []*Entry{clash2}}, nil, nil, false); err == nil {
		t.Fatal("a DN clash was applied")
	}
}
