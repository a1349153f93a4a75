// Package google is the Google Workspace directory type: a service
// account's credentials with domain-wide delegation, the Admin SDK
// Directory API client (bounded retries of quota refusals, a budget of
// requests per minute), the mapping of users, groups and members to
// cached entries, and the dirsync source built from them.
//
// The Directory API has no delta: every run lists every user and group
// and the engine diffs the listing against the cache by entry hash,
// taking what is missing for deletions (behind its safety rules). A
// group's member list costs at least one request per group, so a group
// whose etag has not changed is not listed again, unless its list is
// older than the connector's full_sync_interval (Google's group etag does
// not promise to change with every membership change). The state that
// takes is the cached group entry, read through the dirsync.Cached the
// engine passes with the context: its etag and membersReadAt attributes,
// and Members listing every USER and GROUP member, in scope or not (its
// served member attribute lists those in scope). The cursor is only a
// version: one that grew with the account could not be stored past a few
// hundred thousand memberships.
//
// Entries are named by their Directory ID, which never changes:
// cn=<id>,ou=users,<root_dn> and cn=<id>,ou=groups,<root_dn>. A group's
// USER and GROUP members are then DNs computed from IDs, nested groups
// included (the cache resolves nesting, loops too); an EXTERNAL member,
// an address outside the account, has no entry and is kept as an
// externalMember value; the CUSTOMER member (every user of the account)
// is kept as customerMember: <customer ID>, not expanded to every user.
package google

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/clock"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
	dirsync "github.com/dirgate/dirgate/sync"
)

// Source reads a Google Workspace account through the Directory API.
type Source struct {
	conn      *config.Connector
	api       *cloudapi.Client
	clk       clock.Clock
	log       *slog.Logger
	addrScope cache.AddressScope
}

// New prepares the source of a google connector; it does not connect.
func New(c *config.Connector, log *slog.Logger, opts ...cloudapi.Option) (*Source, error) {
	o := cloudapi.NewOptions(c.Timeout.Std(), opts...)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Source{conn: c, clk: o.Clock, log: log, api: &cloudapi.Client{
		HTTP: NewTokenCache(&c.Google, o.HTTP, o.Clock).AuthorizedClient(o.HTTP, c.Google.DirectoryURL), Clock: o.Clock, Log: log,
		Budget:    newBudget(o.Clock, cmp.Or(c.Google.RequestsPerMinute, config.GoogleDefaultRequestsPerMinute)).wait,
		Retryable: retryable,
	}}
	s.addrScope = cache.NewAddressScope(c.EmailDomains)
	return s, nil
}

// Full lists the whole account with no earlier state.
func (s *Source) Full(ctx context.Context, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	return s.FullAfter(ctx, nil, emit)
}

// FullAfter lists the whole account, reusing the member lists of the
// groups whose etag is the one their cached entry holds, read through the
// dirsync.Cached passed with ctx when prior (the last committed cursor)
// is of this version.
//
// Users are emitted as their pages come, through a cloudapi.Pipe, so that
// the engine writes them while the groups and their members are listed;
// the groups follow once every member list is read (a group's served
// members are the users in scope and the groups listed).
func (s *Source) FullAfter(ctx context.Context, prior []byte, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	host := s.host()
	err := cloudapi.Piped(ctx, emit, func(ctx context.Context, out *cloudapi.Pipe) error {
		return s.fullAfter(ctx, prior, out)
	})
	if err != nil {
		return dirsync.Listing{Host: host}, err
	}
	b, err := encodeCursor()
	return dirsync.Listing{Host: host, Cursor: b}, err
}

func (s *Source) fullAfter(ctx context.Context, prior []byte, out *cloudapi.Pipe) error {
	r := run{states: map[string]*groupState{}, inScope: map[string]bool{}, out: out}
	if priorUsable(prior) {
		r.cached = dirsync.CachedFrom(ctx)
	}
	if err := s.read(ctx, &r); err != nil {
		return fmt.Errorf("connector %s: %w", s.conn.Name, err)
	}
	s.log.Info("google directory read", "connector", s.conn.Name, "users", r.users, "groups", len(r.groups),
		"groups_skipped_by_etag", r.skipped, "duplicates_skipped", r.userDuplicates+r.groupDuplicates)
	groups := make(map[string]bool, len(r.groups))
	for _, g := range r.groups {
		groups[g.ID] = true
	}
	for _, g := range r.groups {
		if err := out.Send(s.groupEntry(g, r.states[g.ID], r.inScope, groups)); err != nil {
			return err
		}
	}
	return nil
}

// run is what one listing read.
type run struct {
	cached dirsync.Cached // the last committed run's groups; nil: none usable
	out    *cloudapi.Pipe // where user entries go as they are listed
	// Written by the users listing.
	inScope        map[string]bool
	users          int // listed, in scope or not
	userDuplicates int // users listed twice (the listing moved between pages)
	// Written by the groups listing.
	states          map[string]*groupState
	groups          []*group
	skipped         int // groups whose members the etag spared
	groupDuplicates int
}

// memberListings is how many groups' member lists are read at once. Each
// is a request or more, and one after the other they added up to most
// of a run's requests' wait; the budget meters them together all the
// same.
const memberListings = 4

// read lists the users, and beside them the groups and their members.
// The groups start once the first users page has come: a refusal no
// retry cures (delegation, scope, quota) then costs one request, not
// one per listing.
func (s *Source) read(ctx context.Context, r *run) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := &firstError{cancel: cancel}
	var groups sync.WaitGroup
	startGroups := sync.OnceFunc(func() {
		groups.Go(func() { first.set(s.readGroups(ctx, r)) })
	})
	seen := map[string]bool{}
	err := s.list(ctx, s.listURL("users", s.scope(usersPageSize, userFields)), func(p *page) error {
		startGroups()
		for i := range p.Users {
			u := &p.Users[i]
			if seen[u.ID] {
				r.userDuplicates++
				continue
			}
			seen[u.ID] = true
			r.users++
			if e := s.userEntry(u); e != nil {
				r.inScope[u.ID] = true
				if err := r.out.Send(e); err != nil {
					return err
				}
			}
		}
		return r.out.Flush()
	})
	first.set(err)
	if err == nil {
		startGroups() // a listing always has a page; this is for one that had none
	}
	groups.Wait()
	return first.get()
}

// readGroups lists the groups, then fills r.states with every group's
// members, memberListings groups at a time.
func (s *Source) readGroups(ctx context.Context, r *run) error {
	seen := map[string]bool{}
	err := s.list(ctx, s.listURL("groups", s.scope(groupsPageSize, groupFields)), func(p *page) error {
		for i := range p.Groups {
			g := &p.Groups[i]
			if seen[g.ID] {
				r.groupDuplicates++
				continue
			}
			seen[g.ID] = true
			r.groups = append(r.groups, g)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := &firstError{cancel: cancel}
	var mu sync.Mutex // guards r.states while the listings run
	todo := make(chan *group)
	var listings sync.WaitGroup
	for range memberListings {
		listings.Go(func() {
			for g := range todo {
				st, err := s.members(ctx, g)
				if err != nil {
					first.set(err)
					continue // take the rest off todo, which then ends
				}
				mu.Lock()
				r.states[g.ID] = st
				mu.Unlock()
			}
		})
	}
	first.set(s.spareOrList(ctx, r, todo, &mu))
	close(todo)
	listings.Wait()
	return first.get()
}

// spareOrList takes each group's members from its cached state when
// spared reports so, and hands the others to todo.
func (s *Source) spareOrList(ctx context.Context, r *run, todo chan<- *group, mu *sync.Mutex) error {
	for _, g := range r.groups {
		prev, err := s.priorState(ctx, r.cached, g.ID)
		if err != nil {
			return err
		}
		if s.spared(g, prev) {
			r.skipped++
			mu.Lock()
			r.states[g.ID] = prev
			mu.Unlock()
			continue
		}
		select {
		case todo <- g:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// spared reports whether prev, g's cached state, holds g's members: g's
// etag is prev's and prev's list is recent enough.
func (s *Source) spared(g *group, prev *groupState) bool {
	return prev != nil && g.Etag != "" && prev.Etag == g.Etag && s.now().Sub(prev.ReadAt) < s.conn.FullSyncInterval.Std()
}

// now is the time as membersReadAt keeps it.
func (s *Source) now() time.Time { return s.clk.Now().UTC().Truncate(time.Second) }

// members lists g's members.
func (s *Source) members(ctx context.Context, g *group) (*groupState, error) {
	st := &groupState{Etag: g.Etag, ReadAt: s.now()}
	seen := map[member]bool{}
	u := s.listURL("groups/"+url.PathEscape(g.ID)+"/members", url.Values{"maxResults": {fmt.Sprint(membersPageSize)}, "fields": {memberFields}})
	err := s.list(ctx, u, func(p *page) error {
		for _, m := range p.Members {
			if !seen[m] {
				seen[m] = true
				st.Members = append(st.Members, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("members of group %s: %w", g.Email, err)
	}
	return st, nil
}

// firstError keeps the first error of goroutines working together and
// then cancels their context, so that the others stop; the errors their
// cancellation causes come later and are dropped.
type firstError struct {
	mu     sync.Mutex
	err    error
	cancel context.CancelFunc
}

func (f *firstError) set(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		f.cancel()
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (s *Source) host() string {
	if u, err := url.Parse(s.conn.Google.DirectoryURL); err == nil {
		return u.Host
	}
	return s.conn.Google.DirectoryURL
}

// dn names an object of kind ("users" or "groups") by its ID.
func (s *Source) dn(kind, id string) string {
	return "cn=" + ldap.EscapeDN(id) + ",ou=" + kind + "," + s.conn.RootDN
}

// inOrgUnits reports whether path is one of the org units synced or
// beneath one.
func inOrgUnits(path string, units []string) bool {
	return len(units) == 0 || slices.ContainsFunc(units, func(u string) bool {
		return u == "/" || path == u || len(path) > len(u) && path[:len(u)] == u && path[len(u)] == '/'
	})
}
