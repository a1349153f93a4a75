package admin

import (
	"embed"
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/dirtype"
	dirsync "github.com/dirgate/dirgate/sync"
)

//go:embed templates/*.html
var templateFS embed.FS

// maxPlanRows is how many DNs of each part of a plan a page lists; the API
// returns them all.
const maxPlanRows = 200

var funcs = template.FuncMap{
	// when formats an instant in the server's zone.
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("2006-01-02 15:04:05 MST")
	},
	// short is when without seconds, for tables.
	"short": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("2006-01-02 15:04\u00a0MST") // the time never wraps
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// rel says how far t is from now: "5 minutes ago", "in 2 hours".
	"rel": func(now, t time.Time) string { return relTime(t, now) },
	"age": func(d time.Duration) string { return humanDuration(d) },
	// secs formats a lag given in seconds.
	"secs": func(f float64) string { return tookDuration(time.Duration(f * float64(time.Second))) },
	"took": tookDuration,
	"typeName": func(t string) string {
		if dt, ok := dirtype.Lookup(strings.ToLower(t)); ok {
			return dt.DisplayName
		}
		return t
	},
	"stateClass": func(s string) string {
		switch s {
		case "ok", "error", "blocked", "running":
			return s
		}
		return "never"
	},
	"stateText": func(s string) string {
		switch s {
		case "ok":
			return "OK"
		case "error":
			return "Error"
		case "blocked":
			return "Blocked"
		case "running":
			return "Running"
		case "", "never synced":
			return "Never synced"
		}
		return s
	},
	"kind": func(k cache.Kind) string { return kindName(k) },
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, one)
		}
		return fmt.Sprintf("%d %s", n, many)
	},
	"firstN": func(items []dirsync.PlanItem) []dirsync.PlanItem {
		return items[:min(len(items), maxPlanRows)]
	},
	"more": func(items []dirsync.PlanItem) int { return max(len(items)-maxPlanRows, 0) },
	"outcome": func(r cache.Run) string {
		switch {
		case r.Error != "":
			return "failed"
		case r.Blocked != "":
			return "blocked"
		case r.DryRun:
			return "dry run"
		}
		return "ok"
	},
	"deref": func(p *int) int {
		if p == nil {
			return 0
		}
		return *p
	},
	"part": func(label, id string, items []dirsync.PlanItem) planPart {
		return planPart{Label: label, ID: id, Items: items}
	},
}

// planPart is one list of a plan (deletions, additions, updates) on a page.
type planPart struct {
	Label, ID string
	Items     []dirsync.PlanItem
}

// templates are the console pages, each parsed with the shared layout.
var templates = func() map[string]*template.Template {
	base := template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "list", "detail", "confirm", "browse", "lookup", "cluster", "agents", "error"} {
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
	}
	return out
}()

// relTime describes t relative to now in words.
func relTime(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	if d >= 0 {
		if d < 45*time.Second {
			return "just now"
		}
		return humanDuration(d) + " ago"
	}
	if -d < 45*time.Second {
		return "in a moment"
	}
	return "in " + humanDuration(-d)
}

// humanDuration rounds a duration to its largest unit or two: "3 minutes",
// "5 hours 10 minutes", "2 days 4 hours".
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	unit := func(n int64, s string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s", s)
		}
		return fmt.Sprintf("%d %ss", n, s)
	}
	switch {
	case d < time.Minute:
		return unit(int64(math.Max(1, math.Round(d.Seconds()))), "second")
	case d < time.Hour:
		return unit(int64(d/time.Minute), "minute")
	case d < 24*time.Hour:
		h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
		if m == 0 {
			return unit(h, "hour")
		}
		return unit(h, "hour") + " " + unit(m, "minute")
	}
	days, h := int64(d/(24*time.Hour)), int64(d%(24*time.Hour)/time.Hour)
	if h == 0 || days >= 7 {
		return unit(days, "day")
	}
	return unit(days, "day") + " " + unit(h, "hour")
}

// tookDuration formats how long a run or a step took: 850 ms, 2.4 s, 3m05s.
func tookDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return d.Round(time.Second).String()
}
