package browser

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

var screenshots = flag.String("screenshots", "", "write each page's screenshot at 1280x800 as PNG into this directory (docs/console)")

// The browser: one headless Chromium for the package, started by TestMain.
var (
	browserCtx context.Context
	noBrowser  string // why there is none
)

func TestMain(m *testing.M) {
	flag.Parse()
	path, err := exec.LookPath("chromium")
	if err != nil {
		noBrowser = "chromium is not installed (apt-get install chromium)"
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "tact-chromium-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 800),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		fmt.Fprintln(os.Stderr, "chromium did not start:", err)
		os.Exit(1)
	}
	browserCtx = ctx
	code := m.Run()
	cancel()
	cancelAlloc()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tab is a browser tab that records what went wrong on its pages: console
// errors, exceptions, CSP and other log errors, failed requests and
// responses of 400 or more.
type tab struct {
	ctx      context.Context
	mu       sync.Mutex
	problems []string
}

func newTab(t *testing.T) *tab {
	t.Helper()
	if browserCtx == nil {
		if os.Getenv("TACT_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("TACT_REQUIRE_CHROMIUM=1 but %s", noBrowser)
		}
		t.Skip(noBrowser)
	}
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	tb := &tab{ctx: ctx}
	messages := chromedp.Console(ctx) // console calls, exceptions, browser log (CSP refusals)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.Type == chromedp.ConsoleException {
				tb.note("console " + string(m.Type) + ": " + m.Text)
			}
		}
	}()
	err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventLoadingFailed:
			if !e.Canceled {
				tb.note("request failed: " + e.ErrorText)
			}
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				tb.note(fmt.Sprintf("HTTP %d for %s", e.Response.Status, e.Response.URL))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func (tb *tab) note(p string) {
	tb.mu.Lock()
	tb.problems = append(tb.problems, p)
	tb.mu.Unlock()
}

// forget drops the problems seen so far (a refusal a test asked for).
func (tb *tab) forget() {
	tb.mu.Lock()
	tb.problems = nil
	tb.mu.Unlock()
}

// clean fails the test when the tab saw a problem since the last call.
func (tb *tab) clean(t *testing.T, where string) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems {
		t.Errorf("%s: %s", where, p)
	}
	tb.problems = nil
}

func (tb *tab) run(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// get runs one action and returns its value.
func get[T any](t *testing.T, tb *tab, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(tb.ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// text returns the text of the first node matching the CSS selector sel.
func (tb *tab) text(t *testing.T, sel string) string {
	t.Helper()
	return get(t, tb, chromedp.Text(chromedp.CSS(sel)))
}

// count returns how many nodes match the CSS selector sel now.
func (tb *tab) count(t *testing.T, sel string) int {
	t.Helper()
	return len(get(t, tb, chromedp.Nodes(chromedp.CSSAll(sel), chromedp.AtLeast(0))))
}

// shot writes the page's screenshot when -screenshots is set.
func (tb *tab) shot(t *testing.T, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	tb.run(t, chromedp.EmulateViewport(1280, 800))
	png := get(t, tb, chromedp.CaptureScreenshot())
	if err := os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
