package sourcetest

import (
	"testing"

	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
)

var (
	full = dirsync.Options{Mode: dirsync.ModeFull}
	auto = dirsync.Options{}
)

// Run runs the contract against h. Subtests a source does not claim (see
// Capabilities) are skipped with the reason.
func Run(t *testing.T, h Harness) {
	caps := h.Capabilities()
	tests := []struct {
		name string
		need func(Capabilities) string
		run  func(t *testing.T, h Harness, caps Capabilities)
	}{
		{"StableIDsAndSpecialDNs", nil, stableIDs},
		{"FullRunChanges", nil, fullChanges},
		{"Rename", func(c Capabilities) string { return unless(c.Rename, "renames") }, renames},
		{"IncrementalChanges", func(c Capabilities) string { return unless(c.Incremental, "incremental sync") }, incrementalChanges},
		{"IncrementalDeleteOfGroupMember", func(c Capabilities) string { return unless(c.IncrementalDeletes, "incremental deletions") }, deleteMember},
		{"RenameOfGroupMember", func(c Capabilities) string {
			return unless(c.Rename && c.Incremental, "renames and incremental sync")
		}, renameMember},
		{"RenameOfMemberGroup", func(c Capabilities) string {
			return unless(c.Rename && c.Incremental, "renames and incremental sync")
		}, renameMemberGroup},
		{"DNTakenOverInOneWindow", func(c Capabilities) string {
			return unless(c.Rename && (c.IncrementalDeletes || !c.Incremental), "renames and deletions in every kind of run")
		}, takeOverDN},
		{"ContainerRename", func(c Capabilities) string { return unless(c.ContainerRename, "container renames") }, containerRename},
		{"ChangeDuringFullRead", func(c Capabilities) string { return unless(c.Incremental, "incremental sync") }, changeDuringRead},
		{"CrashBeforeCommit", nil, crashes},
		{"EmptyUpstreamBlocked", nil, emptyUpstream},
		{"ShrinkingUpstreamBlocked", nil, shrinking},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := caps.KnownDefects[tc.name]; ok {
				t.Skip("known defect: " + why)
			}
			if tc.need != nil {
				if why := tc.need(caps); why != "" {
					t.Skip(why)
				}
			}
			tc.run(t, h, caps)
		})
	}
}

func unless(ok bool, what string) string {
	if ok {
		return ""
	}
	return "the source does not claim " + what
}

// incrementalMode is the mode an automatic run takes after a committed one.
func incrementalMode(caps Capabilities) string {
	if caps.Incremental {
		return dirsync.ModeIncremental
	}
	return dirsync.ModeFull
}

// stableIDs: every object, special-character DNs included, is cached under
// a stable ID that resyncs keep, and group members resolve to them.
func stableIDs(t *testing.T, h Harness, caps Capabilities) {
	f := newFixture(t, h)
	users := []string{f.addUser("Plain User")}
	for _, n := range SpecialNames {
		users = append(users, f.addUser(n))
	}
	f.addGroup("Everyone", users...)
	f.addGroup(`Sales, EMEA + APAC`, users[1:3]...)
	res := f.sync("first full run", full, dirsync.ModeFull)
	if res.Added != len(f.objs) || res.Read != len(f.objs) {
		t.Errorf("first full run: read %d, added %d; want %d", res.Read, res.Added, len(f.objs))
	}
	f.check("first full run", f.objs)
	f.unchanged("second full run", full, dirsync.ModeFull)
	if caps.Incremental {
		f.unchanged("incremental run without upstream changes", auto, dirsync.ModeIncremental)
	}
}

// fullChanges: a full run finds additions, changes and deletions.
func fullChanges(t *testing.T, h Harness, _ Capabilities) {
	f := newFixture(t, h)
	a, b := f.addUser("Alpha"), f.addUser(SpecialNames[0])
	f.addUser("Gamma")
	g := f.addGroup("Team", a, b)
	f.sync("first run", full, dirsync.ModeFull)
	f.check("first run", f.objs)

	f.addUser(SpecialNames[1])
	f.setMail(b)
	f.remove(a, g)
	res := f.sync("full run after changes", full, dirsync.ModeFull)
	if res.Added != 1 || res.Deleted != 2 || res.Updated < 1 {
		t.Errorf("full run after changes: %d added, %d updated, %d deleted; want 1, at least 1, 2", res.Added, res.Updated, res.Deleted)
	}
	f.check("full run after changes", f.objs)
	f.unchanged("full run without changes", full, dirsync.ModeFull)
}

// renames: a renamed user or group keeps its ID and is an update, not a
// deletion and an addition, in every kind of run the source has.
func renames(t *testing.T, h Harness, caps Capabilities) {
	f := newFixture(t, h)
	u := f.addUser("Rename Me")
	g := f.addGroup("Rename Group", f.addUser("Member"))
	f.addUser("Stays")
	f.sync("first run", full, dirsync.ModeFull)
	f.check("first run", f.objs)
	steps := []struct {
		o    dirsync.Options
		mode string
		user string
	}{
		{auto, incrementalMode(caps), SpecialNames[2]},
		{full, dirsync.ModeFull, SpecialNames[3]},
	}
	for i, s := range steps {
		u = f.rename(u, s.user)
		g = f.rename(g, "Renamed, Group "+string(rune('A'+i)))
		step := s.mode + " run after renames"
		res := f.sync(step, s.o, s.mode)
		if res.Added != 0 || res.Deleted != 0 || res.Updated < 2 {
			t.Errorf("%s: %d added, %d updated, %d deleted; want 0, at least 2, 0", step, res.Added, res.Updated, res.Deleted)
		}
		f.check(step, f.objs)
	}
}

// incrementalChanges: an incremental run finds what changed, and what it
// builds is what a full run finds.
func incrementalChanges(t *testing.T, h Harness, caps Capabilities) {
	f := newFixture(t, h)
	a, b := f.addUser("Alpha"), f.addUser("Beta")
	c := f.addUser(SpecialNames[0])
	f.addGroup("Team", a, b)
	f.sync("first run", auto, dirsync.ModeFull)
	f.check("first run", f.objs)

	f.addUser(SpecialNames[1])
	f.setMail(b)
	wantDeleted := 0
	if caps.IncrementalDeletes {
		f.remove(c)
		wantDeleted = 1
	}
	res := f.sync("incremental run", auto, dirsync.ModeIncremental)
	if res.Added != 1 || res.Deleted != wantDeleted || res.Updated < 1 {
		t.Errorf("incremental run: %d added, %d updated, %d deleted; want 1, at least 1, %d", res.Added, res.Updated, res.Deleted, wantDeleted)
	}
	f.check("incremental run", f.objs)
	f.unchanged("second incremental run", auto, dirsync.ModeIncremental)
	f.unchanged("full run after incremental runs", full, dirsync.ModeFull)
}

// deleteMember: deleting a group's member changes the group upstream when
// the server keeps links consistent (AD, slapd's refint); the incremental
// run must then find the group as a full run would.
func deleteMember(t *testing.T, h Harness, _ Capabilities) {
	f := newFixture(t, h)
	a, b := f.addUser("Alpha"), f.addUser(SpecialNames[0])
	f.addGroup("Team", a, b)
	f.sync("first run", auto, dirsync.ModeFull)
	f.remove(a)
	f.sync("incremental run", auto, dirsync.ModeIncremental)
	f.check("incremental run", f.objs)
	f.unchanged("full run after the incremental one", full, dirsync.ModeFull)
}

// renameMember: renaming a user who is a member of groups reaches those
// groups in the incremental run as the upstream then lists them
// (Capabilities.MemberIntegrity), although only the user changed upstream.
func renameMember(t *testing.T, h Harness, _ Capabilities) {
	renameThenCheck(t, h, func(f *fixture, alpha, _ string) { f.rename(alpha, SpecialNames[0]) })
}

// renameMemberGroup: renaming a group that has members and is a member of
// another group reaches the other group as renameMember does, and changes
// nothing a full run would then find different.
func renameMemberGroup(t *testing.T, h Harness, _ Capabilities) {
	renameThenCheck(t, h, func(f *fixture, _, team string) { f.rename(team, "Team, Renamed") })
}

// renameThenCheck builds users Alpha and Beta, a group Team of both and a
// group Outer of Team and Alpha, syncs, renames with rename, and checks an
// incremental run and the full run after it.
func renameThenCheck(t *testing.T, h Harness, rename func(f *fixture, alpha, team string)) {
	f := newFixture(t, h)
	a := f.addUser("Alpha")
	team := f.addGroup("Team", a, f.addUser("Beta"))
	f.addGroup("Outer", team, a)
	f.sync("first run", auto, dirsync.ModeFull)
	f.check("first run", f.objs)
	rename(f, a, team)
	f.sync("incremental run", auto, dirsync.ModeIncremental)
	f.check("incremental run", f.objs)
	f.unchanged("full run after the incremental one", full, dirsync.ModeFull)
}

// takeOverDN: a new entry takes the DN another one leaves, by deletion or
// by rename, between two runs. The groups that listed the DN list the new
// entry or not as the upstream decides (Capabilities.MemberIntegrity), in
// the next run of whatever kind the source has.
func takeOverDN(t *testing.T, h Harness, caps Capabilities) {
	f := newFixture(t, h)
	a, b := f.addUser("Alpha"), f.addUser(SpecialNames[1])
	f.addGroup("Team", a, b, f.addUser("Gamma"))
	f.sync("first run", auto, dirsync.ModeFull)
	f.check("first run", f.objs)
	f.remove(a)
	f.addUser("Alpha")
	f.rename(b, "Beta Old")
	f.addUser(SpecialNames[1])
	step := incrementalMode(caps) + " run"
	f.sync(step, auto, incrementalMode(caps))
	f.check(step, f.objs)
	f.unchanged("full run after it", full, dirsync.ModeFull)
}

// containerRename: renaming the container (an OU) that holds a user and a
// group moves them with it, keeping their IDs, although the upstream may
// report only the container as changed; the next run of whatever kind the
// source has finds them at their new DNs, and the groups that list them
// and their back-links follow as the upstream decides.
func containerRename(t *testing.T, h Harness, caps Capabilities) {
	f := newFixture(t, h)
	box, in := f.scope.(Containers).AddContainer(t, "Box, One")
	a, b := f.addUserIn(in, "Alpha"), f.addUser("Beta")
	team := f.addGroupIn(in, SpecialNames[1], a, b)
	// Outer lists Team's members too: the Domino emulator lists nested
	// groups' members as the group's own.
	f.addGroup("Outer", team, a, b)
	f.addUser("Stays")
	f.sync("first run", auto, dirsync.ModeFull)
	f.check("first run", f.objs)
	f.renameContainer(box, "Box, Renamed")
	step := incrementalMode(caps) + " run after the container rename"
	res := f.sync(step, auto, incrementalMode(caps))
	if res.Added != 0 || res.Deleted != 0 || res.Updated < 2 {
		t.Errorf("%s: %d added, %d updated, %d deleted; want 0, at least 2, 0", step, res.Added, res.Updated, res.Deleted)
	}
	f.check(step, f.objs)
	f.unchanged("full run after it", full, dirsync.ModeFull)
}

// changeDuringRead: the cursor of a full listing is taken before the read,
// so a change made while the source reads is seen by the next run.
func changeDuringRead(t *testing.T, h Harness, _ Capabilities) {
	f := newFixture(t, h)
	users := []string{f.addUser("Alpha"), f.addUser("Beta"), f.addUser("Gamma")}
	src := interrupt(f.scope.Source(t, f.conn), 1, func() {
		for _, u := range users {
			f.setMail(u)
		}
		f.addUser("Added While Reading")
	})
	if _, err := f.run(full, src); err != nil {
		t.Fatalf("full run: %v", err)
	}
	f.sync("incremental run after the full one", auto, dirsync.ModeIncremental)
	f.check("incremental run after the full one", f.objs)
}

// crashes: a run that dies before it commits leaves the last committed
// state served, and the next run (in a new process) loses nothing.
func crashes(t *testing.T, h Harness, caps Capabilities) {
	f := newFixture(t, h)
	a, b, c := f.addUser("Alpha"), f.addUser("Beta"), f.addUser(SpecialNames[2])
	f.addGroup("Team", a, b)

	f.crash("first full run killed while reading", 1)
	f.check("after the killed first run", nil)
	f.sync("first run after the crash", auto, dirsync.ModeFull)
	f.check("first run after the crash", f.objs)

	before := f.snapshot()
	f.addUser(SpecialNames[3])
	f.setMail(b)
	if caps.IncrementalDeletes || !caps.Incremental {
		f.remove(c)
	}
	f.crash("run killed after reading the changes", 0)
	f.check("after the killed run", before)
	f.sync("run after the crash", auto, incrementalMode(caps))
	f.check("run after the crash", f.objs)
	f.unchanged("full run at the end", full, dirsync.ModeFull)
}

// emptyUpstream: a full run that finds nothing where the cache holds
// entries is blocked however high the deletion limits; an incremental run
// deleting everything meets the percent limit. Forcing applies it.
func emptyUpstream(t *testing.T, h Harness, caps Capabilities) {
	f := newFixture(t, h)
	a, b := f.addUser("Alpha"), f.addUser(SpecialNames[1])
	g := f.addGroup("Team", a, b)
	f.sync("first run", full, dirsync.ModeFull)
	before := f.snapshot()
	f.remove(g, a, b)
	f.blocked("full run of an empty upstream", full, dirsync.ModeFull)
	f.check("after the blocked full run", before)
	if caps.IncrementalDeletes {
		f.conn.Safety = config.Safety{MaxDeletes: 1 << 30, MaxDeletePercent: 50}
		f.blocked("incremental run deleting everything", auto, dirsync.ModeIncremental)
		f.check("after the blocked incremental run", before)
	}
	res := f.sync("forced full run", dirsync.Options{Mode: dirsync.ModeFull, Force: true}, dirsync.ModeFull)
	if res.Deleted != 3 {
		t.Errorf("forced full run: %d deleted, want 3", res.Deleted)
	}
	f.check("after the forced run", f.objs)
}

// shrinking: deletions at the count limit or above the percent limit are
// blocked, in full and incremental runs; a blocked incremental run leaves
// its cursor, so the run allowed afterwards still sees the deletions.
func shrinking(t *testing.T, h Harness, caps Capabilities) {
	f := newFixture(t, h)
	var users []string
	for _, n := range append([]string{"Alpha", "Beta"}, SpecialNames...) {
		users = append(users, f.addUser(n))
	}
	f.sync("first run", full, dirsync.ModeFull)
	before := f.snapshot()
	f.remove(users[:3]...)

	f.conn.Safety = config.Safety{MaxDeletes: 3, MaxDeletePercent: 100}
	f.blocked("full run at max_deletes", full, dirsync.ModeFull)
	if caps.IncrementalDeletes {
		f.blocked("incremental run at max_deletes", auto, dirsync.ModeIncremental)
	}
	f.conn.Safety = config.Safety{MaxDeletes: 100, MaxDeletePercent: 40}
	f.blocked("full run above max_delete_percent", full, dirsync.ModeFull)
	f.check("after the blocked runs", before)

	f.conn.Safety = config.Safety{MaxDeletes: 4, MaxDeletePercent: 60}
	o, mode := full, dirsync.ModeFull
	if caps.IncrementalDeletes {
		o, mode = auto, dirsync.ModeIncremental
	}
	res := f.sync("run within the limits", o, mode)
	if res.Deleted != 3 {
		t.Errorf("run within the limits: %d deleted, want 3", res.Deleted)
	}
	f.check("run within the limits", f.objs)
}
