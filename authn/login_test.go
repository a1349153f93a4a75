package authn

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/state"
)

const ms = time.Millisecond

// TestLoginThrottle: through Login against a real (in-process) upstream,
// whose bind requests a relay counts.
func TestLoginThrottle(t *testing.T) {
	env := startDemo(t, demoOpt{forwarder: true, auth: "{throttle: {account_failures: 5, address_failures: 8}}"})
	binds := func() int64 { return env.fwd.binds.Load() }

	// Five wrong passwords for alice, under two of her logins: each reaches
	// the upstream once, each answer is delayed longer.
	for i, login := range []string{"alice@demo.dirgate", "a.liddell@demo.dirgate", "alice", "uid=alice,ou=people,dc=demo,dc=dirgate", "ALICE@demo.dirgate"} {
		if _, err := env.login(login, "guess", "192.0.2.1:1000"); ReasonOf(err) != ReasonInvalidCredentials {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if got := binds(); got != 5 {
		t.Fatalf("%d binds reached the upstream, want 5", got)
	}
	if got, want := env.slept.take(), []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms}; !reflect.DeepEqual(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	// Locked: even the right password, from another address, under any of
	// her logins, is refused without contacting the upstream, at once.
	for _, login := range []string{"alice@demo.dirgate", "alice"} {
		_, err := env.login(login, "alice-pw", "198.51.100.7:2000")
		if ReasonOf(err) != ReasonThrottled {
			t.Fatalf("locked account %s: %v, want throttled", login, err)
		}
		var ae *Error
		if !asError(err, &ae) || ae.Connector != "demo" {
			t.Errorf("throttled error %+v lacks the connector", ae)
		}
	}
	if got := binds(); got != 5 {
		t.Fatalf("a locked account reached the upstream: %d binds", got)
	}
	// They wait as long as a sixth failure would have (BaseDelay·2^5, at
	// most 5s): the answer time does not tell that the account is locked.
	if got, want := env.slept.take(), []time.Duration{5 * time.Second, 5 * time.Second}; !reflect.DeepEqual(got, want) {
		t.Fatalf("throttled answers delayed %v, want %v", got, want)
	}
	// Others are not affected.
	if _, err := env.login("bob@demo.dirgate", "bob-pw", "192.0.2.1:1000"); err != nil {
		t.Fatalf("bob: %v", err)
	}
	// After the lockout alice gets in, and her count starts again.
	env.clock.Add(15 * time.Minute)
	if id, err := env.login("alice@demo.dirgate", "alice-pw", "192.0.2.1:1000"); err != nil || id.Entry.DN != "uid=alice,ou=people,dc=demo,dc=dirgate" {
		t.Fatalf("after the lockout: %v", err)
	}

	// Unknown names are throttled too, and never reach the upstream.
	before := binds()
	for range 5 {
		if _, err := env.login("nobody@demo.dirgate", "x", "203.0.113.9"); ReasonOf(err) != ReasonUnknownUser {
			t.Fatalf("unknown: %v", err)
		}
	}
	if _, err := env.login("Nobody@demo.dirgate ", "x", "203.0.113.10"); ReasonOf(err) != ReasonThrottled {
		t.Fatalf("sixth try on an unknown name: %v, want throttled", err)
	}
	if binds() != before {
		t.Fatal("unknown names reached the upstream")
	}

	// The address: 5 failures above from 203.0.113.9 plus 3 more reach its
	// limit of 8, whatever the accounts.
	for _, login := range []string{"x1@demo.dirgate", "x2@demo.dirgate", "x3@demo.dirgate"} {
		if _, err := env.login(login, "x", "203.0.113.9:5555"); ReasonOf(err) != ReasonUnknownUser {
			t.Fatalf("%s: %v", login, err)
		}
	}
	if _, err := env.login("bob@demo.dirgate", "bob-pw", "203.0.113.9:5556"); ReasonOf(err) != ReasonThrottled {
		t.Fatalf("locked address: %v, want throttled", err)
	}
	if _, err := env.login("bob@demo.dirgate", "bob-pw", "203.0.113.10:5556"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

// TestLoginThrottleConcurrent: a burst of parallel guesses cannot push
// more failures upstream than account_failures.
func TestLoginThrottleConcurrent(t *testing.T) {
	env := startDemo(t, demoOpt{forwarder: true, auth: "{throttle: {account_failures: 4, address_failures: 1000}}"})
	var wg sync.WaitGroup
	results := make(chan Reason, 40)
	for range 40 {
		wg.Go(func() {
			_, err := env.login("bob@demo.dirgate", "guess", "192.0.2.1")
			results <- ReasonOf(err)
		})
	}
	wg.Wait()
	close(results)
	counts := map[Reason]int{}
	for r := range results {
		counts[r]++
	}
	if got := env.fwd.binds.Load(); got != 4 {
		t.Fatalf("%d guesses reached the upstream, want 4", got)
	}
	if counts[ReasonInvalidCredentials] != 4 || counts[ReasonThrottled] != 36 {
		t.Fatalf("results %v", counts)
	}
}

func TestPool(t *testing.T) {
	env := startDemo(t, demoOpt{forwarder: true, timeout: "300ms", auth: "{pool_size: 2, throttle: {base_delay: 0s}}"})
	dials := func() int64 { return env.fwd.dials.Load() }
	pool := env.a.pools["demo"]

	// Sequential checks, right and wrong passwords, share one connection.
	for i, c := range []struct{ login, pw string }{
		{"alice@demo.dirgate", "alice-pw"}, {"bob@demo.dirgate", "wrong"}, {"bob@demo.dirgate", "bob-pw"},
		{"john.doe@demo.dirgate", "john.doe-pw"}, {"alice@demo.dirgate", "alice-pw"},
	} {
		_, err := env.login(c.login, c.pw, "")
		if (c.pw == "wrong") != (ReasonOf(err) == ReasonInvalidCredentials) || (c.pw != "wrong" && err != nil) {
			t.Fatalf("check %d (%s): %v", i, c.login, err)
		}
	}
	if got := dials(); got != 1 {
		t.Fatalf("5 sequential checks dialed %d connections, want 1", got)
	}
	// A bind on a connection that last carried another user's bind is
	// checked afresh: a wrong password still fails.
	if _, err := env.login("alice@demo.dirgate", "bob-pw", ""); ReasonOf(err) != ReasonInvalidCredentials {
		t.Fatalf("wrong password on a reused connection: %v", err)
	}

	// The server drops the connection: it is discarded, never reused, and
	// the next check succeeds on a new one.
	env.fwd.kill()
	if _, err := env.login("alice@demo.dirgate", "alice-pw", ""); err != nil {
		t.Fatalf("after the connection was killed: %v", err)
	}
	if got := dials(); got != 2 {
		t.Fatalf("dials after a kill = %d, want 2", got)
	}
	if n := pool.idleCount(); n != 1 {
		t.Fatalf("%d idle connections, want 1", n)
	}

	// A hung server: the check times out as unavailable (not retried: the
	// server may have received the bind), the connection is discarded.
	env.fwd.freeze()
	if _, err := env.login("alice@demo.dirgate", "alice-pw", ""); ReasonOf(err) != ReasonUnavailable {
		t.Fatalf("hung connection: %v, want unavailable", err)
	}
	if n := pool.idleCount(); n != 0 {
		t.Fatalf("the timed-out connection went back to the pool (%d idle)", n)
	}
	if _, err := env.login("alice@demo.dirgate", "alice-pw", ""); err != nil {
		t.Fatalf("after the hang: %v", err)
	}
	if got := dials(); got != 3 {
		t.Fatalf("dials = %d, want 3", got)
	}

	// Concurrent checks dial what they need; at most pool_size stay idle.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := env.login("bob@demo.dirgate", "bob-pw", ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := pool.idleCount(); n > 2 || n < 1 {
		t.Fatalf("%d idle connections after a burst, want 1 or 2", n)
	}

	// Idle too long: closed rather than reused.
	before := dials()
	env.clock.Add(maxIdleTime + time.Second)
	if _, err := env.login("bob@demo.dirgate", "bob-pw", ""); err != nil {
		t.Fatal(err)
	}
	if dials() != before+1 {
		t.Fatal("a connection idle for longer than maxIdleTime was reused")
	}

	// Close drops the idle connections; later checks still work.
	env.a.Close()
	if pool.idleCount() != 0 {
		t.Fatal("Close left idle connections")
	}
	if _, err := env.login("bob@demo.dirgate", "bob-pw", ""); err != nil || pool.idleCount() != 0 {
		t.Fatalf("check after Close: %v, %d idle", err, pool.idleCount())
	}
}

func TestPoolSizeZero(t *testing.T) {
	env := startDemo(t, demoOpt{forwarder: true, auth: "{pool_size: 0}"})
	for range 3 {
		if _, err := env.login("bob@demo.dirgate", "bob-pw", ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := env.fwd.dials.Load(); got != 3 || env.a.pools["demo"].idleCount() != 0 {
		t.Fatalf("pool_size 0: %d dials, %d idle", got, env.a.pools["demo"].idleCount())
	}
}

// offlineBlob returns the stored verifier of the demo account id, JSON
// encoded, nil when none.
func offlineBlob(t *testing.T, env *demoEnv, id string) []byte {
	t.Helper()
	v, err := env.store.States().Verifiers.Verifier(t.Context(), "demo", id)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const aliceID = "6e0f5a3c-0000-4000-8000-000000000101"

func TestOfflineDisabledByDefault(t *testing.T) {
	env := startDemo(t, demoOpt{})
	if _, err := env.login("alice@demo.dirgate", "alice-pw", ""); err != nil {
		t.Fatal(err)
	}
	if b := offlineBlob(t, env, aliceID); len(b) != 0 {
		t.Fatalf("a verifier was stored while disabled: %q", b)
	}
	_ = env.up.Stop()
	_, err := env.login("alice@demo.dirgate", "alice-pw", "")
	if ReasonOf(err) != ReasonUnavailable {
		t.Fatalf("upstream down, verifier disabled: %v, want unavailable", err)
	}
}

func TestOffline(t *testing.T) {
	env := startDemo(t, demoOpt{auth: "{offline_verifier: {enabled: true, max_age: 24h}, throttle: {account_failures: 10}}"})
	id, err := env.login("alice@demo.dirgate", "alice-pw", "")
	if err != nil || id.Offline || id.Host != "127.0.0.1" {
		t.Fatalf("online login: %+v %v", id, err)
	}
	blob := offlineBlob(t, env, aliceID)
	var rec state.Verifier
	if err := json.Unmarshal(blob, &rec); err != nil || !strings.HasPrefix(rec.Hash, "$argon2id$v=19$m=19456,t=2,p=1$") ||
		rec.Created.Unix() != env.clock.Now().Unix() || rec.Stamp == "" {
		t.Fatalf("stored verifier %s: %v", blob, err)
	}
	if strings.Contains(string(blob), "alice-pw") {
		t.Fatal("the password itself was stored")
	}
	// Signing in again soon rewrites nothing (no argon2 per bind).
	env.clock.Add(time.Minute)
	if _, err := env.login("alice@demo.dirgate", "alice-pw", ""); err != nil {
		t.Fatal(err)
	}
	if string(offlineBlob(t, env, aliceID)) != string(blob) {
		t.Fatal("the verifier was rewritten on every login")
	}
	// A sync that changes nothing keeps the verifier usable.
	env.resync(t)

	if err := env.up.Stop(); err != nil {
		t.Fatal(err)
	}
	env.slept.take()
	id, err = env.login("a.liddell@demo.dirgate", "alice-pw", "")
	if err != nil || !id.Offline || id.Host != "" || id.Entry.ID != aliceID {
		t.Fatalf("offline login: %+v %v", id, err)
	}
	_, err = env.login("alice@demo.dirgate", "wrong", "")
	if ReasonOf(err) != ReasonInvalidCredentials {
		t.Fatalf("wrong password offline: %v", err)
	}
	if d := env.slept.take(); len(d) != 1 || d[0] != 200*ms {
		t.Fatalf("a wrong password offline is not throttled like any other: delays %v", d)
	}
	// bob never signed in online: no verifier.
	if _, err := env.login("bob@demo.dirgate", "bob-pw", ""); ReasonOf(err) != ReasonUnavailable || !strings.Contains(err.Error(), "no offline verifier") {
		t.Fatalf("no verifier: %v", err)
	}
	// max_age counts from the last online sign-in.
	env.clock.Add(24*time.Hour - 2*time.Minute)
	if id, err := env.login("alice@demo.dirgate", "alice-pw", ""); err != nil || !id.Offline {
		t.Fatalf("just inside max_age: %v", err)
	}
	env.clock.Add(2 * time.Minute)
	if _, err := env.login("alice@demo.dirgate", "alice-pw", ""); ReasonOf(err) != ReasonUnavailable || !strings.Contains(err.Error(), "older than max_age") {
		t.Fatalf("past max_age: %v", err)
	}
}

// TestOfflineInvalidation: a sync that sees a password change or a disabled
// account, and an upstream refusing the password, retire the verifier.
func TestOfflineInvalidation(t *testing.T) {
	bobID := "6e0f5a3c-0000-4000-8000-000000000102"
	env := startDemo(t, demoOpt{auth: "{offline_verifier: {enabled: true}}"})
	for _, u := range []string{"alice", "bob", "john.doe"} {
		if _, err := env.login(u+"@demo.dirgate", u+"-pw", ""); err != nil {
			t.Fatal(err)
		}
	}
	// The upstream refuses a password for john: his verifier goes.
	if _, err := env.login("john.doe@demo.dirgate", "wrong", ""); ReasonOf(err) != ReasonInvalidCredentials {
		t.Fatal(err)
	}
	if b := offlineBlob(t, env, "6e0f5a3c-0000-4000-8000-000000000103"); len(b) != 0 {
		t.Fatal("a refused password left the verifier in place")
	}
	// A sync sees alice's password change and bob disabled.
	env.rewrite(t, func(e *cache.Entry) {
		switch e.ID {
		case aliceID:
			e.Attrs = append(e.Attrs, cache.Attr{Name: "pwdChangedTime", Values: []string{"20250301100000Z"}})
			e.Normalize()
		case bobID:
			e.Disabled = true
		}
	})
	_ = env.up.Stop()
	if _, err := env.login("alice@demo.dirgate", "alice-pw", ""); ReasonOf(err) != ReasonUnavailable || !strings.Contains(err.Error(), "password changed") {
		t.Fatalf("changed password stamp: %v", err)
	}
	if _, err := env.login("bob@demo.dirgate", "bob-pw", ""); ReasonOf(err) != ReasonDisabled {
		t.Fatalf("disabled by a sync: %v", err)
	}
	if b := offlineBlob(t, env, bobID); len(b) != 0 {
		t.Fatal("a disabled account kept its verifier")
	}
	if _, err := env.login("john.doe@demo.dirgate", "john.doe-pw", ""); ReasonOf(err) != ReasonUnavailable {
		t.Fatalf("john after his verifier was dropped: %v", err)
	}
}

func TestPasswordStamp(t *testing.T) {
	e := &cache.Entry{ID: "1", DN: "cn=x", Kind: cache.KindUser}
	base := passwordStamp(e, "openldap")
	if !strings.HasPrefix(base, "entry:") {
		t.Fatalf("stamp without attributes = %q", base)
	}
	e.Attrs = []cache.Attr{{Name: "modifyTimestamp", Values: []string{"20250101000000Z"}}}
	if got := passwordStamp(e, "openldap"); got != "modifyTimestamp:20250101000000Z" {
		t.Errorf("openldap fallback: %q", got)
	}
	e.Attrs = append(e.Attrs, cache.Attr{Name: "pwdChangedTime", Values: []string{"20240101000000Z"}}, cache.Attr{Name: "pwdLastSet", Values: []string{"133000000000000000"}})
	if got := passwordStamp(e, "openldap"); got != "pwdChangedTime:20240101000000Z" {
		t.Errorf("openldap: %q", got)
	}
	if got := passwordStamp(e, "ad"); got != "pwdLastSet:133000000000000000" {
		t.Errorf("ad: %q", got)
	}
	if got := passwordStamp(e, "domino"); got != "modifyTimestamp:20250101000000Z" {
		t.Errorf("domino: %q", got)
	}
}

// TestAuditLog: one "auth attempt" line per attempt, with the fields an
// admin needs, never the password.
func TestAuditLog(t *testing.T) {
	env := startDemo(t, demoOpt{auth: "{throttle: {account_failures: 2}}"})
	attempts := []struct {
		at     Attempt
		result string
	}{
		{Attempt{Login: "alice@demo.dirgate", Password: "alice-pw", Remote: "192.0.2.1:4000", Protocol: "ldap"}, "success"},
		{Attempt{Login: "bob@demo.dirgate", Password: "s3cret-guess-1", Remote: "192.0.2.1:4001", Protocol: "oidc"}, "invalid_credentials"},
		{Attempt{Login: "bob@demo.dirgate", Password: "s3cret-guess-2", Remote: "192.0.2.1:4001", Protocol: "oidc"}, "invalid_credentials"},
		{Attempt{Login: "bob@demo.dirgate", Password: "bob-pw", Remote: "192.0.2.1:4001", Protocol: "oidc"}, "throttled"},
		{Attempt{Login: "nobody\"\n{x}@demo.dirgate", Password: "s3cret-guess-3", Protocol: "ldap"}, "unknown_user"},
		{Attempt{Login: "carol@demo.dirgate", Password: "carol-pw", Protocol: "ldap"}, "account_disabled"},
	}
	for _, a := range attempts {
		_, _ = env.a.Login(context.Background(), a.at)
	}
	out := env.logs.String()
	for _, secret := range []string{"alice-pw", "s3cret-guess", "bob-pw", "carol-pw"} {
		if strings.Contains(out, secret) {
			t.Fatalf("the log holds a password (%s):\n%s", secret, out)
		}
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		if m["msg"] == "auth attempt" {
			lines = append(lines, m)
		}
	}
	if len(lines) != len(attempts) {
		t.Fatalf("%d audit lines for %d attempts:\n%s", len(lines), len(attempts), out)
	}
	for i, a := range attempts {
		l := lines[i]
		if l["level"] != "INFO" || l["result"] != a.result || l["login"] != a.at.Login || l["protocol"] != a.at.Protocol ||
			l["remote"] != a.at.Remote || l["offline"] != false || l["duration"] == nil {
			t.Errorf("line %d: %v", i, l)
		}
	}
	if l := lines[0]; l["connector"] != "demo" || l["dn"] != "uid=alice,ou=people,dc=demo,dc=dirgate" || l["upstream"] != "127.0.0.1" {
		t.Errorf("success line: %v", l)
	}
	if l := lines[3]; l["dn"] != "uid=bob,ou=people,dc=demo,dc=dirgate" || !strings.Contains(l["detail"].(string), "locked by dirgate") {
		t.Errorf("throttled line: %v", l)
	}
	if l := lines[2]; l["delay"] == nil {
		t.Errorf("the delay of a failure is not logged: %v", l)
	}
	if l := lines[4]; l["connector"] != "" || l["dn"] != "" {
		t.Errorf("unknown user line: %v", l)
	}
}

// Turning the verifier off removes what was stored while it was on.
func TestOfflineTurnedOffRemovesVerifiers(t *testing.T) {
	env := startDemo(t, demoOpt{auth: "{offline_verifier: {enabled: true}}"})
	if _, err := env.login("alice@demo.dirgate", "alice-pw", ""); err != nil {
		t.Fatal(err)
	}
	if len(offlineBlob(t, env, aliceID)) == 0 {
		t.Fatal("no verifier stored while enabled")
	}
	cfg := *env.cfg
	cfg.Auth.OfflineVerifier.Enabled = false
	a, err := New(&cfg, env.store, env.store.States(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if len(offlineBlob(t, env, aliceID)) == 0 {
		t.Fatal("verifiers removed before the new authenticator took over")
	}
	// The replaced authenticator stores nothing more once closed.
	env.a.Close()
	a.Activate()
	if b := offlineBlob(t, env, aliceID); len(b) != 0 {
		t.Fatalf("verifier kept after the option was turned off: %q", b)
	}
	if _, err := env.login("alice@demo.dirgate", "alice-pw", ""); err != nil {
		t.Fatal(err)
	}
	if b := offlineBlob(t, env, aliceID); len(b) != 0 {
		t.Fatalf("the replaced authenticator stored a verifier after Close: %q", b)
	}
}

func TestCachedAuth(t *testing.T) {
	env := startDemo(t, demoOpt{forwarder: true, auth: "{cached_auth_timeout: 1m, throttle: {base_delay: 0s}}"})
	binds := func() int64 { return env.fwd.binds.Load() }
	step := func(name, login, pw string, wantErr Reason, wantCached bool, wantBinds int64) {
		t.Helper()
		id, err := env.login(login, pw, "")
		switch {
		case wantErr != 0 && ReasonOf(err) != wantErr:
			t.Fatalf("%s: err %v, want %v", name, err, wantErr)
		case wantErr == 0 && err != nil:
			t.Fatalf("%s: %v", name, err)
		case wantErr == 0 && (id.Cached != wantCached || (id.Host == "") != wantCached):
			t.Fatalf("%s: identity %+v, want cached=%v", name, id, wantCached)
		}
		if got := binds(); got != wantBinds {
			t.Fatalf("%s: %d upstream binds so far, want %d", name, got, wantBinds)
		}
	}
	step("first sign-in", "alice@demo.dirgate", "alice-pw", 0, false, 1)
	step("again, by alias", "a.liddell@demo.dirgate", "alice-pw", 0, true, 1)
	if !strings.Contains(env.logs.String(), `"cached":true`) {
		t.Fatalf("the audit line does not say the password was not sent upstream:\n%s", env.logs)
	}
	step("another account is not cached", "bob@demo.dirgate", "bob-pw", 0, false, 2)
	// Another password always goes upstream; its refusal drops the entry.
	step("wrong password", "alice@demo.dirgate", "wrong", ReasonInvalidCredentials, false, 3)
	step("after a refusal", "alice@demo.dirgate", "alice-pw", 0, false, 4)
	env.clock.Add(59 * time.Second)
	step("within the timeout", "alice@demo.dirgate", "alice-pw", 0, true, 4)
	env.clock.Add(time.Second)
	step("timeout over", "alice@demo.dirgate", "alice-pw", 0, false, 5)
	step("cached again", "alice@demo.dirgate", "alice-pw", 0, true, 5)

	// A sync that sees the password stamp change, or the account disabled,
	// ends the cached sign-in at once.
	env.rewrite(t, func(e *cache.Entry) {
		if e.ID == aliceID {
			e.Attrs = append(e.Attrs, cache.Attr{Name: "pwdChangedTime", Values: []string{"20250301100000Z"}})
			e.Normalize()
		}
	})
	step("password stamp changed", "alice@demo.dirgate", "alice-pw", 0, false, 6)
	step("cached with the new stamp", "alice@demo.dirgate", "alice-pw", 0, true, 6)
	env.rewrite(t, func(e *cache.Entry) { e.Disabled = e.Disabled || e.ID == aliceID })
	step("disabled by a sync", "alice@demo.dirgate", "alice-pw", ReasonDisabled, false, 6)
}

func TestCachedAuthOffByDefault(t *testing.T) {
	env := startDemo(t, demoOpt{forwarder: true})
	for i := range 3 {
		id, err := env.login("alice@demo.dirgate", "alice-pw", "")
		if err != nil || id.Cached {
			t.Fatalf("sign-in %d: %+v %v", i, id, err)
		}
	}
	if got := env.fwd.binds.Load(); got != 3 {
		t.Fatalf("3 sign-ins made %d upstream binds, want 3", got)
	}
}
