// Package browsertest starts headless Chromium (Debian's package) for tests
// that drive dirgate's pages, and saves screenshots of what it shows.
package browsertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser
// (scripts/testenv/install.sh chromium).
const ChromiumPath = "/usr/bin/chromium"

// New starts a browser for the test and returns its context, bounded by
// timeout. Without Chromium the test is skipped, unless
// DIRGATE_REQUIRE_UPSTREAMS=1 (make test) asks for every dependency.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("DIRGATE_REQUIRE_UPSTREAMS") == "1" {
			t.Fatal("chromium is not installed (scripts/testenv/install.sh chromium)")
		}
		t.Skip("chromium is not installed")
	}
	// Not t.TempDir: Chromium's helpers may still be writing to the
	// profile for a moment after the browser has been stopped.
	profile, err := os.MkdirTemp("", "dirgate-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	// The background-networking flags keep Chromium from reaching for
	// Google's services, which this machine's closed network refuses.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(profile))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel3)
	return ctx
}

// Dir is where screenshots go: $DIRGATE_SCREENSHOTS, else the temp dir.
func Dir() string {
	if d := os.Getenv("DIRGATE_SCREENSHOTS"); d != "" {
		return d
	}
	return os.TempDir()
}

// Screenshot saves a full-page PNG (quality 100 gives PNG) named
// dirgate-NAME.png and logs where.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(Dir(), "dirgate-"+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", p)
}
