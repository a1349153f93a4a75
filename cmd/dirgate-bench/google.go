package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	googleoauth "golang.org/x/oauth2/google"

	"github.com/dirgate/dirgate/config"
	"github.com/dirgate/dirgate/google"
	"github.com/dirgate/dirgate/internal/fakegoogle"
)

// googleBudget is the bench's requests_per_minute, the highest allowed,
// so that the run measures the client and not the budget.
const googleBudget = 100000

// googleBench adds the Google rows: a full sync against the reference
// reader, a run after cloudChanges changes (users renamed, some groups
// given a member) with the groups the etags spared, and the RSS of a
// server holding the synced account.
func googleBench(rep *report, binary string, users, rounds int) error {
	groups := max(users/100, 1)
	tb := &fakeTB{}
	defer tb.close()
	fc := fakegoogle.New(tb)
	t0 := time.Now()
	userIDs, groupIDs := fc.Generate(users, groups, 1)
	fmt.Printf("google: generated %d users, %d groups in %s\n", users, groups, time.Since(t0).Round(time.Millisecond))
	key, _ := fc.ServiceAccountKey(tb, google.Scopes...)
	domain := fc.Domains()[0]
	// Generate makes the first user an administrator.
	admin := fmt.Sprintf("user%06d@%s", 0, domain)
	keyFile := ""
	b, err := newCloudBench(binary, "gws", func(work string) (string, error) {
		keyFile = filepath.Join(work, "sa.json")
		return fmt.Sprintf(`  - name: gws
    type: google
    google:
      service_account_key_file: %s
      admin: %s
      directory_url: %s
      requests_per_minute: %d
    root_dn: o=%s
    email_domains: [%s]
    timeout: 60s`, keyFile, admin, fc.DirectoryURL(), googleBudget, domain, domain), os.WriteFile(keyFile, key, 0o600)
	})
	if err != nil {
		return err
	}
	defer b.close()
	b.requests = fc.Requests
	b.reference = []string{"-google-read", fc.DirectoryURL(), keyFile, admin}

	// 1. Full sync into a fresh cache, alternating with the reference.
	full, err := b.fullSyncs(rounds)
	if err != nil {
		return err
	}
	syncWall, refWall, fullRatio := full.row()
	rep.add(fmt.Sprintf("Google full sync of %d users, %d groups from the fake Directory API (wall, median of %d; ratio: the median round's, each sync beside its reference read)", users, groups, full.rounds),
		syncWall, refWall+" plain paged read of the same listings", fullRatio, "≤ 1.5×")
	rep.notes = append(rep.notes,
		fmt.Sprintf("Google: the fake Workspace customer (`internal/fakegoogle`, plain HTTP on loopback) serves %d users and %d groups made by `Generate`; "+
			"`requests_per_minute: %d` so that the budget never waits; "+
			"the reference is a client that only fetches a token (JWT-bearer grant) and pages through users, groups and each group's members with dirgate's page sizes and `fields` "+
			"(net/http + encoding/json into minimal structs, nothing stored): %s; `dirgate sync` made %d Directory API requests and said: %s",
			users, groups, googleBudget, full.refOut, full.last.requests, full.last.out))
	rep.notes = append(rep.notes, googleBudgetNote(full.last.requests, full.sync))

	// 1b. Where the full sync's time goes.
	if err := b.dryRun(rep, "Google", full); err != nil {
		return err
	}

	// 2. A run after cloudChanges changes: users renamed, and every tenth
	// change a user added to a group, whose etag then differs; the other
	// groups' member listings are spared by their etags.
	stamp := time.Now().Format("150405.000")
	moved := 0
	for i := range cloudChanges {
		id := userIDs[i*len(userIDs)/cloudChanges]
		if i%10 == 9 {
			g := groupIDs[i*len(groupIDs)/cloudChanges]
			fc.AddMember(g, fakegoogle.Member{ID: id, Type: "USER"})
			moved++
			continue
		}
		u, ok := fc.User(id)
		if !ok {
			return errors.New("google: a generated user is missing")
		}
		u.FamilyName = "Changed " + stamp
		fc.PutUser(u)
	}
	inc, err := b.sync()
	if err != nil {
		return err
	}
	skipped := logAttr(inc.log, "google directory read", "groups_skipped_by_etag")
	rep.add(fmt.Sprintf("Google run after %d changes (%d users renamed, %d groups given a member): wall, Directory API requests, groups skipped by etag",
		cloudChanges, cloudChanges-moved, moved),
		fmt.Sprintf("%s, %d requests, %s of %d groups skipped", inc.wall.Round(time.Millisecond), inc.requests, skipped, groups),
		fmt.Sprintf("%s, %d requests full sync", full.sync.Round(time.Millisecond), full.last.requests), ratio(inc.wall, full.sync), "member listings ∝ changed groups")
	rep.notes = append(rep.notes, fmt.Sprintf("Google run after %d changes: `%s`", cloudChanges, inc.out))

	// 3. Memory of a server holding the synced account.
	return b.serve(rep, "Google", users, full.sync, "o="+domain, domain)
}

// googleBudgetNote says how long a full sync of n requests takes under
// the default budget. The budget lets no minute hold more than its
// requests, so request k (from 0) waits for request k-budget to be a
// minute old: n requests need at least (n-1)/budget whole minutes, and
// never less than the unthrottled run (wall).
func googleBudgetNote(n int, wall time.Duration) string {
	perMin := config.GoogleDefaultRequestsPerMinute
	floor := time.Duration((n-1)/perMin) * time.Minute
	at := max(floor, wall)
	how := "it fits in one minute's budget, so the budget adds no wait"
	if floor > 0 {
		how = fmt.Sprintf("the budget holds it to at least %s", floor)
	}
	return fmt.Sprintf("Google with the default `requests_per_minute: %d`: the full sync's %d Directory API requests take about %s (%s); "+
		"the budget waits only in a run of more than %d requests, a minute for each %d more",
		perMin, n, at.Round(time.Millisecond), how, perMin, perMin)
}

// googlePage is all the reference reader decodes of a Directory API page.
type googlePage struct {
	NextPageToken string `json:"nextPageToken"`
	Users         []struct {
		ID string `json:"id"`
	} `json:"users"`
	Groups []struct {
		ID string `json:"id"`
	} `json:"groups"`
	Members []struct {
		ID string `json:"id"`
	} `json:"members"`
}

// The listings dirgate's google source makes (google/directory.go): page
// sizes and fields.
const (
	googleUserFields   = "nextPageToken,users(id,etag,primaryEmail,name(givenName,familyName,fullName),aliases,nonEditableAliases,suspended,archived,orgUnitPath,isAdmin)"
	googleGroupFields  = "nextPageToken,groups(id,etag,email,name,description,aliases,nonEditableAliases)"
	googleMemberFields = "nextPageToken,members(id,email,type)"
)

// googleRead is the reference: a token by the JWT-bearer grant
// impersonating admin, then every page of the users and groups listings
// and of each group's members, counted and dropped. It prints what it
// read.
func googleRead(directoryURL, keyFile, admin string) error {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	jc, err := googleoauth.JWTConfigFromJSON(key, google.Scopes...)
	if err != nil {
		return err
	}
	jc.Subject = admin
	tok, err := jc.TokenSource(context.Background()).Token()
	if err != nil {
		return err
	}
	base := directoryURL + "/admin/directory/v1/"
	pages := 0
	list := func(path string, size int, fields string, q url.Values, each func(*googlePage)) error {
		q.Set("maxResults", fmt.Sprint(size))
		q.Set("fields", fields)
		for {
			var p googlePage
			if err := getJSON(base+path+"?"+q.Encode(), tok.AccessToken, &p); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			pages++
			each(&p)
			if p.NextPageToken == "" {
				return nil
			}
			q.Set("pageToken", p.NextPageToken)
		}
	}
	var users, members int
	var groups []string
	if err := list("users", 500, googleUserFields, url.Values{"customer": {config.GoogleMyCustomer}}, func(p *googlePage) { users += len(p.Users) }); err != nil {
		return err
	}
	err = list("groups", 200, googleGroupFields, url.Values{"customer": {config.GoogleMyCustomer}}, func(p *googlePage) {
		for _, g := range p.Groups {
			groups = append(groups, g.ID)
		}
	})
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := list("groups/"+url.PathEscape(g)+"/members", 200, googleMemberFields, url.Values{}, func(p *googlePage) { members += len(p.Members) }); err != nil {
			return err
		}
	}
	fmt.Printf("%d users and %d groups with %d members in %d pages\n", users, len(groups), members, pages)
	return nil
}
