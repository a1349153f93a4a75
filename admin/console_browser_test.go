package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dirgate/dirgate/internal/browsertest"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium for the console test.
func browser(t *testing.T) context.Context { return browsertest.New(t, 90*time.Second) }

// saveScreenshot saves what the browser shows as dirgate-admin-NAME.png.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	browsertest.Screenshot(t, ctx, "admin-"+name)
}

// waitText waits until the element sel exists and its text contains want.
// It polls from Go rather than in the page, so a form submission that
// replaces the page on the way does not abort the wait.
func waitText(sel, want string) chromedp.Action {
	s, _ := json.Marshal(sel)
	w, _ := json.Marshal(want)
	expr := fmt.Sprintf(`(function(){var e=document.querySelector(%s);return !!e && e.innerText.includes(%s)})()`, s, w)
	return chromedp.ActionFunc(func(ctx context.Context) error {
		deadline := time.Now().Add(15 * time.Second)
		for {
			var ok bool
			err := chromedp.Evaluate(expr, &ok).Do(ctx)
			if err == nil && ok {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no %q in %s after 15s (last error: %v)", want, sel, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	f := newFake(t)
	_, ts := newTestServer(t, f, Options{Version: "test"})
	step := ""
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("failed at step %q", step)
			saveScreenshot(t, ctx, "failure")
		}
	})
	// DIRGATE_SCREENSHOTS_ALL=1 saves every main page, to review the layout.
	shot := func(name string) chromedp.Action {
		return chromedp.ActionFunc(func(ctx context.Context) error {
			if os.Getenv("DIRGATE_SCREENSHOTS_ALL") == "1" {
				saveScreenshot(t, ctx, name)
			}
			return nil
		})
	}
	run := func(name string, actions ...chromedp.Action) {
		t.Helper()
		step = name
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	var text string
	run("sign in",
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery),
		shot("login"),
		chromedp.SendKeys(`#token`, "wrong-token-wrong-token", chromedp.ByQuery),
		chromedp.Click(`#signin`, chromedp.ByQuery),
		waitText(`#login-msg`, "That is not the admin token"),
		chromedp.SendKeys(`#token`, testToken, chromedp.ByQuery),
		chromedp.Click(`#signin`, chromedp.ByQuery),
		waitText(`#connectors`, "corp"),
		chromedp.Text(`#connectors`, &text, chromedp.ByQuery),
		shot("connectors"),
	)
	for _, want := range []string{"corp", "risky", "busy", "broken", "OpenLDAP", "Active Directory", "HCL Domino", "Blocked", "plan waiting for review"} {
		if !strings.Contains(text, want) {
			t.Errorf("connectors list: missing %q in %q", want, text)
		}
	}

	run("open a connector",
		chromedp.Click(`a[href="/connectors/corp"]`, chromedp.ByQuery),
		waitText(`h1`, "Connector corp"),
		chromedp.Text(`main`, &text, chromedp.ByQuery),
	)
	for _, want := range []string{"Head office OpenLDAP", "ldap2.corp.test", "daily at 08:00, 13:00, 23:00 Europe/Berlin", "Sync history", "schedule"} {
		if !strings.Contains(text, want) {
			t.Errorf("detail: missing %q", want)
		}
	}

	run("test connection",
		chromedp.Click(`#test`, chromedp.ByQuery),
		waitText(`#result`, "Connection test of corp passed"),
		chromedp.Text(`#result`, &text, chromedp.ByQuery),
		shot("test-connection"),
	)
	for _, want := range []string{"TLS handshake", "PASS", "12 ms", "bound as cn=sync,dc=corp,dc=test"} {
		if !strings.Contains(text, want) {
			t.Errorf("test report: missing %q in %q", want, text)
		}
	}

	run("synchronize now",
		chromedp.Click(`#sync`, chromedp.ByQuery),
		waitText(`#result`, "corp synchronized"),
		chromedp.Text(`#result`, &text, chromedp.ByQuery),
		shot("synchronized"),
	)
	if !strings.Contains(text, "2\nadded") || !strings.Contains(text, "1\nupdated") || !strings.Contains(text, "40\nunchanged") {
		t.Errorf("sync result counts: %q", text)
	}

	run("dry run",
		chromedp.SetValue(`#mode`, "full", chromedp.ByQuery),
		chromedp.Click(`#dryrun`, chromedp.ByQuery),
		waitText(`#result`, "Dry run of corp: nothing was changed"),
	)
	if calls := f.syncCalls(); len(calls) != 2 || calls[0] != "corp:dry_run=false,mode=,force=false,trigger=console" ||
		calls[1] != "corp:dry_run=true,mode=full,force=false,trigger=console" {
		t.Errorf("sync calls %v", calls)
	}

	run("blocked plan",
		chromedp.Navigate(ts.URL+"/connectors/risky"),
		waitText(`#blocked`, "Blocked plan waiting for review"),
		chromedp.Text(`#blocked`, &text, chromedp.ByQuery),
		shot("blocked"),
	)
	for _, want := range []string{"max_delete_percent", "uid=gone1,ou=people,dc=risky,dc=test", "cn=<b>old</b>,ou=groups,dc=risky,dc=test", "Deletions (3)"} {
		if !strings.Contains(text, want) {
			t.Errorf("blocked plan: missing %q in %q", want, text)
		}
	}
	run("apply anyway",
		chromedp.Click(`#apply`, chromedp.ByQuery),
		waitText(`h1`, "Apply the blocked plan of risky?"),
		shot("confirm"),
		chromedp.Click(`#confirm-apply`, chromedp.ByQuery),
		waitText(`#result`, "Blocked plan of risky applied"),
		chromedp.Text(`#result`, &text, chromedp.ByQuery),
	)
	if !strings.Contains(text, "3\ndeleted") {
		t.Errorf("apply result: %q", text)
	}
	if _, pending := f.Blocked("risky"); pending {
		t.Error("the plan is still pending after Apply anyway")
	}

	run("look up an email",
		chromedp.Click(`a[href="/lookup"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#email`, chromedp.ByQuery),
		chromedp.SendKeys(`#email`, "A.Liddell@corp.test", chromedp.ByQuery),
		chromedp.Click(`#lookup-go`, chromedp.ByQuery),
		waitText(`#lookup-result`, "belongs to one account"),
		chromedp.Text(`#lookup-result`, &text, chromedp.ByQuery),
		shot("lookup"),
	)
	for _, want := range []string{"uid=alice,ou=people,dc=corp,dc=test", "alice@corp.test (primary)", "cn=staff,ou=groups,dc=corp,dc=test", "Enabled", "corp"} {
		if !strings.Contains(text, want) {
			t.Errorf("lookup: missing %q in %q", want, text)
		}
	}
	run("ambiguous lookup",
		chromedp.SetValue(`#email`, "shared@corp.test", chromedp.ByQuery),
		chromedp.Click(`#lookup-go`, chromedp.ByQuery),
		waitText(`#lookup-result`, "is ambiguous: 2 accounts"),
	)

	run("browse users",
		chromedp.Click(`a[href="/browse"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#q`, chromedp.ByQuery),
		chromedp.SetValue(`#kind`, "user", chromedp.ByQuery),
		chromedp.Click(`#search`, chromedp.ByQuery),
		waitText(`#entries caption`, "of 6"),
		chromedp.Text(`#entries`, &text, chromedp.ByQuery),
		shot("browse"),
	)
	for _, want := range []string{"uid=carol,ou=people,dc=corp,dc=test", "Disabled", "uid=<script>alert(1)</script>", "dave@risky.test"} {
		if !strings.Contains(text, want) {
			t.Errorf("browse: missing %q in %q", want, text)
		}
	}
	if strings.Contains(text, "cn=staff") {
		t.Error("browse: a group among the users")
	}
	run("browse search and page",
		chromedp.SetValue(`#q`, "bob", chromedp.ByQuery),
		chromedp.Click(`#search`, chromedp.ByQuery),
		waitText(`#entries caption`, "matching “bob”"),
		chromedp.Navigate(ts.URL+"/browse?limit=3"),
		waitText(`#entries caption`, "Entries 1–3 of 7"),
		chromedp.Click(`#next`, chromedp.ByQuery),
		waitText(`#entries caption`, "Entries 4–6 of 7"),
	)

	run("sign out",
		chromedp.Click(`button.signout`, chromedp.ByQuery),
		waitText(`main`, "You are signed out."),
		chromedp.Navigate(ts.URL+"/connectors/corp"),
		chromedp.WaitVisible(`#token`, chromedp.ByQuery),
	)
}
