package authn

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLocalAccount: a service account's password goes through Login's
// pipeline. Its failures are delayed and counted against the client
// address, and lock the account for that address only: a guesser elsewhere
// cannot lock the applications out.
func TestLocalAccount(t *testing.T) {
	env := startDemo(t, demoOpt{auth: "{throttle: {account_failures: 3, address_failures: 5}}"})
	var checks int
	svc := &LocalAccount{Key: "cn=app,ou=services,dc=dirgate", DN: "cn=app,ou=services,dc=dirgate", Verify: func(pw string) bool {
		checks++
		return pw == "app-pw"
	}}
	try := func(pw, remote string) (*Identity, error) {
		return env.a.Login(context.Background(), Attempt{Login: svc.DN, Password: pw, Remote: remote, Protocol: "ldap", Local: svc})
	}
	const attacker, app = "192.0.2.66:1000", "198.51.100.7:2000"

	if id, err := try("app-pw", app); err != nil || !id.Local || id.Entry != nil {
		t.Fatalf("right password: %+v %v", id, err)
	}
	for i := range 3 {
		if _, err := try("guess", attacker); ReasonOf(err) != ReasonInvalidCredentials {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if got, want := env.slept.take(), []time.Duration{200 * ms, 400 * ms, 800 * ms}; !reflect.DeepEqual(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	// Locked for the attacker's address, even with the right password,
	// without checking it, and answered as late as a fourth failure.
	checksBefore := checks
	if _, err := try("app-pw", attacker); ReasonOf(err) != ReasonThrottled {
		t.Fatalf("locked for the attacker: %v, want throttled", err)
	}
	if checks != checksBefore {
		t.Error("a locked attempt checked the password")
	}
	if got, want := env.slept.take(), []time.Duration{1600 * ms}; !reflect.DeepEqual(got, want) {
		t.Fatalf("throttled delay %v, want %v", got, want)
	}
	// The application, on another address, is not locked out.
	if _, err := try("app-pw", app); err != nil {
		t.Fatalf("the application after the attacker's lock: %v", err)
	}
	// The attacker's failures counted against the address (limit 5): two
	// more, on any account, lock it for directory users too.
	for _, login := range []string{"nobody1@demo.dirgate", "nobody2@demo.dirgate"} {
		if _, err := env.login(login, "x", attacker); ReasonOf(err) != ReasonUnknownUser {
			t.Fatalf("%s: %v", login, err)
		}
	}
	if _, err := env.login("bob@demo.dirgate", "bob-pw", attacker); ReasonOf(err) != ReasonThrottled {
		t.Fatalf("bob from the locked address: %v, want throttled", err)
	}
	// After the lockout the attacker's address may try again.
	env.clock.Add(15 * time.Minute)
	if _, err := try("app-pw", attacker); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	out := env.logs.String()
	if strings.Contains(out, "app-pw") || strings.Contains(out, "guess") {
		t.Fatalf("the log holds a password:\n%s", out)
	}
	if !strings.Contains(out, `"dn":"cn=app,ou=services,dc=dirgate"`) || !strings.Contains(out, `"local":true`) {
		t.Errorf("no audit line names the local account:\n%s", out)
	}
}

// TestLocalAccountConcurrent: parallel guesses from one address cannot
// check more wrong passwords than account_failures.
func TestLocalAccountConcurrent(t *testing.T) {
	env := startDemo(t, demoOpt{auth: "{throttle: {account_failures: 4, address_failures: 1000}}"})
	var checks atomic.Int64
	svc := &LocalAccount{Key: "svc", DN: "cn=svc", Verify: func(string) bool { checks.Add(1); return false }}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, _ = env.a.Login(context.Background(), Attempt{Login: "cn=svc", Password: "guess", Remote: "192.0.2.1", Local: svc})
		})
	}
	wg.Wait()
	if got := checks.Load(); got != 4 {
		t.Fatalf("%d guesses checked, want 4", got)
	}
}
