package authn

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestFailureTiming: how long a failure takes does not tell its cause. The
// upstream takes 150ms to refuse a wrong password; an unknown login, a
// disabled account and a local account never reach it. All are answered
// the throttle delay (300ms) after they began. A locked account is answered
// as late as its next failure would have been (600ms), not at once.
// Medians of interleaved samples keep the comparison steady on a loaded
// machine; without the fix the differences are 150ms and more.
func TestFailureTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds of real time")
	}
	env := startDemo(t, demoOpt{forwarder: true, auth: "{throttle: {account_failures: 1, address_failures: 1000, base_delay: 300ms}}"})
	env.fwd.latency.Store(int64(150 * ms))
	svc := &LocalAccount{Key: "svc", DN: "cn=svc", Verify: func(pw string) bool { return pw == "svc-pw" }}
	const remote = "192.0.2.1:1000"
	try := func(login, pw string, local *LocalAccount) error {
		_, err := env.a.Login(context.Background(), Attempt{Login: login, Password: pw, Remote: remote, Protocol: "ldap", Local: local})
		return err
	}
	cases := []struct {
		name      string
		login, pw string
		local     *LocalAccount
		guessed   bool // one wrong password first (not waited for), which locks the account
		want      Reason
	}{
		{"unknown user", "nobody@demo.dirgate", "guess", nil, false, ReasonUnknownUser},
		{"wrong password", "alice@demo.dirgate", "guess", nil, false, ReasonInvalidCredentials},
		{"disabled", "carol@demo.dirgate", "carol-pw", nil, false, ReasonDisabled},
		{"local account", "cn=svc", "guess", svc, false, ReasonInvalidCredentials},
		{"throttled", "bob@demo.dirgate", "bob-pw", nil, true, ReasonThrottled},
	}
	// Warm up: the first bind dials the upstream.
	_ = try("alice@demo.dirgate", "guess", nil)
	noWait := env.a.wait
	env.a.wait = waitFrom
	const samples = 5
	took := make([][]time.Duration, len(cases))
	for range samples {
		for i, c := range cases {
			// Past the window and the lockout: every sample starts from no
			// failures.
			env.clock.Add(time.Hour)
			if c.guessed {
				env.a.wait = noWait
				_ = try(c.login, "guess", c.local)
				env.a.wait = waitFrom
			}
			start := time.Now()
			err := try(c.login, c.pw, c.local)
			took[i] = append(took[i], time.Since(start))
			if ReasonOf(err) != c.want {
				t.Fatalf("%s: %v, want %v", c.name, err, c.want)
			}
		}
	}
	median := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	const tolerance = 75 * ms
	ref := median(took[0])
	if ref < 300*ms {
		t.Fatalf("an unknown user was answered after %v, before the 300ms delay", ref)
	}
	for i, c := range cases {
		want := ref
		if c.guessed {
			want += env.a.throttle.delay(2) - env.a.throttle.delay(1)
		}
		if got := median(took[i]); got < want-tolerance || got > want+tolerance {
			t.Errorf("%s: median %v, want %v±%v (samples %v)", c.name, got, want, tolerance, took[i])
		}
	}
}

// TestFailureWaitCancelled: the wait before a failure's answer ends with
// the attempt's context.
func TestFailureWaitCancelled(t *testing.T) {
	env := startDemo(t, demoOpt{auth: "{throttle: {base_delay: 5s}}"})
	env.a.wait = waitFrom
	ctx, cancel := context.WithTimeout(context.Background(), 100*ms)
	defer cancel()
	start := time.Now()
	_, err := env.a.Login(ctx, Attempt{Login: "nobody@demo.dirgate", Password: "guess", Protocol: "ldap"})
	if ReasonOf(err) != ReasonUnknownUser {
		t.Fatalf("%v, want unknown user", err)
	}
	// Generous: the point is that it did not wait the 5s.
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("answered after %v although the context ended after 100ms", d)
	}
}
