package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/internal/fakeentra"
)

const (
	entraClientID = "00000000-0000-4000-8000-0000000000be"
	entraSecret   = "bench-entra-secret"
	// entraPageSize is the objects per delta page. Graph chooses its own
	// page size; 200 is in the range it is seen to send.
	entraPageSize = 200
)

// entraBench adds the Entra rows: full sync against the reference reader,
// a delta round after cloudChanges changed users, and the RSS of a server
// holding the synced tenant.
func entraBench(rep *report, binary string, users, rounds int) error {
	groups := max(users/100, 1)
	tb := &fakeTB{}
	defer tb.close()
	ft := fakeentra.New(tb, fakeentra.WithPageSize(entraPageSize))
	ft.AddApp(fakeentra.App{ClientID: entraClientID, Secret: entraSecret, Roles: []string{"User.Read.All", "GroupMember.Read.All"}})
	t0 := time.Now()
	userIDs, _ := ft.Generate(users, groups, 1)
	fmt.Printf("entra: generated %d users, %d groups in %s\n", users, groups, time.Since(t0).Round(time.Millisecond))

	b, err := newCloudBench(binary, "m365", func(string) (string, error) {
		return fmt.Sprintf(`  - name: m365
    type: entra
    entra:
      tenant: %s
      client_id: %s
      client_secret_env: DIRGATE_BENCH_ENTRA_SECRET
      authority_url: %s
      graph_url: %s
    timeout: 60s`, ft.ID(), entraClientID, ft.AuthorityURL(), ft.GraphURL()), nil
	})
	if err != nil {
		return err
	}
	defer b.close()
	os.Setenv("DIRGATE_BENCH_ENTRA_SECRET", entraSecret)
	b.requests = ft.Requests
	b.reference = []string{"-entra-read", ft.GraphURL(), ft.AuthorityURL() + "/" + ft.ID() + "/oauth2/v2.0/token", entraClientID, entraSecret}

	// 1. Full sync into a fresh cache, alternating with the reference.
	full, err := b.fullSyncs(rounds)
	if err != nil {
		return err
	}
	syncWall, refWall, fullRatio := full.row()
	rep.add(fmt.Sprintf("Entra full sync of %d users, %d groups from the fake Graph (wall, median of %d; ratio: the median round's, each sync beside its reference read)", users, groups, full.rounds),
		syncWall, refWall+" plain paged read of the same delta rounds", fullRatio, "≤ 1.5×")
	rep.notes = append(rep.notes,
		fmt.Sprintf("Entra: the fake Microsoft cloud (`internal/fakeentra`, %d objects a page, plain HTTP on loopback) serves a tenant of %d users and %d groups made by `Generate`; "+
			"the reference is a client that only fetches a token and pages through users/delta and groups/delta with dirgate's `$select` (net/http + encoding/json into minimal structs, nothing stored): %s; "+
			"`dirgate sync` made %d Graph requests and said: %s", entraPageSize, users, groups, full.refOut, full.last.requests, full.last.out))

	// 1b. Where the full sync's time goes.
	if err := b.dryRun(rep, "Entra", full); err != nil {
		return err
	}

	// 2. Delta rounds after changes to users spread over the tenant: the
	// measured one, then ten times as many changes to show the requests
	// grow with the changes, not with the tenant.
	deltaRound := func(n int) (syncRun, error) {
		stamp := time.Now().Format(time.RFC3339Nano)
		for i := range n {
			u, ok := ft.User(userIDs[i*len(userIDs)/n])
			if !ok {
				return syncRun{}, errors.New("entra: a generated user is missing")
			}
			u.DisplayName = "Changed " + stamp
			ft.PutUser(u)
		}
		return b.sync()
	}
	inc, err := deltaRound(cloudChanges)
	if err != nil {
		return err
	}
	rep.add(fmt.Sprintf("Entra delta round after %d changed users (wall, whole CLI run; Graph requests)", cloudChanges),
		fmt.Sprintf("%s, %d requests", inc.wall.Round(time.Millisecond), inc.requests),
		fmt.Sprintf("%s, %d requests full sync", full.sync.Round(time.Millisecond), full.last.requests), ratio(inc.wall, full.sync), "< 1 s, requests ∝ changes")

	// 3. Memory of a server holding the synced tenant, stopped before the
	// next sync: the cache admits one process at a time.
	if err := b.serve(rep, "Entra", users, full.sync, "o="+ft.ID(), ft.Domain()); err != nil {
		return err
	}

	// 4. Ten times as many changes, for the notes: the delta round's
	// requests grow with the changes, and a change set too large for one
	// cache transaction shows as the engine's fallback to a full sync.
	more := min(10*cloudChanges, len(userIDs))
	inc10, err := deltaRound(more)
	if err != nil {
		return err
	}
	rep.notes = append(rep.notes, fmt.Sprintf("Entra delta round: `%s`; after %d changed users: %s, %d Graph requests (`%s`)",
		inc.out, more, inc10.wall.Round(time.Millisecond), inc10.requests, inc10.out))
	return nil
}

// refPage is all the reference reader decodes of a delta page.
type refPage struct {
	NextLink  string `json:"@odata.nextLink"`
	DeltaLink string `json:"@odata.deltaLink"`
	Value     []struct {
		ID      string `json:"id"`
		Members []struct {
			ID string `json:"id"`
		} `json:"members@delta"`
	} `json:"value"`
}

// entraRead is the reference: a token by client credentials, then every
// page of the users and groups delta rounds dirgate makes, counted and
// dropped. It prints what it read.
func entraRead(graphURL, tokenURL, clientID, secret string) error {
	resp, err := http.PostForm(tokenURL, url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"}})
	if err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		return fmt.Errorf("token endpoint %s: %v", resp.Status, err)
	}
	usersLink, groupsLink := entra.DeltaQueries(graphURL)
	var counts [2]struct{ objects, members, pages int }
	for i, link := range []string{usersLink, groupsLink} {
		for link != "" {
			var p refPage
			if err := getJSON(link, tok.AccessToken, &p); err != nil {
				return err
			}
			counts[i].pages++
			counts[i].objects += len(p.Value)
			for _, v := range p.Value {
				counts[i].members += len(v.Members)
			}
			link = p.NextLink
		}
	}
	fmt.Printf("%d user and %d group objects with %d member references in %d pages\n",
		counts[0].objects, counts[1].objects, counts[1].members, counts[0].pages+counts[1].pages)
	return nil
}
