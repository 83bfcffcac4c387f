package load

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBoardKeepsLatest(t *testing.T) {
	b := NewBoard()
	cfg := DefaultConfig()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if _, ok := b.Get("q"); ok {
		t.Fatal("empty board has a report")
	}
	if _, stored, err := b.Put(t.Context(), Report{Has: allMeasures, Queue: "q", CallsWaiting: 5, AsOf: t0, ReceivedAt: t0}, &cfg); err != nil || !stored {
		t.Fatalf("Put: %v %v", stored, err)
	}
	held, stored, err := b.Put(t.Context(), Report{Has: allMeasures, Queue: "q", CallsWaiting: 1, AsOf: t0.Add(-time.Second), ReceivedAt: t0}, &cfg)
	if err != nil || stored || held.CallsWaiting != 5 {
		t.Errorf("older Put: held %+v stored %v err %v; want the newer report kept", held, stored, err)
	}
	if _, stored, _ := b.Put(t.Context(), Report{Has: allMeasures, Queue: "q", CallsWaiting: 9, ReceivedAt: t0.Add(time.Second)}, &cfg); !stored {
		t.Error("report without as_of (taken as received) not stored")
	}
	if r, _ := b.Get("q"); r.CallsWaiting != 9 || !r.AsOf.Equal(t0.Add(time.Second)) {
		t.Errorf("Get = %+v, want 9 waiting as of receipt", r)
	}
	if _, _, err := b.Put(t.Context(), Report{Has: allMeasures, Queue: "q", AsOf: t0.Add(2 * time.Minute), ReceivedAt: t0}, &cfg); !errors.Is(err, ErrFuture) {
		t.Errorf("future report: %v, want ErrFuture", err)
	}
}

func TestBoardBounded(t *testing.T) {
	b := NewBoard()
	cfg := DefaultConfig()
	now := time.Now()
	for i := range MaxQueues {
		if _, _, err := b.Put(t.Context(), Report{Has: allMeasures, Queue: fmt.Sprint(i), ReceivedAt: now}, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := b.Put(t.Context(), Report{Has: allMeasures, Queue: "one-more", ReceivedAt: now}, &cfg); !errors.Is(err, ErrTooManyQueues) {
		t.Errorf("queue past the limit: %v, want ErrTooManyQueues", err)
	}
	if _, stored, err := b.Put(t.Context(), Report{Has: allMeasures, Queue: "0", ReceivedAt: now.Add(time.Second)}, &cfg); err != nil || !stored {
		t.Errorf("update of a known queue at the limit: %v %v", stored, err)
	}
}

func TestBusyHysteresisStalenessAndSchedule(t *testing.T) {
	cfg := DefaultConfig() // busy at 20 waiting, calm below 10
	cfg.TimeZone = "Europe/Amsterdam"
	if err := cfg.Validate("load"); err != nil {
		t.Fatal(err)
	}
	b := NewBoard()
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) // a Monday, 10:00 in Amsterdam
	steps := []struct {
		name    string
		waiting uint32
		sl      float64
		want    bool
	}{
		{"quiet", 3, 0.95, false},
		{"between the thresholds, from calm: stays calm", 15, 0.95, false},
		{"crosses calls waiting", 20, 0.95, true},
		{"between the thresholds, from busy: stays busy", 12, 0.95, true},
		{"calls calm but service level not yet", 5, 0.82, true},
		{"under every calm threshold", 5, 0.9, false},
		{"service level alone crosses", 0, 0.7, true},
	}
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		if _, _, err := b.Put(t.Context(), Report{Has: allMeasures, Queue: "q", CallsWaiting: s.waiting, ServiceLevel: s.sl, AsOf: at, ReceivedAt: at}, &cfg); err != nil {
			t.Fatal(err)
		}
		st := b.Status("q", at, &cfg)
		if st.Busy != s.want || st.Source != FromFeed {
			t.Errorf("%s: busy %v from %v, want %v from the feed", s.name, st.Busy, st.Source, s.want)
		}
	}
	later := t0.Add(10 * time.Minute)
	if st := b.Status("q", later, &cfg); st.Source != Unknown || st.Busy {
		t.Errorf("stale report, no windows: %+v, want Unknown and not busy", st)
	}
	cfg.BusyWindows = []Window{{Days: []string{"mon", "tue"}, From: "09:30", To: "11:00"}}
	if err := cfg.Validate("load"); err != nil {
		t.Fatal(err)
	}
	if st := b.Status("q", later, &cfg); st.Source != FromSchedule || !st.Busy {
		t.Errorf("stale report at 10:10 Amsterdam on a Monday in a 09:30-11:00 window: %+v, want busy from the schedule", st)
	}
	if st := b.Status("q", later.Add(2*time.Hour), &cfg); st.Source != FromSchedule || st.Busy {
		t.Errorf("after the window: %+v, want not busy from the schedule", st)
	}
	if st := b.Status("never-reported", later, &cfg); st.Source != FromSchedule || !st.Busy {
		t.Errorf("queue never reported, in a window: %+v, want busy from the schedule", st)
	}
	// A fresh report after staleness decides again, from scratch.
	if _, _, err := b.Put(t.Context(), Report{Has: allMeasures, Queue: "q", CallsWaiting: 15, ServiceLevel: 0.95, AsOf: later, ReceivedAt: later}, &cfg); err != nil {
		t.Fatal(err)
	}
	if st := b.Status("q", later, &cfg); st.Busy || st.Source != FromFeed {
		t.Errorf("fresh report between thresholds after a stale busy one: %+v, want calm from the feed", st)
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	cfg := Config{
		BusyWhen:    Thresholds{CallsWaiting: 10, ServiceLevel: 1.5},
		CalmWhen:    Thresholds{CallsWaiting: 12},
		TimeZone:    "Mars/Olympus",
		BusyWindows: []Window{{Days: []string{"mon", "funday"}, From: "9:00", To: "08:00"}},
	}
	err := cfg.Validate("load")
	for _, want := range []string{
		"load.busy_when.service_level", "load.calm_when.calls_waiting", "load.stale_after",
		"load.time_zone", `unknown day "funday"`, "load.busy_windows[0].from",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to name %s", err, want)
		}
	}
}

// TestBusyPerThresholds: an experiment variant with its own thresholds
// gets its own hysteresis on the same reports.
func TestBusyPerThresholds(t *testing.T) {
	b := NewBoard()
	base := DefaultConfig() // busy at 20 waiting, calm under 10
	strict := DefaultConfig()
	strict.BusyWhen.CallsWaiting, strict.CalmWhen.CallsWaiting = 8, 4
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	put := func(waiting uint32, at time.Duration) {
		t.Helper()
		if _, _, err := b.Put(t.Context(), Report{Has: allMeasures, Queue: "q", CallsWaiting: waiting, ServiceLevel: 0.9, AsOf: t0.Add(at), ReceivedAt: t0.Add(at)}, &base); err != nil {
			t.Fatal(err)
		}
	}
	busy := func(cfg *Config, at time.Duration) bool { return b.Status("q", t0.Add(at), cfg).Busy }

	put(9, 0)
	// The strict thresholds are first asked for now: 9 crosses 8.
	if busy(&base, 0) || !busy(&strict, 0) {
		t.Fatalf("9 waiting: base busy %v (want false), strict %v (want true)", busy(&base, 0), busy(&strict, 0))
	}
	put(6, time.Second) // between strict's calm (4) and busy (8): stays busy
	if busy(&base, time.Second) || !busy(&strict, time.Second) {
		t.Errorf("6 waiting: strict should hold busy by hysteresis")
	}
	put(3, 2*time.Second)
	if busy(&strict, 2*time.Second) {
		t.Errorf("3 waiting: strict should be calm")
	}
	put(25, 3*time.Second)
	put(15, 4*time.Second) // base holds busy between 10 and 20
	if !busy(&base, 4*time.Second) || !busy(&strict, 4*time.Second) {
		t.Errorf("15 after 25: both busy; base %v strict %v", busy(&base, 4*time.Second), busy(&strict, 4*time.Second))
	}
}

const allMeasures = HasCallsWaiting | HasLongestWait | HasServiceLevel | HasAgentsAvailable

// TestAbsentMeasuresAreUnknown: only the measures a report carries are
// judged; an absent one is not zero (a report of 0 calls waiting alone
// was busy, its service level read as 0); a report with nothing to judge
// is refused.
func TestAbsentMeasuresAreUnknown(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate("load"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	steps := []struct {
		name     string
		r        Report
		wantBusy bool
	}{
		{"0 waiting alone is calm", Report{CallsWaiting: 0, Has: HasCallsWaiting}, false},
		{"service level alone, low: busy", Report{ServiceLevel: 0.5, Has: HasServiceLevel}, true},
		{"0 waiting alone after busy: calm", Report{Has: HasCallsWaiting}, false},
		{"30 waiting: busy", Report{CallsWaiting: 30, Has: HasCallsWaiting}, true},
		{"a wait between the calm and busy lines, with agents: stays busy", Report{LongestWaitSeconds: 90, AgentsAvailable: 4, Has: HasLongestWait | HasAgentsAvailable}, true},
		{"a short wait alone: calm", Report{LongestWaitSeconds: 10, Has: HasLongestWait}, false},
	}
	b := NewBoard()
	for i, s := range steps {
		at := t0.Add(time.Duration(i) * time.Second)
		s.r.Queue, s.r.AsOf, s.r.ReceivedAt = "q", at, at
		if _, _, err := b.Put(t.Context(), s.r, &cfg); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if st := b.Status("q", at, &cfg); st.Busy != s.wantBusy {
			t.Errorf("%s: busy %v, want %v", s.name, st.Busy, s.wantBusy)
		}
	}
	if _, _, err := b.Put(t.Context(), Report{Queue: "q", AgentsAvailable: 3, Has: HasAgentsAvailable, ReceivedAt: t0.Add(time.Minute)}, &cfg); !errors.Is(err, ErrNothingJudged) {
		t.Errorf("a report of agents only: %v, want ErrNothingJudged", err)
	}
	r := Report{CallsWaiting: 25, ServiceLevel: 0.72, Has: HasCallsWaiting | HasServiceLevel}
	if got, want := r.Describe(), "25 calls waiting, service level 72%"; got != want {
		t.Errorf("Describe() = %q, want %q", got, want)
	}
}

// memShared is a hand-written Shared in memory, for the boards of several
// "replicas" in one test; interfere, when set, changes a queue's state
// just before a swap (another replica getting there first).
type memShared struct {
	mu        sync.Mutex
	m         map[string][]byte
	interfere func()
}

func (s *memShared) LoadState(_ context.Context, q string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[q], nil
}

func (s *memShared) SwapLoadState(_ context.Context, q string, prev, next []byte) (bool, error) {
	if f := s.interfere; f != nil {
		s.interfere = nil
		f()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if string(s.m[q]) != string(prev) {
		return false, nil
	}
	s.m[q] = next
	return true, nil
}

func (s *memShared) LoadStates(context.Context) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m), nil
}

// TestSharedBoardOneState: a report to one replica's board governs the
// others after a refresh, with one hysteresis state; a report that loses
// a race to another replica's is applied after it, not beside it.
func TestSharedBoardOneState(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate("load"); err != nil {
		t.Fatal(err)
	}
	shared := &memShared{m: map[string][]byte{}}
	a, b := NewSharedBoard(shared), NewSharedBoard(shared)
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	put := func(board *Board, waiting uint32, at time.Time) {
		t.Helper()
		if _, _, err := board.Put(t.Context(), Report{Queue: "q", CallsWaiting: waiting, Has: HasCallsWaiting, AsOf: at, ReceivedAt: at}, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	busyOn := func(board *Board, at time.Time) bool {
		t.Helper()
		if err := board.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		return board.Status("q", at, &cfg).Busy
	}
	put(a, 30, t0) // busy
	if !busyOn(b, t0) {
		t.Fatal("replica b does not see the busy report sent to a")
	}
	put(b, 15, t0.Add(time.Second)) // between the lines: stays busy, by a's history
	if !busyOn(a, t0.Add(time.Second)) {
		t.Error("a report between calm and busy, sent to b, turned a's queue calm: the hysteresis is not shared")
	}
	// b's next report races one from a: a's is stored first, b's applied after it.
	shared.interfere = func() { put(a, 5, t0.Add(2*time.Second)) }
	put(b, 40, t0.Add(3*time.Second))
	if !busyOn(a, t0.Add(3*time.Second)) {
		t.Error("the report that lost the race was dropped")
	}
	if got, _ := a.Get("q"); got.CallsWaiting != 40 {
		t.Errorf("stored report: %d calls waiting, want the later report's 40", got.CallsWaiting)
	}
}

// TestStatusSaysWhenTheQueueTurned: Since is the report that turned the
// queue busy or calm, not the latest one; it survives a shared board's
// round trip.
func TestStatusSaysWhenTheQueueTurned(t *testing.T) {
	cfg := DefaultConfig() // busy at 20 waiting, calm below 10
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	b := NewBoard()
	for i, waiting := range []uint32{3, 25, 15, 12, 4, 5} {
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		if _, _, err := b.Put(t.Context(), Report{Has: HasCallsWaiting, Queue: "q", CallsWaiting: waiting, AsOf: at, ReceivedAt: at}, &cfg); err != nil {
			t.Fatal(err)
		}
		st := b.Status("q", at, &cfg)
		want := map[int]time.Duration{0: 0, 1: 10 * time.Second, 2: 10 * time.Second, 3: 10 * time.Second, 4: 40 * time.Second, 5: 40 * time.Second}[i]
		if !st.Since.Equal(t0.Add(want)) {
			t.Errorf("after report %d (%d waiting, busy %v): since %v, want %v", i, waiting, st.Busy, st.Since.Sub(t0), want)
		}
	}
	q, ok, err := decodeQueue(encodeQueue(&queue{r: Report{Queue: "q"}, busy: map[hysteresis]bool{hysteresisOf(&cfg): true}, since: map[hysteresis]time.Time{hysteresisOf(&cfg): t0}}))
	if err != nil || !ok || !q.since[hysteresisOf(&cfg)].Equal(t0) {
		t.Errorf("since after a round trip: %v, %v, %v", q.since, ok, err)
	}
}
