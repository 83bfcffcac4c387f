// Package browser holds the console's browser tests: a real headless
// Chromium (Debian's chromium, driven by chromedp), started once for the
// package, against real tactd servers on loopback. Without chromium the
// tests skip, unless TACT_REQUIRE_CHROMIUM=1 (as in CI), which makes them
// fail. `go test ./server/browser -screenshots docs/console` rewrites the
// README's screenshots.
package browser
