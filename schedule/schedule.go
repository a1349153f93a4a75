// Package schedule computes when connectors sync: by default at 08:00, 13:00
// and 23:00 in the configured time zone (as the modelled product does), or
// at the times of per-connector cron expressions. It only computes times;
// the server's runner acts on them.
//
// Daylight saving time: a local time that does not exist on a day (the
// hour skipped in spring) fires at the first instant after the gap, and a
// local time that occurs twice (the hour repeated in autumn) fires once, at
// its first occurrence. Cron expressions are parsed with robfig/cron.
package schedule

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// DefaultTimes are the daily sync times when a connector sets none.
var DefaultTimes = []string{"08:00", "13:00", "23:00"}

// Schedule gives the sync times of one connector.
type Schedule struct {
	loc   *time.Location
	specs []*cron.SpecSchedule
	desc  string
}

var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// New builds a schedule in zone (an IANA name; "" is UTC) from cron
// expressions (5 fields, or descriptors like @daily); none means the
// default daily times.
func New(zone string, exprs []string) (*Schedule, error) {
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", zone, err)
	}
	s := &Schedule{loc: loc}
	if len(exprs) == 0 {
		for _, t := range DefaultTimes {
			var h, m int
			if _, err := fmt.Sscanf(t, "%d:%d", &h, &m); err != nil {
				return nil, err
			}
			exprs = append(exprs, fmt.Sprintf("%d %d * * *", m, h))
		}
		s.desc = "daily at " + strings.Join(DefaultTimes, ", ") + " " + zone
	} else {
		s.desc = strings.Join(exprs, "; ") + " (" + zone + ")"
	}
	for _, e := range exprs {
		sch, err := parser.Parse(e)
		if err != nil {
			return nil, fmt.Errorf("cron expression %q: %w", e, err)
		}
		spec, ok := sch.(*cron.SpecSchedule)
		if !ok {
			return nil, fmt.Errorf("cron expression %q: intervals (@every) are not schedules here; use incremental_interval", e)
		}
		s.specs = append(s.specs, spec)
	}
	return s, nil
}

// String describes the schedule for status output.
func (s *Schedule) String() string { return s.desc }

// Next returns the first sync time strictly after t.
func (s *Schedule) Next(t time.Time) time.Time {
	var best time.Time
	for _, sp := range s.specs {
		n := s.next(sp, t)
		if best.IsZero() || n.Before(best) {
			best = n
		}
	}
	return best
}

// next walks wall-clock minutes so DST is handled by the rules above
// rather than by whatever the cron library does around transitions.
func (s *Schedule) next(sp *cron.SpecSchedule, t time.Time) time.Time {
	local := t.In(s.loc)
	// Candidate wall-clock times, day by day, in the location.
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)
	for d := 0; d < 366*5; d++ {
		date := day.AddDate(0, 0, d)
		if !matchDay(sp, date) {
			continue
		}
		for h := 0; h < 24; h++ {
			if sp.Hour&(1<<uint(h)) == 0 {
				continue
			}
			for m := 0; m < 60; m++ {
				if sp.Minute&(1<<uint(m)) == 0 {
					continue
				}
				at := resolve(date.Year(), date.Month(), date.Day(), h, m, s.loc)
				if at.After(t) {
					return at
				}
			}
		}
	}
	return time.Time{}
}

func matchDay(sp *cron.SpecSchedule, d time.Time) bool {
	if sp.Month&(1<<uint(d.Month())) == 0 {
		return false
	}
	dom := sp.Dom&(1<<uint(d.Day())) != 0
	dow := sp.Dow&(1<<uint(d.Weekday())) != 0
	// As in cron: when both day fields are restricted, either may match.
	const star = 1 << 63
	if sp.Dom&star != 0 || sp.Dow&star != 0 {
		return dom && dow
	}
	return dom || dow
}

// resolve turns a wall-clock time into an instant: a time skipped by a DST
// gap becomes the end of the gap; a repeated time its first occurrence.
func resolve(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	at := time.Date(y, mo, d, h, mi, 0, 0, loc)
	if at.Hour() != h || at.Minute() != mi {
		// time.Date normalised a nonexistent time forward by the gap; the
		// gap's end is the first valid instant after the wanted time.
		want := time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
		for probe := at.Add(-3 * time.Hour); probe.Before(at); probe = probe.Add(time.Minute) {
			l := probe.In(loc)
			if time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC).After(want) {
				return probe.Truncate(time.Minute)
			}
		}
		return at
	}
	// Go does not promise which of two occurrences time.Date picks: take
	// the hour before when it shows the same wall-clock time.
	if earlier := at.Add(-time.Hour); earlier.In(loc).Hour() == h && earlier.In(loc).Minute() == mi {
		return earlier
	}
	return at
}

// Missed reports whether a scheduled time passed in (last, now]: a run was
// due while the server was down, and should run once at start.
func (s *Schedule) Missed(last, now time.Time) bool {
	if last.IsZero() {
		return true
	}
	n := s.Next(last)
	return !n.IsZero() && !n.After(now)
}
