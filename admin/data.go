package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dirgate/dirgate/cache"
	dirsync "github.com/dirgate/dirgate/sync"
)

// The JSON shapes of what the API composes itself. Statuses and Test
// Connection reports are served in their own types' wire form.

type planItemJSON struct {
	ID   string `json:"id"`
	DN   string `json:"dn"`
	Kind string `json:"kind"`
}

type planJSON struct {
	Adds    []planItemJSON `json:"adds"`
	Updates []planItemJSON `json:"updates"`
	Deletes []planItemJSON `json:"deletes"`
}

type resultJSON struct {
	cache.Run
	Plan planJSON `json:"plan"`
}

func kindName(k cache.Kind) string {
	switch k {
	case cache.KindUser, cache.KindGroup:
		return k.String()
	}
	return ""
}

// kindOfName inverts kindName; 0 for anything else.
func kindOfName(s string) cache.Kind {
	for _, k := range [...]cache.Kind{cache.KindUser, cache.KindGroup} {
		if s == kindName(k) {
			return k
		}
	}
	return 0
}

func planItems(in []dirsync.PlanItem) []planItemJSON {
	out := make([]planItemJSON, len(in))
	for i, it := range in {
		out[i] = planItemJSON{ID: it.ID, DN: it.DN, Kind: kindName(it.Kind)}
	}
	return out
}

// fromPlanItems inverts planItems; an empty list is nil, as in a plan the
// engine made.
func fromPlanItems(in []planItemJSON) []dirsync.PlanItem {
	if len(in) == 0 {
		return nil
	}
	out := make([]dirsync.PlanItem, len(in))
	for i, it := range in {
		out[i] = dirsync.PlanItem{ID: it.ID, DN: it.DN, Kind: kindOfName(it.Kind)}
	}
	return out
}

func toResultJSON(r *dirsync.Result) *resultJSON {
	if r == nil {
		return nil
	}
	return &resultJSON{Run: r.Run, Plan: planJSON{
		Adds: planItems(r.Plan.Adds), Updates: planItems(r.Plan.Updates), Deletes: planItems(r.Plan.Deletes),
	}}
}

// result inverts toResultJSON for the API's client.
func (r *resultJSON) result() *dirsync.Result {
	if r == nil {
		return nil
	}
	return &dirsync.Result{Run: r.Run, Plan: dirsync.Plan{
		Adds: fromPlanItems(r.Plan.Adds), Updates: fromPlanItems(r.Plan.Updates), Deletes: fromPlanItems(r.Plan.Deletes),
	}}
}

// account is one cached entry as the lookup and the browser show it.
type account struct {
	Connector string   `json:"connector"`
	ID        string   `json:"id"`
	DN        string   `json:"dn"`
	Kind      string   `json:"kind"`
	Name      string   `json:"name,omitempty"` // cn or displayName
	Disabled  bool     `json:"disabled"`
	Addresses []string `json:"addresses"`
	Groups    []string `json:"groups,omitempty"`  // DNs of direct groups (lookup only)
	Members   *int     `json:"members,omitempty"` // cached direct members of a group (browse only)
}

func toAccount(e *cache.Entry) account {
	name := e.First("displayName")
	if name == "" {
		name = e.First("cn")
	}
	addrs := e.Addresses
	if addrs == nil {
		addrs = []string{}
	}
	return account{Connector: e.Connector, ID: e.ID, DN: e.DN, Kind: kindName(e.Kind), Name: name,
		Disabled: e.Disabled, Addresses: addrs}
}

var errNoStore = errors.New("the cache is not open yet")

func (s *server) store() (*cache.Store, error) {
	st := s.b.Store()
	if st == nil {
		return nil, errNoStore
	}
	return st, nil
}

// lookupResult is the answer to a lookup by email address.
type lookupResult struct {
	Email     string    `json:"email"`
	Ambiguous bool      `json:"ambiguous"`
	Message   string    `json:"message"`
	Accounts  []account `json:"accounts"`
}

// lookup finds the entries holding addr as a primary address or alias,
// with their direct groups.
func (s *server) lookup(ctx context.Context, addr string) (*lookupResult, error) {
	addr = cache.NormalizeAddress(addr)
	res := &lookupResult{Email: addr, Accounts: []account{}}
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	err = st.View(ctx, func(v *cache.View) error {
		es, err := v.ByAddress(addr)
		if err != nil {
			return err
		}
		for _, e := range es {
			a := toAccount(e)
			if a.Groups, err = v.MemberOf(e); err != nil {
				return err
			}
			if a.Groups == nil {
				a.Groups = []string{}
			}
			res.Accounts = append(res.Accounts, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch n := len(res.Accounts); {
	case n == 0:
		res.Message = fmt.Sprintf("no cached account holds %s", addr)
	case n == 1:
		res.Message = fmt.Sprintf("%s belongs to one account", addr)
		if res.Accounts[0].Disabled {
			res.Message += " (disabled: sign-ins are refused)"
		}
	default:
		res.Ambiguous = true
		res.Message = fmt.Sprintf("%s is ambiguous: %d accounts hold it, so sign-ins with it are refused until only one does", addr, n)
	}
	return res, nil
}

// browseQuery selects entries for the browser.
type browseQuery struct {
	Connector string
	Kind      cache.Kind // 0: any
	Q         string
	Limit     int
	Offset    int
}

type browseResult struct {
	Total   int       `json:"total"`
	Offset  int       `json:"offset"`
	Limit   int       `json:"limit"`
	Entries []account `json:"entries"`
}

const (
	defaultBrowseLimit = 50
	maxBrowseLimit     = 500
)

var errBadKind = errors.New(`kind must be "user" or "group"`)

func parseKind(s string) (cache.Kind, error) {
	switch strings.ToLower(s) {
	case "", "any", "all":
		return 0, nil
	case "user", "users":
		return cache.KindUser, nil
	case "group", "groups":
		return cache.KindGroup, nil
	}
	return 0, errBadKind
}

// matches tells whether e is selected by the substring q (lower-cased):
// against the DN, cn, displayName, mail and the login addresses.
func matches(e *cache.Entry, q string) bool {
	if q == "" || strings.Contains(strings.ToLower(e.DN), q) {
		return true
	}
	for _, a := range e.Addresses {
		if strings.Contains(a, q) {
			return true
		}
	}
	for _, attr := range [...]string{"cn", "mail", "displayName"} {
		for _, v := range e.Values(attr) {
			if strings.Contains(strings.ToLower(v), q) {
				return true
			}
		}
	}
	return false
}

// browse lists the cached entries q selects, sorted by DN, one page.
func (s *server) browse(ctx context.Context, q browseQuery) (*browseResult, error) {
	if q.Limit <= 0 {
		q.Limit = defaultBrowseLimit
	}
	q.Limit = min(q.Limit, maxBrowseLimit)
	q.Offset = max(q.Offset, 0)
	needle := strings.ToLower(strings.TrimSpace(q.Q))
	type hit struct{ conn, id, dnLower string }
	res := &browseResult{Offset: q.Offset, Limit: q.Limit, Entries: []account{}}
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	err = st.View(ctx, func(v *cache.View) error {
		var hits []hit
		err := v.Scan("", func(e *cache.Entry) (bool, error) {
			if (q.Connector == "" || e.Connector == q.Connector) && (q.Kind == 0 || e.Kind == q.Kind) && matches(e, needle) {
				hits = append(hits, hit{e.Connector, e.ID, strings.ToLower(e.DN)})
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		sort.Slice(hits, func(i, j int) bool {
			if hits[i].dnLower != hits[j].dnLower {
				return hits[i].dnLower < hits[j].dnLower
			}
			return hits[i].conn < hits[j].conn
		})
		res.Total = len(hits)
		for _, h := range hits[min(q.Offset, len(hits)):min(q.Offset+q.Limit, len(hits))] {
			e, err := v.Get(h.conn, h.id)
			if err != nil {
				return err
			}
			a := toAccount(e)
			if e.Kind == cache.KindGroup {
				ids, err := v.MemberIDs(e)
				if err != nil {
					return err
				}
				n := len(ids)
				a.Members = &n
			}
			res.Entries = append(res.Entries, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// syncOptions are the knobs of a sync request, from JSON or a form.
type syncOptions struct {
	DryRun bool   `json:"dry_run"`
	Mode   string `json:"mode"`
	Force  bool   `json:"force"`
}

func (o syncOptions) toDirsync(trigger string) (dirsync.Options, error) {
	mode := strings.ToLower(strings.TrimSpace(o.Mode))
	switch mode {
	case "", "auto":
		mode = dirsync.ModeAuto
	case dirsync.ModeFull, dirsync.ModeIncremental:
	default:
		return dirsync.Options{}, fmt.Errorf("mode %q is not one of full, incremental (or leave it out for automatic)", o.Mode)
	}
	return dirsync.Options{DryRun: o.DryRun, Mode: mode, Force: o.Force, Trigger: trigger}, nil
}
