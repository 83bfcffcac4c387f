package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress shows how far long work has come on standard error, twice a
// second, when standard error is a terminal; piped or redirected, it
// shows nothing, so that logs and scripts get only the summary.
type progress struct {
	w     io.Writer // nil: quiet
	unit  string
	start time.Time
	last  time.Time
	shown bool
}

func newProgress(unit string) *progress {
	p := &progress{unit: unit, start: time.Now()}
	if isTerminal(os.Stderr) {
		p.w = os.Stderr
	}
	return p
}

// at reports n units done.
func (p *progress) at(n int64) {
	if p.w == nil || time.Since(p.last) < 500*time.Millisecond {
		return
	}
	p.last, p.shown = time.Now(), true
	fmt.Fprintf(p.w, "\r%d %s, %.0f %s/s ", n, p.unit, float64(n)/time.Since(p.start).Seconds(), p.unit)
}

// step reports a step of a known number done, each one shown.
func (p *progress) step(done, of int) {
	if p.w == nil {
		return
	}
	p.shown = true
	fmt.Fprintf(p.w, "\r%d of %d %s done, %.0f s ", done, of, p.unit, time.Since(p.start).Seconds())
}

// done clears the line.
func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
