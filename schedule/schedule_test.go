package schedule

import (
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNext(t *testing.T) {
	berlin, ny := mustLoc(t, "Europe/Berlin"), mustLoc(t, "America/New_York")
	cases := []struct {
		name  string
		zone  string
		exprs []string
		after time.Time
		want  time.Time
	}{
		{"default, UTC, morning", "", nil, time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)},
		{"default, exactly at a run: strictly after", "", nil, time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)},
		{"default, after the last run of the day", "", nil, time.Date(2026, 11, 23, 23, 30, 0, 0, time.UTC), time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)},
		{"default in Berlin (UTC+1 in winter)", "Europe/Berlin", nil, time.Date(2026, 11, 23, 7, 30, 0, 0, time.UTC), time.Date(2026, 11, 23, 13, 0, 0, 0, berlin)},
		{"default in Berlin (UTC+2 in summer)", "Europe/Berlin", nil, time.Date(2026, 7, 1, 5, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 8, 0, 0, 0, berlin)},
		{"spring gap: 02:30 does not exist, runs at 03:00", "Europe/Berlin", []string{"30 2 * * *"},
			time.Date(2026, 3, 29, 0, 0, 0, 0, berlin), time.Date(2026, 3, 29, 3, 0, 0, 0, berlin)},
		{"autumn repeat: 02:30 runs once, at the first one", "Europe/Berlin", []string{"30 2 * * *"},
			time.Date(2026, 10, 25, 0, 0, 0, 0, berlin), time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)},
		{"autumn repeat: not again an hour later", "Europe/Berlin", []string{"30 2 * * *"},
			time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC), time.Date(2026, 10, 26, 2, 30, 0, 0, berlin)},
		{"default across the US spring change", "America/New_York", nil,
			time.Date(2026, 3, 7, 23, 30, 0, 0, ny), time.Date(2026, 3, 8, 8, 0, 0, 0, ny)},
		{"cron weekdays at 06:15", "UTC", []string{"15 6 * * 1-5"}, time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 6, 15, 0, 0, time.UTC)},
		{"two expressions: the earliest wins", "UTC", []string{"0 20 * * *", "0 9 * * *"}, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)},
		{"@daily", "UTC", []string{"@daily"}, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
		{"day of month or weekday (cron rule)", "UTC", []string{"0 0 1 * 0"}, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		s, err := New(c.zone, c.exprs)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := s.Next(c.after); !got.Equal(c.want) {
			t.Errorf("%s: Next(%s) = %s, want %s", c.name, c.after, got.In(s.loc), c.want.In(s.loc))
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, c := range []struct {
		zone  string
		exprs []string
	}{{"Mars/Olympus", nil}, {"UTC", []string{"61 * * * *"}}, {"UTC", []string{"@every 5m"}}, {"UTC", []string{"* * *"}}} {
		if _, err := New(c.zone, c.exprs); err == nil {
			t.Errorf("New(%q, %q) accepted", c.zone, c.exprs)
		}
	}
}

func TestMissed(t *testing.T) {
	s, _ := New("UTC", nil)
	day := func(h, m int) time.Time { return time.Date(2026, 11, 23, h, m, 0, 0, time.UTC) }
	cases := []struct {
		last, now time.Time
		want      bool
	}{
		{time.Time{}, day(9, 0), true},    // never synced
		{day(8, 0), day(12, 59), false},   // next run at 13:00 not yet due
		{day(8, 0), day(13, 0), true},     // due now
		{day(7, 0), day(14, 0), true},     // down across 08:00 and 13:00: one catch-up run
		{day(13, 30), day(22, 59), false}, // nothing due
	}
	for _, c := range cases {
		if got := s.Missed(c.last, c.now); got != c.want {
			t.Errorf("Missed(%s, %s) = %v", c.last, c.now, got)
		}
	}
}
