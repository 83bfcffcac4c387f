// Package load keeps the contact centre's load: the latest report of each
// queue from the telephony platform's feed. The decision policy reads it to
// hold back offers in busy periods.
//
// A Board is safe for concurrent use. Reports live in memory only: a report
// is stale within minutes, so after a restart the feed's next report is
// what counts.
package load

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Report is one observation of a queue.
type Report struct {
	Queue              string
	CallsWaiting       uint32
	LongestWaitSeconds float64
	ServiceLevel       float64 // 0..1
	AgentsAvailable    uint32
	AsOf               time.Time
	ReceivedAt         time.Time
}

// MaxQueues bounds the number of queues a Board tracks, so that a
// misbehaving feed cannot grow memory without end.
const MaxQueues = 10_000

// ErrTooManyQueues is returned when a report names a new queue past
// MaxQueues.
var ErrTooManyQueues = fmt.Errorf("load: more than %d queues", MaxQueues)

// ErrFuture is returned for a report dated more than a minute ahead.
var ErrFuture = errors.New("load: as_of is more than a minute in the future")

// Board holds the latest report per queue.
type Board struct {
	mu     sync.RWMutex
	queues map[string]Report
}

// NewBoard returns an empty board.
func NewBoard() *Board { return &Board{queues: make(map[string]Report)} }

// Put stores r unless the board holds a later report for the queue. It
// returns the report now held and whether r was stored. A zero AsOf means
// ReceivedAt.
func (b *Board) Put(r Report) (Report, bool, error) {
	if r.AsOf.IsZero() {
		r.AsOf = r.ReceivedAt
	}
	if r.AsOf.After(r.ReceivedAt.Add(time.Minute)) {
		return Report{}, false, ErrFuture
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old, ok := b.queues[r.Queue]
	if ok && old.AsOf.After(r.AsOf) {
		return old, false, nil
	}
	if !ok && len(b.queues) >= MaxQueues {
		return Report{}, false, ErrTooManyQueues
	}
	b.queues[r.Queue] = r
	return r, true, nil
}

// Get returns the latest report for a queue.
func (b *Board) Get(queue string) (Report, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	r, ok := b.queues[queue]
	return r, ok
}
