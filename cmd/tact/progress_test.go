package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgress: on a terminal, a line at most twice a second, cleared at
// the end; piped (as standard error is under go test), nothing.
func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, unit: "rows", start: time.Now().Add(-time.Second)}
	p.at(100)
	p.at(200) // within half a second of the last: not shown
	if got := buf.String(); !strings.HasPrefix(got, "\r100 rows, ") || !strings.HasSuffix(got, " rows/s ") || strings.Count(got, "\r") != 1 {
		t.Errorf("shown %q", got)
	}
	p.done()
	if !strings.HasSuffix(buf.String(), "\r\033[K") {
		t.Errorf("not cleared: %q", buf.String())
	}
	buf.Reset()
	s := &progress{w: &buf, unit: "folds", start: time.Now()}
	s.step(2, 5)
	if !strings.HasPrefix(buf.String(), "\r2 of 5 folds done, ") {
		t.Errorf("step shown %q", buf.String())
	}
	if q := newProgress("rows"); q.w != nil {
		t.Error("progress is shown with standard error not a terminal")
	}
}
