package google

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/dirgate/dirgate/cloudapi"
	"github.com/dirgate/dirgate/internal/readahead"
)

// Page sizes: the Directory API's largest.
const (
	usersPageSize   = 500
	groupsPageSize  = 200
	membersPageSize = 200
)

// fields trim the answers to what the mapping reads (partial responses):
// a member's role and status are not served, so they are not asked for.
const (
	userFields   = "nextPageToken,users(id,etag,primaryEmail,name(givenName,familyName,fullName),aliases,nonEditableAliases,suspended,archived,orgUnitPath,isAdmin)"
	groupFields  = "nextPageToken,groups(id,etag,email,name,description,aliases,nonEditableAliases)"
	memberFields = "nextPageToken,members(id,email,type)"
)

// page is one page of users.list, groups.list or members.list; the list
// is absent on an empty page.
type page struct {
	NextPageToken string   `json:"nextPageToken"`
	Users         []user   `json:"users"`
	Groups        []group  `json:"groups"`
	Members       []member `json:"members"`
}

type user struct {
	ID           string `json:"id"`
	Etag         string `json:"etag"`
	PrimaryEmail string `json:"primaryEmail"`
	Name         struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
		FullName   string `json:"fullName"`
	} `json:"name"`
	Aliases            []string `json:"aliases"`
	NonEditableAliases []string `json:"nonEditableAliases"`
	Suspended          bool     `json:"suspended"`
	Archived           bool     `json:"archived"`
	OrgUnitPath        string   `json:"orgUnitPath"`
	IsAdmin            bool     `json:"isAdmin"`
}

type group struct {
	ID                 string   `json:"id"`
	Etag               string   `json:"etag"`
	Email              string   `json:"email"`
	Name               string   `json:"name"`
	Description        string   `json:"description"`
	Aliases            []string `json:"aliases"`
	NonEditableAliases []string `json:"nonEditableAliases"`
}

// member is one member of a group. ID is empty for an EXTERNAL member
// (an address outside the account) and is the customer's ID for the
// CUSTOMER pseudo-member (every user of the account).
type member struct {
	ID    string `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
	Type  string `json:"type"`
}

// Member types of members.list.
const (
	memberUser     = "USER"
	memberGroup    = "GROUP"
	memberExternal = "EXTERNAL"
	memberCustomer = "CUSTOMER"
)

// errPage marks a page that is valid JSON but not a Directory API page.
var errPage = errors.New("not a Directory API page")

// decodePage reads one page and checks what the mapping relies on: an id
// on every user, group and member but an external one, a primaryEmail on
// every user, an email on every group and external member, a known
// member type.
func decodePage(body []byte) (*page, error) {
	p := new(page)
	if err := jsonv1.Unmarshal(body, p); err != nil {
		return nil, err
	}
	for i := range p.Users {
		u := &p.Users[i]
		if u.ID = strings.TrimSpace(u.ID); u.ID == "" || u.PrimaryEmail == "" {
			return nil, fmt.Errorf("%w: users[%d] has no id or primaryEmail", errPage, i)
		}
	}
	for i := range p.Groups {
		g := &p.Groups[i]
		if g.ID = strings.TrimSpace(g.ID); g.ID == "" || g.Email == "" {
			return nil, fmt.Errorf("%w: groups[%d] has no id or email", errPage, i)
		}
	}
	for i := range p.Members {
		m := &p.Members[i]
		m.ID = strings.TrimSpace(m.ID)
		switch m.Type {
		case memberUser, memberGroup, memberCustomer:
			if m.ID == "" {
				return nil, fmt.Errorf("%w: members[%d] (%s) has no id", errPage, i, m.Type)
			}
		case memberExternal:
			if m.Email == "" {
				return nil, fmt.Errorf("%w: members[%d] (EXTERNAL) has no email", errPage, i)
			}
		default:
			return nil, fmt.Errorf("%w: members[%d] has the unknown type %q", errPage, i, m.Type)
		}
	}
	return p, nil
}

// maxPages bounds one listing against a server that never ends it.
const maxPages = 1 << 20

// list reads every page of the listing at u (a URL with its query),
// adding pageToken until a page has none; fn's error ends the listing.
// The next page is requested while fn takes the one before: a page's
// request and its mapping no longer add up, and neither does fn's Send
// wait for the engine.
func (s *Source) list(ctx context.Context, u *url.URL, fn func(*page) error) error {
	return readahead.Run(ctx, 0, func(ctx context.Context, yield func(*page) error) error {
		return s.readPages(ctx, u, yield)
	}, fn)
}

// readPages reads the pages of the listing at u one after the other and
// passes each to fn.
func (s *Source) readPages(ctx context.Context, u *url.URL, fn func(*page) error) error {
	q := u.Query()
	seen := map[string]bool{}
	for pages := 0; ; pages++ {
		if pages > maxPages {
			return fmt.Errorf("%s: more than %d pages; the Directory API keeps sending page tokens", u.Path, maxPages)
		}
		u.RawQuery = q.Encode()
		body, err := s.api.Get(ctx, u.String())
		if err != nil {
			return s.directoryError(err)
		}
		p, err := decodePage(body)
		if err != nil {
			return fmt.Errorf("%s: the Directory API sent a page dirgate cannot read, nothing was applied: %w", u.Path, err)
		}
		if err := fn(p); err != nil {
			return err
		}
		if p.NextPageToken == "" {
			return nil
		}
		if seen[p.NextPageToken] {
			return fmt.Errorf("%s: the Directory API sent the same page token twice", u.Path)
		}
		seen[p.NextPageToken] = true
		q.Set("pageToken", p.NextPageToken)
	}
}

// listURL is the first page of a listing below the Directory API's base.
func (s *Source) listURL(path string, q url.Values) *url.URL {
	u, _ := url.Parse(s.conn.Google.DirectoryURL + "/admin/directory/v1/" + path) // the base was validated
	u.RawQuery = q.Encode()
	return u
}

// scope selects the account or domain listed.
func (s *Source) scope(pageSize int, fields string) url.Values {
	g := &s.conn.Google
	q := url.Values{"maxResults": {fmt.Sprint(pageSize)}, "fields": {fields}}
	if g.Domain != "" {
		q.Set("domain", g.Domain)
	} else {
		q.Set("customer", g.Customer)
	}
	return q
}

// retryable marks Google's quota refusals, which come as 403 with a
// reason, and its 500 backendError, as worth another try; cloudapi
// retries 429, 502, 503 and 504 by itself.
func retryable(he *cloudapi.HTTPError) bool {
	switch strings.ToLower(he.Code) {
	case "userratelimitexceeded", "ratelimitexceeded", "quotaexceeded", "backenderror":
		return true
	}
	return he.Status == 500
}

func (s *Source) directoryError(err error) error {
	var he *cloudapi.HTTPError
	if errors.As(err, &he) {
		if fix := DirectoryFix(he, s.conn.Google.Admin); fix != "" {
			return fmt.Errorf("%w; %s", err, fix)
		}
	}
	return err
}
