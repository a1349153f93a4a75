package google

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/internal/fakegoogle"
	dirsync "github.com/dirgate/dirgate/sync"
)

func runEngine(t *testing.T, a *account, dir string) (*dirsync.Result, error) {
	t.Helper()
	s, err := cache.Open(dir, cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return dirsync.New(s, s.States(), nil).Run(context.Background(), a.conn, a.source(t, a.conn), dirsync.Options{Trigger: "test"})
}

// TestDeletionByAbsenceBlocked: when the account suddenly lists 60% fewer
// users (a scope or permission mistake), the run is blocked by the safety
// rules and nothing is deleted; a small deletion goes through.
func TestDeletionByAbsenceBlocked(t *testing.T) {
	a := newAccount(t)
	var ids []string
	for i := range 50 {
		ids = append(ids, a.user(fakegoogle.User{PrimaryEmail: fmt.Sprintf("u%d@example.test", i)}))
	}
	dir := t.TempDir()
	if res, err := runEngine(t, a, dir); err != nil || res.Added != 50 {
		t.Fatalf("first run: %v, %+v", err, res)
	}
	a.DeleteUser(ids[0])
	if res, err := runEngine(t, a, dir); err != nil || res.Deleted != 1 {
		t.Fatalf("one deletion: %v, %+v", err, res)
	}
	for _, id := range ids[1:31] { // 30 of the 50 users left
		a.DeleteUser(id)
	}
	res, err := runEngine(t, a, dir)
	var blocked *dirsync.BlockedError
	if !errors.As(err, &blocked) || res.Blocked == "" {
		t.Fatalf("60%% of the users gone: %v, %+v; want the run blocked", err, res)
	}
}

// TestEtagStateSurvivesRestart: the group state committed with the cache
// (each cached group's etag, membersReadAt and Members) spares the next
// process's run the member listings of unchanged groups.
func TestEtagStateSurvivesRestart(t *testing.T) {
	a := newAccount(t)
	dan := a.user(fakegoogle.User{PrimaryEmail: "dan@example.test"})
	for i := range 4 {
		a.group(fakegoogle.Group{Email: fmt.Sprintf("g%d@example.test", i), Members: []fakegoogle.Member{{ID: dan, Type: "USER"}}})
	}
	dir := t.TempDir()
	if _, err := runEngine(t, a, dir); err != nil {
		t.Fatal(err)
	}
	before := a.Requests()
	res, err := runEngine(t, a, dir)
	if err != nil || res.Unchanged != 5 {
		t.Fatalf("second run: %v, %+v", err, res)
	}
	if n := a.Requests() - before; n != 2 {
		t.Errorf("second run made %d requests, want 2 (users and groups; members spared by etag)", n)
	}
}
