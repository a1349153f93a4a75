// Package entra is the Microsoft Entra ID directory type: app-only
// credentials (client secret or certificate assertion), the Microsoft
// Graph delta client, the mapping of Graph users and groups to cached
// entries, and the dirsync source built from them. aadsts.go decodes the
// token endpoint's refusals; ropc.go checks passwords.
//
// Entries are named by their Graph object ID, which never changes:
// cn=<id>,ou=users,<root_dn> and cn=<id>,ou=groups,<root_dn>. A group's
// members are then DNs computed from the IDs Graph lists, without a lookup,
// and renaming a user (a new userPrincipalName or display name) never
// renames its entry. Readable names are attributes: uid and
// userPrincipalName hold the UPN, cn and displayName the display name.
//
// The cursor holds both delta links, stored as Graph gave them. What an
// incremental round needs but Graph does not repeat, a group's full member
// list (members@delta reports only the members added and removed), is the
// cached group entry: its Members list every user and group Graph lists,
// in scope or not (a soft-deleted user's memberships come back with a
// restore), while its served member attribute lists only the entries
// served. A cursor that grew with the tenant could not be stored past a
// few million memberships.
package entra

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/internal/readahead"
	dirsync "github.com/dirgate/dirgate/sync"
)

// Source reads an Entra ID tenant through Graph delta queries.
type Source struct {
	conn      *config.Connector
	api       *cloudapi.Client
	log       *slog.Logger
	addrScope cache.AddressScope
}

// New prepares the source of an entra connector; it does not connect.
func New(c *config.Connector, log *slog.Logger, opts ...cloudapi.Option) (*Source, error) {
	o := cloudapi.NewOptions(c.Timeout.Std(), opts...)
	ts, err := NewTokenSource(&c.Entra, o.HTTP, o.Clock)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", c.Name, err)
	}
	s := &Source{conn: c, log: log, api: &cloudapi.Client{
		HTTP: ts.AuthorizedClient(o.HTTP), Clock: o.Clock, Log: log,
		// Background sync yields to interactive Graph traffic.
		Header: http.Header{"X-Ms-Throttle-Priority": {"low"}},
	}}
	s.addrScope = cache.NewAddressScope(c.EmailDomains)
	return s, nil
}

// cursor is the stored position of an entra connector: the two delta
// links and nothing that grows with the tenant. Version 1 also held every
// group's properties and members; it is refused (a full round follows),
// as the groups cached under it lack the members hidden from them.
type cursor struct {
	Version int    `json:"v"`
	Users   string `json:"users"`  // deltaLink of /users/delta
	Groups  string `json:"groups"` // deltaLink of /groups/delta
}

const cursorVersion = 2

// groupState is a group as a round knows it: its properties and every
// member Graph lists, as id → @odata.type, in scope or not.
type groupState struct {
	Object  object
	members map[string]string
}

// Full reads the whole tenant: a delta round of users, then of groups,
// each from the start, whose deltaLinks become the cursor. The users are
// final once their round has ended (the groups round changes groups
// only), so they are mapped and go to the engine while the groups are
// read. They are kept as read until then: the mapped entries, several
// times larger, made the garbage collector's work grow with the tenant.
func (s *Source) Full(ctx context.Context, emit func(*cache.Entry) error) (dirsync.Listing, error) {
	r := s.newRound(nil)
	usersLink, groupsLink := DeltaQueries(s.conn.Entra.GraphURL)
	var cur []byte
	err := cloudapi.Piped(ctx, emit, func(ctx context.Context, out *cloudapi.Pipe) error {
		if err := r.readUsers(ctx, usersLink); err != nil {
			return err
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sent := make(chan error, 1)
		go func() { sent <- s.sendUsers(ctx, out, r.users) }()
		err := r.readGroups(ctx, groupsLink)
		if err != nil {
			cancel()
		}
		if serr := <-sent; err == nil {
			err = serr
		}
		if err != nil {
			return err
		}
		inScope := r.userScope(nil)
		for _, id := range sortedKeys(r.groups) {
			if err := out.Send(s.groupEntry(r.groups[id], inScope)); err != nil {
				return err
			}
		}
		cur, err = r.cur.encode()
		return err
	})
	if err != nil {
		return dirsync.Listing{}, err
	}
	return dirsync.Listing{Host: s.host(), Cursor: cur}, nil
}

// sendUsers maps the users in scope and passes them to out, by ID, until
// ctx ends. Each is encoded here, beside the engine's goroutine, rather
// than on its write path.
func (s *Source) sendUsers(ctx context.Context, out *cloudapi.Pipe, users map[string]*object) error {
	for _, id := range sortedKeys(users) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e := s.userEntry(users[id]); e != nil {
			e.Hash()
			if err := out.Send(e); err != nil {
				return err
			}
		}
	}
	return out.Flush() // the groups are the rest of a round away
}

// Changes reads what changed since the cursor's delta links. A group's
// members before the round are those of its cached entry, which lists
// every member Graph reported (the served member attribute only those in
// scope), read through the dirsync.Cached the engine passes with ctx;
// without one the round cannot start and a full one is needed.
func (s *Source) Changes(ctx context.Context, raw []byte, known dirsync.Known, emit func(dirsync.Change) error) (dirsync.ChangeSet, error) {
	cur, err := decodeCursor(raw, s.conn.Entra.GraphURL)
	if err != nil {
		return dirsync.ChangeSet{}, err
	}
	cached := dirsync.CachedFrom(ctx)
	if cached == nil {
		return dirsync.ChangeSet{}, fmt.Errorf("connector %s: no cached groups to apply members@delta to: %w", s.conn.Name, dirsync.ErrCursorInvalid)
	}
	r := s.newRound(cached)
	if err := r.read(ctx, cur.Users, cur.Groups); err != nil {
		return dirsync.ChangeSet{Host: s.host(), Read: r.count}, err
	}
	inScope := r.userScope(known)
	// A user entering or leaving scope enters or leaves its groups.
	for _, id := range sortedKeys(r.users) {
		if s.inScope(r.users[id]) != known.Has(id) {
			if err := r.touchGroupsOf(ctx, id, "users"); err != nil {
				return dirsync.ChangeSet{Host: s.host(), Read: r.count}, err
			}
		}
	}
	for _, id := range sortedKeys(r.users) {
		ch := dirsync.Change{Upsert: s.userEntry(r.users[id])}
		if ch.Upsert == nil {
			ch = dirsync.Change{DeleteID: id} // now out of scope
		}
		if err := emit(ch); err != nil {
			return dirsync.ChangeSet{}, err
		}
	}
	for _, id := range sortedKeys(r.goneUsers) {
		if err := emit(dirsync.Change{DeleteID: id}); err != nil {
			return dirsync.ChangeSet{}, err
		}
	}
	for _, id := range sortedKeys(r.groups) {
		if err := emit(dirsync.Change{Upsert: s.groupEntry(r.groups[id], inScope)}); err != nil {
			return dirsync.ChangeSet{}, err
		}
	}
	for _, id := range sortedKeys(r.goneGroups) {
		if err := emit(dirsync.Change{DeleteID: id}); err != nil {
			return dirsync.ChangeSet{}, err
		}
	}
	b, err := r.cur.encode()
	return dirsync.ChangeSet{Host: s.host(), Cursor: b, Read: r.count, Method: "graph delta"}, err
}

// round is one delta round over users and groups. groups holds the groups
// to emit: in a full round every group, in an incremental one those the
// round changed, loaded from the cache before the first change.
type round struct {
	s          *Source
	cached     dirsync.Cached // nil in a full round
	cur        cursor
	users      map[string]*object // users read, last version wins
	goneUsers  map[string]bool
	purged     map[string]bool // gone users deleted for good, not soft-deleted
	groups     map[string]*groupState
	goneGroups map[string]bool
	count      int
}

func (s *Source) newRound(cached dirsync.Cached) *round {
	return &round{s: s, cached: cached, cur: cursor{Version: cursorVersion}, users: map[string]*object{},
		goneUsers: map[string]bool{}, purged: map[string]bool{}, groups: map[string]*groupState{}, goneGroups: map[string]bool{}}
}

func (r *round) read(ctx context.Context, usersLink, groupsLink string) error {
	if err := r.readUsers(ctx, usersLink); err != nil {
		return err
	}
	return r.readGroups(ctx, groupsLink)
}

func (r *round) readUsers(ctx context.Context, link string) error {
	var err error
	r.cur.Users, err = r.s.follow(ctx, link, r.user)
	return err
}

// readGroups reads the groups round, then drops from the groups the
// users and groups both rounds removed.
func (r *round) readGroups(ctx context.Context, link string) error {
	var err error
	if r.cur.Groups, err = r.s.follow(ctx, link, func(o *object) error { return r.group(ctx, o) }); err != nil {
		return err
	}
	for _, id := range sortedKeys(r.goneUsers) {
		// A soft-deleted user's memberships come back with a restore, which
		// groups/delta does not report: keep them, hidden by userScope.
		if r.purged[id] {
			err = r.dropMember(ctx, id, "users")
		} else {
			err = r.touchGroupsOf(ctx, id, "users")
		}
		if err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(r.goneGroups) {
		if err := r.dropMember(ctx, id, "groups"); err != nil {
			return err
		}
	}
	return nil
}

func (r *round) user(o *object) error {
	r.count++
	if o.Removed != nil {
		delete(r.users, o.ID)
		r.goneUsers[o.ID] = true
		r.purged[o.ID] = o.Removed.Reason == removedDeleted
		return nil
	}
	delete(r.goneUsers, o.ID) // restored within the round
	delete(r.purged, o.ID)
	r.users[o.ID] = o
	return nil
}

func (r *round) group(ctx context.Context, o *object) error {
	r.count++
	if o.Removed != nil {
		delete(r.groups, o.ID)
		r.goneGroups[o.ID] = true
		return nil
	}
	delete(r.goneGroups, o.ID)
	g, err := r.load(ctx, o.ID)
	if err != nil {
		return err
	}
	// A large group comes in slices on several pages: merge them. The
	// properties are the same on each slice; keep the last.
	g.Object = *o
	g.Object.MembersDelta = nil
	for _, m := range o.MembersDelta {
		switch {
		case m.Type != memberUser && m.Type != memberGroup:
		case m.Removed != nil:
			delete(g.members, m.ID)
		default:
			g.members[m.ID] = m.Type
		}
	}
	return nil
}

// load returns the round's state of group id, marking the group for
// emitting: in an incremental round, first the cached group's; nil when
// the group is neither read nor cached.
func (r *round) load(ctx context.Context, id string) (*groupState, error) {
	if g := r.groups[id]; g != nil {
		return g, nil
	}
	g := &groupState{Object: object{ID: id}, members: map[string]string{}}
	if r.cached != nil {
		e, err := r.cached.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("connector %s: read cached group %s: %w", r.s.conn.Name, id, err)
		}
		if e != nil {
			g = r.s.stateOf(e)
		}
	}
	r.groups[id] = g
	return g, nil
}

// touchGroupsOf marks the groups listing the object id of kind ("users"
// or "groups") for emitting.
func (r *round) touchGroupsOf(ctx context.Context, id, kind string) error {
	_, err := r.groupsOf(ctx, id, kind)
	return err
}

// groupsOf loads the groups listing the object id of kind: those this
// round changed, and the cached ones.
func (r *round) groupsOf(ctx context.Context, id, kind string) ([]*groupState, error) {
	var out []*groupState
	for _, gid := range sortedKeys(r.groups) {
		if _, ok := r.groups[gid].members[id]; ok {
			out = append(out, r.groups[gid])
		}
	}
	if r.cached == nil {
		return out, nil
	}
	ids, err := r.cached.GroupsListing(ctx, r.s.dn(kind, id))
	if err != nil {
		return nil, fmt.Errorf("connector %s: read the cached groups of %s: %w", r.s.conn.Name, id, err)
	}
	for _, gid := range ids {
		if r.goneGroups[gid] || r.groups[gid] != nil {
			continue // gone, or counted above unless this round removed id
		}
		g, err := r.load(ctx, gid)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// dropMember removes a deleted object from every group at once: Graph
// does not always report the implicit removals in groups/delta.
func (r *round) dropMember(ctx context.Context, id, kind string) error {
	gs, err := r.groupsOf(ctx, id, kind)
	for _, g := range gs {
		delete(g.members, id)
	}
	return err
}

// userScope returns whether a user ID names an entry served: one read in
// scope in this round, or cached (known) and neither deleted nor out of
// scope now. A full round (known nil) knows every user.
func (r *round) userScope(known dirsync.Known) func(string) bool {
	return func(id string) bool {
		if o, ok := r.users[id]; ok {
			return r.s.inScope(o)
		}
		return known != nil && known.Has(id) && !r.goneUsers[id]
	}
}

// follow reads a delta round from link: every page, following nextLink
// verbatim (empty pages included) until the deltaLink, which it returns.
// A throttled page is re-requested by cloudapi with the same link; an
// expired or reset delta token is ErrCursorInvalid. The next page is
// requested and decoded while fn takes the objects of the last one, in
// their order.
func (s *Source) follow(ctx context.Context, link string, fn func(*object) error) (string, error) {
	var deltaLink string
	err := readahead.Run(ctx, 1, func(ctx context.Context, yield func(*page) error) error {
		return s.fetch(ctx, link, yield)
	}, func(p *page) error {
		for i := range p.Value {
			if err := fn(&p.Value[i]); err != nil {
				return err
			}
		}
		deltaLink = p.DeltaLink
		return nil
	})
	if err != nil {
		return "", err
	}
	return deltaLink, nil
}

// fetch passes the pages of a round from link to yield, up to the
// deltaLink's page.
func (s *Source) fetch(ctx context.Context, link string, yield func(*page) error) error {
	size := 0
	for pages := 0; ; pages++ {
		p, err := s.getPage(ctx, link, pages, size)
		if err != nil {
			return err
		}
		if err := yield(p); err != nil || p.DeltaLink != "" {
			return err
		}
		link, size = p.NextLink, len(p.Value)
	}
}

// getPage gets and decodes the page of a round at link, the pages-th,
// expected to hold about size objects.
func (s *Source) getPage(ctx context.Context, link string, pages, size int) (*page, error) {
	if pages > maxPages {
		return nil, fmt.Errorf("connector %s: more than %d pages in one delta round; Graph keeps sending nextLinks", s.conn.Name, maxPages)
	}
	if err := checkLink(link, s.conn.Entra.GraphURL); err != nil {
		return nil, fmt.Errorf("connector %s: %w", s.conn.Name, err)
	}
	body, err := s.api.Get(ctx, link)
	if err != nil {
		return nil, s.graphError(err)
	}
	p, err := decodePage(body, size)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %s: Graph sent a page dirgate cannot read, nothing was applied: %w", s.conn.Name, cloudapi.PathOf(link), err)
	}
	return p, nil
}

// maxPages bounds one round against a server that never ends it.
const maxPages = 1 << 20

func (s *Source) graphError(err error) error {
	var he *cloudapi.HTTPError
	if errors.As(err, &he) {
		switch {
		case he.Status == http.StatusGone:
			return fmt.Errorf("connector %s: Graph reset its sync state (410 Gone): %w", s.conn.Name, dirsync.ErrCursorInvalid)
		case strings.EqualFold(he.Code, "syncStateNotFound"), strings.EqualFold(he.Code, "resyncRequired"):
			return fmt.Errorf("connector %s: the delta token expired (%s): %w", s.conn.Name, he.Code, dirsync.ErrCursorInvalid)
		case he.Status == http.StatusForbidden:
			return fmt.Errorf("connector %s: Graph refused access (%w); grant the app the application permissions User.Read.All and GroupMember.Read.All (or Directory.Read.All) with admin consent", s.conn.Name, err)
		}
	}
	return fmt.Errorf("connector %s: %w", s.conn.Name, err)
}

func (s *Source) host() string {
	if u, err := url.Parse(s.conn.Entra.GraphURL); err == nil {
		return u.Host
	}
	return s.conn.Entra.GraphURL
}

// decodeCursor reads a stored cursor, whose delta links must be on
// graphURL's scheme and host: one left by another graph_url is invalid.
func decodeCursor(raw []byte, graphURL string) (*cursor, error) {
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Version != cursorVersion || c.Users == "" || c.Groups == "" {
		return nil, fmt.Errorf("not an entra cursor of version %d: %w", cursorVersion, dirsync.ErrCursorInvalid)
	}
	for _, link := range []string{c.Users, c.Groups} {
		if err := checkLink(link, graphURL); err != nil {
			return nil, fmt.Errorf("the entra cursor's delta link is not on graph_url's host (%w): %w", err, dirsync.ErrCursorInvalid)
		}
	}
	return &c, nil
}

func (c *cursor) encode() ([]byte, error) { return json.Marshal(c) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
