package load

import (
	"errors"
	"fmt"
	"strings"
	"time"
	// Time zones are embedded, so that busy windows work on hosts without
	// a zoneinfo database (distroless images).
	_ "time/tzdata"
)

// Thresholds mark a queue's load. A zero field is not checked.
type Thresholds struct {
	CallsWaiting       uint32  `yaml:"calls_waiting" json:"calls_waiting"`
	LongestWaitSeconds float64 `yaml:"longest_wait_seconds" json:"longest_wait_seconds"`
	// ServiceLevelBelow: busy when the service level is below it (busy
	// thresholds); calm only when at or above it (calm thresholds).
	ServiceLevel float64 `yaml:"service_level" json:"service_level"`
}

// Config says when a queue is busy.
//
// A queue becomes busy when a report crosses any BusyWhen threshold
// (calls waiting or longest wait at or above, service level below), and
// stops being busy only when a report is under every CalmWhen threshold
// (calls waiting and longest wait below, service level at or above): the
// gap between the two is the hysteresis that keeps a queue from flapping.
// Only the measures a report carries are judged (an absent one is
// unknown, not zero); a report that carries none of the measures a
// threshold is set on leaves the queue as it was (a new queue: not busy).
//
// A report older than StaleAfter is not trusted. Then the busy windows
// decide (weekday and time ranges in TimeZone), and with no windows
// configured the answer is Unknown: the policy treats it as busy for
// protected tiers (the safe side).
type Config struct {
	BusyWhen    Thresholds    `yaml:"busy_when"`
	CalmWhen    Thresholds    `yaml:"calm_when"`
	StaleAfter  time.Duration `yaml:"stale_after"`
	TimeZone    string        `yaml:"time_zone"`
	BusyWindows []Window      `yaml:"busy_windows"`

	loc *time.Location
}

// Window is a scheduled busy period: on the given weekdays (mon..sun),
// from From to To (HH:MM, To exclusive, To after From), in the Config's
// time zone.
type Window struct {
	Days []string `yaml:"days"`
	From string   `yaml:"from"`
	To   string   `yaml:"to"`

	days     [7]bool
	from, to int // minutes after midnight
}

// DefaultConfig is used when a policy says nothing about load.
func DefaultConfig() Config {
	return Config{
		BusyWhen:   Thresholds{CallsWaiting: 20, LongestWaitSeconds: 120, ServiceLevel: 0.80},
		CalmWhen:   Thresholds{CallsWaiting: 10, LongestWaitSeconds: 60, ServiceLevel: 0.85},
		StaleAfter: 2 * time.Minute,
		TimeZone:   "UTC",
	}
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// Validate checks the configuration and prepares it for use; every
// problem is reported, named by its key under prefix (e.g. "load").
func (c *Config) Validate(prefix string) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", prefix, key, fmt.Sprintf(format, args...)))
	}
	b, k := c.BusyWhen, c.CalmWhen
	if b == (Thresholds{}) {
		bad("busy_when", "no threshold set")
	}
	if b.LongestWaitSeconds < 0 || k.LongestWaitSeconds < 0 {
		bad("longest_wait_seconds", "must not be negative")
	}
	for key, v := range map[string]float64{"busy_when.service_level": b.ServiceLevel, "calm_when.service_level": k.ServiceLevel} {
		if v < 0 || v > 1 {
			bad(key, "%v not in 0..1", v)
		}
	}
	// Calm must be on the quiet side of busy, or a queue could be both.
	if b.CallsWaiting > 0 && k.CallsWaiting > b.CallsWaiting {
		bad("calm_when.calls_waiting", "%d is above busy_when's %d", k.CallsWaiting, b.CallsWaiting)
	}
	if b.LongestWaitSeconds > 0 && k.LongestWaitSeconds > b.LongestWaitSeconds {
		bad("calm_when.longest_wait_seconds", "%v is above busy_when's %v", k.LongestWaitSeconds, b.LongestWaitSeconds)
	}
	if b.ServiceLevel > 0 && k.ServiceLevel > 0 && k.ServiceLevel < b.ServiceLevel {
		bad("calm_when.service_level", "%v is below busy_when's %v", k.ServiceLevel, b.ServiceLevel)
	}
	if c.StaleAfter <= 0 {
		bad("stale_after", "must be positive")
	}
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		bad("time_zone", "unknown time zone %q", c.TimeZone)
	}
	c.loc = loc
	for i := range c.BusyWindows {
		w := &c.BusyWindows[i]
		at := fmt.Sprintf("busy_windows[%d]", i)
		if len(w.Days) == 0 {
			bad(at+".days", "empty")
		}
		for _, d := range w.Days {
			wd, ok := weekdays[strings.ToLower(d)]
			if !ok {
				bad(at+".days", "unknown day %q (mon..sun)", d)
				continue
			}
			w.days[wd] = true
		}
		var e1, e2 error
		w.from, e1 = clock(w.From)
		w.to, e2 = clock(w.To)
		if e1 != nil {
			bad(at+".from", "%v", e1)
		}
		if e2 != nil {
			bad(at+".to", "%v", e2)
		}
		if e1 == nil && e2 == nil && w.to <= w.from {
			bad(at+".to", "%s is not after from %s", w.To, w.From)
		}
	}
	return errors.Join(errs...)
}

// Location returns the configured time zone (UTC before Validate).
func (c *Config) Location() *time.Location {
	if c.loc == nil {
		return time.UTC
	}
	return c.loc
}

// clock parses HH:MM (24:00 allowed as the end of a day) into minutes.
func clock(s string) (int, error) {
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || n != 2 || len(s) != 5 {
		return 0, fmt.Errorf("%q is not HH:MM", s)
	}
	if h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("%q is not a time of day", s)
	}
	return h*60 + m, nil
}

// InWindow reports whether t falls in a scheduled busy window.
func (c *Config) InWindow(t time.Time) bool {
	t = t.In(c.Location())
	mins := t.Hour()*60 + t.Minute()
	for i := range c.BusyWindows {
		w := &c.BusyWindows[i]
		if w.days[t.Weekday()] && mins >= w.from && mins < w.to {
			return true
		}
	}
	return false
}

// crossesBusy reports whether r crosses any busy threshold, judging only
// the measures r reports.
func (t *Thresholds) crossesBusy(r *Report) bool {
	return (t.CallsWaiting > 0 && r.Has&HasCallsWaiting != 0 && r.CallsWaiting >= t.CallsWaiting) ||
		(t.LongestWaitSeconds > 0 && r.Has&HasLongestWait != 0 && r.LongestWaitSeconds >= t.LongestWaitSeconds) ||
		(t.ServiceLevel > 0 && r.Has&HasServiceLevel != 0 && r.ServiceLevel < t.ServiceLevel)
}

// calm reports whether r is under every calm threshold it can be judged
// by (a measure it reports, with a threshold set), and can be judged by
// one at least; a report that says nothing about the thresholds is not
// calm, and leaves a busy queue busy.
func (t *Thresholds) calm(r *Report) bool {
	judged := false
	if t.CallsWaiting > 0 && r.Has&HasCallsWaiting != 0 {
		if r.CallsWaiting >= t.CallsWaiting {
			return false
		}
		judged = true
	}
	if t.LongestWaitSeconds > 0 && r.Has&HasLongestWait != 0 {
		if r.LongestWaitSeconds >= t.LongestWaitSeconds {
			return false
		}
		judged = true
	}
	if t.ServiceLevel > 0 && r.Has&HasServiceLevel != 0 {
		if r.ServiceLevel < t.ServiceLevel {
			return false
		}
		judged = true
	}
	return judged
}

// Source says what a Status was decided from.
type Source uint8

// The sources of a status.
const (
	// FromFeed: a fresh report.
	FromFeed Source = iota + 1
	// FromSchedule: no fresh report; the busy windows decided.
	FromSchedule
	// Unknown: no fresh report and no busy windows.
	Unknown
)

// Status is a queue's state for a decision.
type Status struct {
	Busy   bool
	Source Source
	// Pressure is how loaded the queue is, 0 when idle and 1 at the busy
	// threshold of calls waiting (more above it, at most 2); it weighs the
	// cost of a pitch's handling time.
	Pressure float64
	// Report is the latest report, if any.
	Report *Report
	// Since, from the feed, is when the queue turned busy or calm (the
	// report that turned it), or when its state was first judged.
	Since time.Time
}
