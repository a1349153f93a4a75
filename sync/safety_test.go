package dirsync

import (
	"testing"

	"github.com/dirgate/dirgate/config"
)

func TestCheckSafety(t *testing.T) {
	def := config.Safety{MaxDeletes: 500, MaxDeletePercent: 10}
	cases := []struct {
		name                  string
		s                     config.Safety
		cached, read, deletes int
		blocked               bool
	}{
		{"first sync into an empty cache", def, 0, 1000, 0, false},
		{"empty upstream never wipes", config.Safety{MaxDeletes: 1 << 30, MaxDeletePercent: 100}, 10, 0, 10, true},
		{"below both limits", def, 10000, 9501, 499, false},
		{"exactly at the count threshold", def, 10000, 9500, 500, true},
		{"one over the count", def, 100000, 99499, 501, true},
		{"percent just at 10% is allowed", def, 1000, 900, 100, false},
		{"percent over 10%", def, 1000, 899, 101, true},
		{"zero count blocks any deletion", config.Safety{MaxDeletes: 0, MaxDeletePercent: 100}, 100, 99, 1, true},
		{"zero count, no deletion", config.Safety{MaxDeletes: 0, MaxDeletePercent: 0}, 100, 100, 0, false},
		{"percent 100 disables the percent check", config.Safety{MaxDeletes: 1000, MaxDeletePercent: 100}, 100, 1, 99, false},
	}
	for _, c := range cases {
		got := checkSafety(c.s, c.cached, c.read, c.deletes) != ""
		if got != c.blocked {
			t.Errorf("%s: blocked = %v, want %v (%q)", c.name, got, c.blocked, checkSafety(c.s, c.cached, c.read, c.deletes))
		}
	}
}
