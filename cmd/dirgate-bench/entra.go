package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/dirgate/dirgate/entra"
	"github.com/dirgate/dirgate/internal/fakeentra"
)

// The Entra measures serve a generated tenant from the fake Microsoft
// cloud in this process, on loopback over plain HTTP (which the
// authority_url/graph_url overrides allow for loopback only), and run
// dirgate and the reference reader against it as processes of their own.
const (
	entraClientID = "00000000-0000-4000-8000-0000000000be"
	entraSecret   = "bench-entra-secret"
	entraListen   = "127.0.0.1:3894"
	// entraPageSize is the objects per delta page. Graph chooses its own
	// page size; 200 is in the range it is seen to send.
	entraPageSize = 200
	entraChanges  = 100
)

// fakeTB lets the test fake run outside a test: it collects the servers'
// cleanups and turns a fatal fixture error into a panic. fakeentra uses
// no other method of testing.TB.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// close runs the cleanups, last registered first.
func (f *fakeTB) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// entraBench adds the Entra rows: full sync against the reference reader,
// a delta round after entraChanges changed users, and the RSS of a server
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

	work, err := os.MkdirTemp("", "dirgate-bench-entra-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	cacheDir := filepath.Join(work, "cache")
	const svcDN, svcPW = "cn=bench,ou=services,dc=dirgate", "bench-pw"
	svcHash, err := hashOf(binary, svcPW)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	cfg := fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: %q, size_limit: 1000000, max_page_size: 5000}
service_accounts: [{dn: %q, password_hash: %q}]
connectors:
  - name: m365
    type: entra
    entra:
      tenant: %s
      client_id: %s
      client_secret_env: DIRGATE_BENCH_ENTRA_SECRET
      authority_url: %s
      graph_url: %s
    timeout: 60s
log: {level: warn}
admin: {listen: %q, token_env: DIRGATE_BENCH_ADMIN_TOKEN}
`, cacheDir, entraListen, svcDN, svcHash, ft.ID(), entraClientID, ft.AuthorityURL(), ft.GraphURL(), adminAddr)
	cfgPath := filepath.Join(work, "dirgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	os.Setenv("DIRGATE_BENCH_ENTRA_SECRET", entraSecret)
	os.Setenv("DIRGATE_BENCH_ADMIN_TOKEN", adminToken)
	self, err := os.Executable()
	if err != nil {
		return err
	}

	// 1. Full sync into a fresh cache, alternating with the reference.
	var syncTimes, refTimes []time.Duration
	var fullReqs int
	var fullOut, refOut string
	for range rounds {
		os.RemoveAll(cacheDir)
		before := ft.Requests()
		d, out, err := timed(exec.Command(binary, "sync", "-c", cfgPath))
		if err != nil {
			return fmt.Errorf("dirgate sync (entra): %w", err)
		}
		syncTimes, fullReqs, fullOut = append(syncTimes, d), ft.Requests()-before, out
		d, refOut, err = timed(exec.Command(self, "-entra-read", ft.GraphURL(),
			ft.AuthorityURL()+"/"+ft.ID()+"/oauth2/v2.0/token", entraClientID, entraSecret))
		if err != nil {
			return fmt.Errorf("entra reference read: %w", err)
		}
		refTimes = append(refTimes, d)
	}
	ms, mr := median(syncTimes), median(refTimes)
	rep.add(fmt.Sprintf("Entra full sync of %d users, %d groups from the fake Graph (wall, median of %d)", users, groups, rounds),
		ms.Round(time.Millisecond).String(), mr.Round(time.Millisecond).String()+" plain paged read of the same delta rounds",
		ratio(ms, mr), "≤ 1.5×")
	rep.notes = append(rep.notes,
		fmt.Sprintf("Entra: the fake Microsoft cloud (`internal/fakeentra`, %d objects a page, plain HTTP on loopback) serves a tenant of %d users and %d groups made by `Generate`; "+
			"the reference is a client that only fetches a token and pages through users/delta and groups/delta with dirgate's `$select` (net/http + encoding/json into minimal structs, nothing stored): %s; "+
			"`dirgate sync` made %d Graph requests and said: %s", entraPageSize, users, groups, refOut, fullReqs, fullOut))

	// 2. Delta rounds after changes to users spread over the tenant: the
	// measured one, then ten times as many changes to show the requests
	// grow with the changes, not with the tenant.
	deltaRound := func(n int) (time.Duration, int, string, error) {
		stamp := time.Now().Format(time.RFC3339Nano)
		for i := range n {
			u, ok := ft.User(userIDs[i*len(userIDs)/n])
			if !ok {
				return 0, 0, "", errors.New("entra: a generated user is missing")
			}
			u.DisplayName = "Changed " + stamp
			ft.PutUser(u)
		}
		before := ft.Requests()
		d, out, err := timed(exec.Command(binary, "sync", "-c", cfgPath))
		if err != nil {
			return 0, 0, "", fmt.Errorf("incremental dirgate sync (entra): %w", err)
		}
		return d, ft.Requests() - before, out, nil
	}
	inc, incReqs, incOut, err := deltaRound(entraChanges)
	if err != nil {
		return err
	}
	rep.add(fmt.Sprintf("Entra delta round after %d changed users (wall, whole CLI run; Graph requests)", entraChanges),
		fmt.Sprintf("%s, %d requests", inc.Round(time.Millisecond), incReqs),
		fmt.Sprintf("%s, %d requests full sync", ms.Round(time.Millisecond), fullReqs), ratio(inc, ms), "< 1 s, requests ∝ changes")

	// 3. Memory of a server holding the synced tenant, stopped before the
	// next sync: the cache admits one process at a time.
	t := target{url: "ldap://" + entraListen, dn: svcDN, pw: svcPW, base: "o=" + ft.ID()}
	if err := entraServe(binary, cfgPath, rep, users, ms, t, ft.Domain()); err != nil {
		return err
	}

	// 4. Ten times as many changes, for the notes: the delta round's
	// requests grow with the changes, and a change set too large for one
	// cache transaction shows as the engine's fallback to a full sync.
	more := min(10*entraChanges, len(userIDs))
	inc10, reqs10, out10, err := deltaRound(more)
	if err != nil {
		return err
	}
	rep.notes = append(rep.notes, fmt.Sprintf("Entra delta round: `%s`; after %d changed users: %s, %d Graph requests (`%s`)",
		incOut, more, inc10.Round(time.Millisecond), reqs10, out10))
	return nil
}

// entraServe starts `dirgate serve` on the synced cache, searches t for a
// moment and adds the server's RSS; with -pprof it also profiles a full
// sync run by the server (taking about syncTime).
func entraServe(binary, cfgPath string, rep *report, users int, syncTime time.Duration, t target, domain string) error {
	srv := exec.Command(binary, "serve", "-c", cfgPath)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	if err := waitLDAP(entraListen); err != nil {
		return err
	}
	if _, err := load(t, 8, 2*time.Second, users, entraSearchOp(domain)); err != nil {
		return fmt.Errorf("entra warm-up: %w", err)
	}
	rss := rssOf(srv.Process.Pid)
	rep.add(fmt.Sprintf("RSS serving %d Entra users", users), fmt.Sprintf("%.0f MiB", float64(rss)/(1<<20)), "", "", "≤ 250 MiB")
	if profileDir != "" {
		saveProfile("entra-heap", "/debug/pprof/heap")
		return profileEntraSync(syncTime)
	}
	return nil
}

// profileEntraSync saves a CPU profile of a full sync run by the server
// (the engine and source `dirgate sync` runs), expected to take about d.
func profileEntraSync(d time.Duration) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		saveProfile("entra-sync", fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())+2))
	}()
	defer func() { <-done }()
	req, err := http.NewRequest("POST", "http://"+adminAddr+"/api/v1/connectors/m365/sync", strings.NewReader(`{"mode":"full"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("entra sync for the profile: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("entra sync for the profile: %s: %s", resp.Status, body)
	}
	return nil
}

// timed runs cmd and returns its wall time and its trimmed output.
func timed(cmd *exec.Cmd) (time.Duration, string, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	out, err := cmd.Output()
	d := time.Since(t0)
	if err != nil {
		return d, "", fmt.Errorf("%v\n%s%s", err, out, stderr.String())
	}
	return d, strings.TrimSpace(string(out)), nil
}

// entraSearchOp searches a generated user by address.
func entraSearchOp(domain string) op {
	return func(c *ldap.Conn, t target, rnd *rand.Rand, users int) error {
		mail := fmt.Sprintf("user%06d@%s", rnd.IntN(users), domain)
		res, err := c.Search(ldap.NewSearchRequest(t.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(mail="+mail+")", []string{"cn", "mail", "uid"}, nil))
		if err != nil {
			return err
		}
		if len(res.Entries) != 1 {
			return fmt.Errorf("%s: %d entries", mail, len(res.Entries))
		}
		return nil
	}
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
			req, err := http.NewRequest("GET", link, nil)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			var p refPage
			if resp.StatusCode != http.StatusOK {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return fmt.Errorf("%s: %s", resp.Status, body)
			}
			err = json.NewDecoder(resp.Body).Decode(&p)
			resp.Body.Close()
			if err != nil {
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
