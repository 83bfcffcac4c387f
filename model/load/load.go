// Package load keeps the contact centre's load: the latest report of each
// queue from the telephony platform's feed, and whether the queue is busy
// (thresholds with hysteresis; past a report's freshness, the scheduled
// busy windows; with neither, Unknown). The decision policy reads it to
// hold back offers in busy periods and to weigh a pitch's handling time.
//
// A Board is safe for concurrent use. On one node its reports live in
// memory only: a report is stale within minutes, so after a restart the
// feed's next report is what counts.
//
// Several replicas share one board through a Shared store (Redis): each
// queue's latest report and busy states are one value there, replaced by a
// compare-and-swap, so that a report to any replica moves the one busy/calm
// state every replica reads (two reports racing are applied one after the
// other, never both from the same old state). Each replica keeps a copy in
// memory for the Decide path and refreshes it (Refresh) every fraction of a
// second; a report it takes itself is in its copy at once.
package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Report is one observation of a queue. The telephony feed may leave any
// measure out: Has says which were reported, and an absent one is unknown,
// never zero. Only reported measures are judged against the thresholds.
type Report struct {
	Queue              string
	CallsWaiting       uint32
	LongestWaitSeconds float64
	ServiceLevel       float64 // 0..1
	AgentsAvailable    uint32
	Has                Measures
	AsOf               time.Time
	ReceivedAt         time.Time
}

// Measures is a set of a report's measures.
type Measures uint8

// The measures of a report.
const (
	HasCallsWaiting Measures = 1 << iota
	HasLongestWait
	HasServiceLevel
	HasAgentsAvailable

	// judged are the measures thresholds are set on: a report needs one.
	judged = HasCallsWaiting | HasLongestWait | HasServiceLevel
)

// Describe returns the reported measures in words, e.g. "25 calls
// waiting, service level 72%".
func (r *Report) Describe() string {
	var parts []string
	if r.Has&HasCallsWaiting != 0 {
		parts = append(parts, strconv.FormatUint(uint64(r.CallsWaiting), 10)+" calls waiting")
	}
	if r.Has&HasLongestWait != 0 {
		parts = append(parts, "longest wait "+strconv.FormatFloat(r.LongestWaitSeconds, 'f', -1, 64)+" s")
	}
	if r.Has&HasServiceLevel != 0 {
		parts = append(parts, "service level "+strconv.FormatFloat(r.ServiceLevel*100, 'f', 0, 64)+"%")
	}
	return strings.Join(parts, ", ")
}

// MaxQueues bounds the number of queues a Board tracks, so that a
// misbehaving feed cannot grow memory without end.
const MaxQueues = 10_000

// ErrTooManyQueues is returned when a report names a new queue past
// MaxQueues.
var ErrTooManyQueues = fmt.Errorf("load: more than %d queues", MaxQueues)

// ErrFuture is returned for a report dated more than a minute ahead.
var ErrFuture = errors.New("load: as_of is more than a minute in the future")

// ErrNothingJudged is returned for a report with none of the measures
// that say whether a queue is busy.
var ErrNothingJudged = errors.New("load: the report has none of calls_waiting, longest_wait_seconds and service_level")

// Board holds the latest report per queue, with whether the queue is busy.
type Board struct {
	mu     sync.RWMutex
	queues map[string]queue
	shared Shared // nil: this process only
}

// Shared keeps a board's queues where several replicas read and write
// them. A queue's state is an opaque value (see encodeQueue).
type Shared interface {
	// LoadState returns a queue's stored state, nil when there is none.
	LoadState(ctx context.Context, queue string) ([]byte, error)
	// SwapLoadState stores next as the queue's state if the stored state
	// is still prev (nil: none), and reports whether it did.
	SwapLoadState(ctx context.Context, queue string, prev, next []byte) (bool, error)
	// LoadStates returns every queue's stored state.
	LoadStates(ctx context.Context) (map[string][]byte, error)
}

type queue struct {
	r Report
	// busy after hysteresis as of r, per pair of busy and calm thresholds
	// (a policy's, and each experiment variant's that overrides them).
	busy map[hysteresis]bool
	// since is when each busy state turned (or was first judged): the
	// as_of of the report that turned it.
	since map[hysteresis]time.Time
}

// ErrContention is returned when a report could not be stored because
// other replicas kept changing the queue's state first.
var ErrContention = errors.New("load: the queue's state kept changing; retry")

type hysteresis struct{ busy, calm Thresholds }

// maxHysteresis bounds the threshold pairs tracked per queue.
const maxHysteresis = 32

func hysteresisOf(cfg *Config) hysteresis { return hysteresis{cfg.BusyWhen, cfg.CalmWhen} }

// next moves a busy state by one report.
func (h hysteresis) next(busy bool, r *Report) bool {
	switch {
	case h.busy.crossesBusy(r):
		return true
	case h.calm.calm(r):
		return false
	}
	return busy
}

// NewBoard returns an empty board of this process only.
func NewBoard() *Board { return &Board{queues: make(map[string]queue)} }

// NewSharedBoard returns a board kept in shared; call Refresh often to see
// the reports other replicas took.
func NewSharedBoard(shared Shared) *Board {
	return &Board{queues: make(map[string]queue), shared: shared}
}

// Put stores r unless the board holds a later report for the queue, and
// moves the queue's busy state by cfg's thresholds (with hysteresis). It
// returns the report now held and whether r was stored. A zero AsOf means
// ReceivedAt. On a shared board an error of the store is returned as it
// is.
func (b *Board) Put(ctx context.Context, r Report, cfg *Config) (Report, bool, error) {
	if r.AsOf.IsZero() {
		r.AsOf = r.ReceivedAt
	}
	if r.AsOf.After(r.ReceivedAt.Add(time.Minute)) {
		return Report{}, false, ErrFuture
	}
	if r.Has&judged == 0 {
		return Report{}, false, ErrNothingJudged
	}
	if b.shared == nil {
		b.mu.Lock()
		defer b.mu.Unlock()
		old, ok := b.queues[r.Queue]
		if !ok && len(b.queues) >= MaxQueues {
			return Report{}, false, ErrTooManyQueues
		}
		next, stored := advance(old, ok, r, cfg)
		b.queues[r.Queue] = next
		return next.r, stored, nil
	}
	for range 16 {
		raw, err := b.shared.LoadState(ctx, r.Queue)
		if err != nil {
			return Report{}, false, err
		}
		old, ok, err := decodeQueue(raw)
		if err != nil {
			return Report{}, false, err
		}
		if !ok && b.count() >= MaxQueues {
			return Report{}, false, ErrTooManyQueues
		}
		next, stored := advance(old, ok, r, cfg)
		if stored {
			swapped, err := b.shared.SwapLoadState(ctx, r.Queue, raw, encodeQueue(&next))
			if err != nil {
				return Report{}, false, err
			}
			if !swapped {
				continue // another replica stored a report first: apply r after it
			}
		}
		b.mu.Lock()
		b.queues[r.Queue] = next
		b.mu.Unlock()
		return next.r, stored, nil
	}
	return Report{}, false, ErrContention
}

// advance applies r to a queue's state: unless the state holds a later
// report, r becomes its report and moves its busy states by cfg's
// thresholds (with hysteresis). It reports whether r was taken.
func advance(old queue, exists bool, r Report, cfg *Config) (queue, bool) {
	if exists && old.r.AsOf.After(r.AsOf) {
		return old, false
	}
	// A queue whose last report went stale starts again from the new one.
	fresh := exists && r.AsOf.Sub(old.r.AsOf) <= cfg.StaleAfter
	busy := make(map[hysteresis]bool, len(old.busy)+1)
	since := make(map[hysteresis]time.Time, len(old.busy)+1)
	for h, was := range old.busy {
		busy[h] = h.next(fresh && was, &r)
		since[h] = old.since[h]
		if busy[h] != was || since[h].IsZero() {
			since[h] = r.AsOf
		}
	}
	// The thresholds of this report's policy are tracked from now on (the
	// loop above moved them if they were already).
	if h := hysteresisOf(cfg); len(busy) < maxHysteresis {
		if _, tracked := busy[h]; !tracked {
			busy[h], since[h] = h.next(false, &r), r.AsOf
		}
	}
	return queue{r: r, busy: busy, since: since}, true
}

func (b *Board) count() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.queues)
}

// Refresh replaces the board's copy with the shared store's queues (a
// board of this process only has nothing to do). On an error the copy is
// kept: its reports go stale in time, and then the busy windows decide.
func (b *Board) Refresh(ctx context.Context) error {
	if b.shared == nil {
		return nil
	}
	all, err := b.shared.LoadStates(ctx)
	if err != nil {
		return err
	}
	queues := make(map[string]queue, len(all))
	for name, raw := range all {
		q, ok, err := decodeQueue(raw)
		if err != nil || !ok {
			continue // a value this version cannot read is not trusted
		}
		queues[name] = q
	}
	b.mu.Lock()
	b.queues = queues
	b.mu.Unlock()
	return nil
}

// wireQueue is a queue's state as the shared store keeps it.
type wireQueue struct {
	Report Report     `json:"report"`
	Busy   []wireBusy `json:"busy"`
}

type wireBusy struct {
	BusyWhen Thresholds `json:"busy_when"`
	CalmWhen Thresholds `json:"calm_when"`
	Busy     bool       `json:"busy"`
	Since    time.Time  `json:"since,omitzero"`
}

func encodeQueue(q *queue) []byte {
	w := wireQueue{Report: q.r, Busy: make([]wireBusy, 0, len(q.busy))}
	for h, busy := range q.busy {
		w.Busy = append(w.Busy, wireBusy{BusyWhen: h.busy, CalmWhen: h.calm, Busy: busy, Since: q.since[h]})
	}
	raw, err := json.Marshal(&w)
	if err != nil {
		panic(fmt.Sprintf("load: encode a queue: %v", err)) // plain values: cannot fail
	}
	return raw
}

// decodeQueue reads a stored state; nil is none (ok false).
func decodeQueue(raw []byte) (queue, bool, error) {
	if raw == nil {
		return queue{}, false, nil
	}
	var w wireQueue
	if err := json.Unmarshal(raw, &w); err != nil {
		return queue{}, false, fmt.Errorf("load: decode a queue's state: %w", err)
	}
	q := queue{r: w.Report, busy: make(map[hysteresis]bool, len(w.Busy)), since: make(map[hysteresis]time.Time, len(w.Busy))}
	for _, b := range w.Busy {
		h := hysteresis{b.BusyWhen, b.CalmWhen}
		q.busy[h], q.since[h] = b.Busy, b.Since
	}
	return q, true, nil
}

// Status returns the queue's state at now: from its latest report while
// that is fresh, else from the busy windows, else Unknown.
func (b *Board) Status(name string, now time.Time, cfg *Config) Status {
	h := hysteresisOf(cfg)
	b.mu.RLock()
	q, ok := b.queues[name]
	busy, known := q.busy[h]
	since := q.since[h]
	b.mu.RUnlock()
	if ok && now.Sub(q.r.AsOf) <= cfg.StaleAfter {
		if !known {
			busy, since = b.track(name, h), q.r.AsOf
		}
		st := Status{Busy: busy, Source: FromFeed, Report: &q.r, Since: since}
		switch t := cfg.BusyWhen; {
		case t.CallsWaiting > 0 && q.r.Has&HasCallsWaiting != 0:
			st.Pressure = float64(q.r.CallsWaiting) / float64(t.CallsWaiting)
		case t.LongestWaitSeconds > 0 && q.r.Has&HasLongestWait != 0:
			st.Pressure = q.r.LongestWaitSeconds / t.LongestWaitSeconds
		}
		if busy {
			st.Pressure = max(st.Pressure, 1)
		}
		st.Pressure = min(st.Pressure, 2)
		return st
	}
	var last *Report
	if ok {
		last = &q.r
	}
	if len(cfg.BusyWindows) > 0 {
		busy := cfg.InWindow(now)
		st := Status{Busy: busy, Source: FromSchedule, Report: last}
		if busy {
			st.Pressure = 1
		}
		return st
	}
	// Nothing to go by: weigh a pitch as in a busy period.
	return Status{Source: Unknown, Pressure: 1, Report: last}
}

// track starts following a queue's busy state by thresholds first seen
// after its latest report (an experiment variant's): busy if that report
// crosses them, as there is no history to hold it.
func (b *Board) track(name string, h hysteresis) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.queues[name]
	if busy, ok := q.busy[h]; ok {
		return busy
	}
	busy := h.busy.crossesBusy(&q.r)
	if len(q.busy) < maxHysteresis {
		m := maps.Clone(q.busy)
		if m == nil {
			m = map[hysteresis]bool{}
		}
		m[h] = busy
		q.busy = m
		sm := maps.Clone(q.since)
		if sm == nil {
			sm = map[hysteresis]time.Time{}
		}
		sm[h] = q.r.AsOf
		q.since = sm
		b.queues[name] = q
	}
	return busy
}

// Get returns the latest report for a queue.
func (b *Board) Get(queue string) (Report, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	q, ok := b.queues[queue]
	return q.r, ok
}

// Queues returns the names of the queues with a report, sorted.
func (b *Board) Queues() []string {
	b.mu.RLock()
	names := make([]string, 0, len(b.queues))
	for name := range b.queues {
		names = append(names, name)
	}
	b.mu.RUnlock()
	slices.Sort(names)
	return names
}
