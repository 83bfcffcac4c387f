package features

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DecisionSink stores batches of decision records durably.
type DecisionSink interface {
	SaveDecisions(ctx context.Context, recs []DecisionRecord) error
}

var _ DecisionSink = (*Bolt)(nil)

// DecisionLog writes decision records to a sink in the background, so that
// logging never sits on the Decide path. Append never blocks: records are
// queued in a bounded buffer and written in batches (up to maxBatch records,
// or whatever is queued after flushEvery). When the buffer is full the
// record is dropped and counted in Dropped; a dropped decision can still be
// answered, but outcomes for it cannot be attributed.
//
// A batch the sink cannot write because storage is unavailable (a full
// disk: ErrUnavailable) is kept and written again every flushEvery, while
// new records wait in the buffer; one warning is logged when writes start
// failing and one when they succeed again. A batch that fails otherwise,
// or still fails at Close, is logged and counted in Failed.
//
// Commit queues a record and waits until it is durable: a group commit,
// written at once with whatever else is queued, so that a decision whose
// answer must survive a crash (an offer, on the embedded store) is on disk
// before it is given.
//
// With a journal (NewJournaledDecisionLog) Commit waits instead for the
// record to be in the journal, an appended file synced once for every
// record waiting then; the record reaches the sink in the ordinary
// batches, and the journal's segments are removed once the sink holds
// them. Its caller is answered once the journal holds the record, even
// while the sink cannot take it (storage down and the buffer full): a
// Flush then says the decisions wait to be written.
//
// It is safe for concurrent use. Close flushes what is queued.
type DecisionLog struct {
	sink   DecisionSink
	logger *slog.Logger
	queue  chan logEntry
	flush  chan chan error
	done   chan struct{}

	journal *Journal        // nil: Commit waits for the sink
	jqueue  chan logEntry   // Commit's records, to the journal writer
	jflush  chan chan error // Flush, through the journal writer
	jdone   chan struct{}   // closed when the journal writer ends
	jfailed atomic.Bool     // the last journal write failed (logged once)

	closeOnce sync.Once
	closed    atomic.Bool
	dropped   atomic.Uint64
	failed    atomic.Uint64
	written   atomic.Uint64
}

const (
	maxBatch   = 512
	flushEvery = 50 * time.Millisecond
	// journaledFlushEvery is flushEvery with a journal.
	journaledFlushEvery = 250 * time.Millisecond
)

// logEntry is a queued record; done, when set, takes the result of the
// write that contains it.
type logEntry struct {
	rec  DecisionRecord
	done chan error
	// state, for a committed record: pending, claimed by a write under
	// way, or withdrawn by a Commit that gave up waiting (its answer was
	// not the offer, and the record is written without it).
	state *atomic.Int32
	// seg is the journal segment that holds rec; 0 when none does.
	seg uint64
}

// The states of a committed record.
const (
	commitPending int32 = iota
	commitClaimed
	commitWithdrawn
	// commitAbandoned: claimed by a write under way when the caller gave
	// up; a write that holds its batch withdraws it and answers the caller.
	commitAbandoned
)

// ErrLogFull is returned by Commit when the log's buffer is full.
var ErrLogFull = errors.New("features: decision log buffer full")

// errLogClosed is returned by Commit and Flush once the log is closed.
var errLogClosed = errors.New("features: decision log is closed")

// waiting is Flush's answer while n decisions wait for storage to take
// them: unavailable, retry.
func waiting(n int) error {
	return &StorageError{Op: "write decisions", Where: "decision log", Err: fmt.Errorf("%d decisions wait to be written", n)}
}

// NewDecisionLog starts a log that buffers up to size records.
func NewDecisionLog(sink DecisionSink, size int, logger *slog.Logger) *DecisionLog {
	l := newDecisionLog(sink, size, logger)
	go l.run()
	return l
}

// newDecisionLog makes a log without starting it.
func newDecisionLog(sink DecisionSink, size int, logger *slog.Logger) *DecisionLog {
	if size < 1 {
		size = 1
	}
	return &DecisionLog{
		sink:   sink,
		logger: logger,
		queue:  make(chan logEntry, size),
		flush:  make(chan chan error),
		done:   make(chan struct{}),
	}
}

// DecisionRestorer writes decisions read back from a journal, with the
// offers they gave, skipping those it holds already.
type DecisionRestorer interface {
	DecisionSink
	RestoreDecisions(ctx context.Context, recs []DecisionRecord) (restored int, err error)
}

var _ DecisionRestorer = (*Bolt)(nil)

// NewJournaledDecisionLog starts a log whose Commit waits for the journal
// j rather than the sink. The records j holds from an earlier run (a
// crash) are written to sink first; it returns how many were missing
// there.
func NewJournaledDecisionLog(ctx context.Context, sink DecisionRestorer, j *Journal, size int, logger *slog.Logger) (*DecisionLog, int, error) {
	recs, next, err := j.Records()
	if err != nil {
		return nil, 0, err
	}
	restored := 0
	for chunk := range slices.Chunk(recs, 4096) {
		n, err := sink.RestoreDecisions(ctx, chunk)
		if err != nil {
			return nil, restored, fmt.Errorf("features: restore the journal's decisions: %w", err)
		}
		restored += n
	}
	if err := j.Release(next); err != nil {
		return nil, restored, &StorageError{Op: "remove journal segments", Where: j.dir, Err: err}
	}
	l := newDecisionLog(sink, size, logger)
	l.journal, l.jqueue, l.jflush, l.jdone = j, make(chan logEntry, cap(l.queue)), make(chan chan error), make(chan struct{})
	go l.run()
	go l.journalWriter()
	return l, restored, nil
}

// Append queues a record. It returns false when the record was dropped
// because the buffer is full or the log is closed.
func (l *DecisionLog) Append(rec DecisionRecord) bool {
	if l.closed.Load() {
		l.dropped.Add(1)
		return false
	}
	select {
	case l.queue <- logEntry{rec: rec}:
		return true
	default:
		l.dropped.Add(1)
		return false
	}
}

// Commit queues rec and waits until it is written durably, written at
// once with whatever else waits. It returns ErrLogFull when the buffer is
// full, ctx's error when ctx ends first (the record may still be written),
// and the write's error; while storage is unavailable it waits for the
// retries.
func (l *DecisionLog) Commit(ctx context.Context, rec DecisionRecord) error {
	if l.closed.Load() {
		return errLogClosed
	}
	done := make(chan error, 1)
	state := new(atomic.Int32)
	queue := l.queue
	if l.journal != nil {
		queue = l.jqueue
	}
	select {
	case queue <- logEntry{rec: rec, done: done, state: state}:
	default:
		l.dropped.Add(1)
		return ErrLogFull
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The caller will answer without the offer: the record, written
		// later, must not say it was given (see withdraw). A write under
		// way already has it: its result is the answer (bounded by the
		// write's own timeout), unless storage is unavailable and the
		// write holds the batch, which hands the record back (pending)
		// and it can be withdrawn after all.
		for {
			if state.CompareAndSwap(commitPending, commitWithdrawn) {
				return ctx.Err()
			}
			if state.CompareAndSwap(commitClaimed, commitAbandoned) {
				// The write's result is the answer; a write that holds
				// the batch withdraws the record and says so.
				return <-done
			}
			select {
			case err := <-done: // the write finished between the two
				return err
			default:
			}
		}
	}
}

// answer gives a Commit its result, once: a waiter told already has its
// answer in the channel's one slot or has read it.
func answer(done chan error, err error) {
	select {
	case done <- err:
	default:
	}
}

// withdraw turns a committed decision whose caller gave up waiting into
// what was answered: no offer, degraded.
func withdraw(rec *DecisionRecord) {
	rec.Action, rec.Products, rec.Degraded, rec.Reason = "no_offer", nil, true, "history_unavailable"
}

// Flush waits until every record queued before the call is written (or its
// write failed), or ctx ends. While storage is unavailable and records
// wait to be written again, it returns an error matching ErrUnavailable.
func (l *DecisionLog) Flush(ctx context.Context) error {
	ack := make(chan error, 1)
	to, closed := l.flush, l.done
	if l.journal != nil {
		// Through the journal writer: a record whose Commit was answered
		// is in the sink's queue before the flush reaches it.
		to, closed = l.jflush, l.jdone
	}
	select {
	case to <- ack:
	case <-closed:
		return errLogClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ack:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting records, writes what is queued and returns when done
// or when ctx ends.
func (l *DecisionLog) Close(ctx context.Context) error {
	l.closeOnce.Do(func() {
		l.closed.Store(true)
		if l.journal != nil {
			close(l.jqueue)
			<-l.jdone // its records are in the queue
		}
		close(l.queue)
	})
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Dropped returns how many records were dropped because the buffer was full
// or the log closed.
func (l *DecisionLog) Dropped() uint64 { return l.dropped.Load() }

// Failed returns how many records the sink failed to write.
func (l *DecisionLog) Failed() uint64 { return l.failed.Load() }

// Written returns how many records were written.
func (l *DecisionLog) Written() uint64 { return l.written.Load() }

// Pending returns how many records wait in the buffer.
func (l *DecisionLog) Pending() int { return len(l.queue) + len(l.jqueue) }

// journaled logs the journal's first failure, and its first success after.
func (l *DecisionLog) journaled(records int, err error) {
	switch {
	case err != nil && !l.jfailed.Swap(true):
		l.logger.Error("decision log: journal cannot be written; offers are withdrawn until it can", "records", records, "err", err)
	case err == nil && records > 0 && l.jfailed.Swap(false):
		l.logger.Warn("decision log: journal written again", "records", records)
	}
}

// journalWriter writes Commit's records to the journal: every record
// waiting at once, with one sync; then it answers their callers, and then
// passes the records to the sink's queue. A Flush goes through it, so
// that a record whose caller was answered is queued before the flush. A
// record whose caller gave up waiting first is passed on withdrawn,
// unjournaled; when the journal cannot be written the records are
// withdrawn and their callers told the error.
//
// While the sink's queue is full (storage down for long), the callers are
// answered all the same (their records are in the journal, and a crash
// restores them) and a Flush is told the decisions wait to be written.
// (The callers used to be answered after the queue took their records:
// a full queue held them, past every deadline, until storage was back.)
func (l *DecisionLog) journalWriter() {
	defer close(l.jdone)
	var group []logEntry
	var recs []*DecisionRecord
	var written []bool // group[i] was claimed for the write
	var tick <-chan time.Time
	if l.journal.syncEvery > 0 {
		t := time.NewTicker(l.journal.syncEvery)
		defer t.Stop()
		tick = t.C
	}
	// flush passes a Flush on to the sink's writer, after the records
	// queued before it (without holding the journal writer).
	flush := func(ack chan error) {
		go func() {
			select {
			case l.flush <- ack:
			case <-l.done:
				ack <- errLogClosed
				close(ack)
			}
		}()
	}
	// hand passes a record to the sink's queue; only while the queue is
	// full (storage behind) is a Flush answered meanwhile.
	hand := func(e logEntry) {
		select {
		case l.queue <- e:
			return
		default:
		}
		for {
			select {
			case l.queue <- e:
				return
			case ack := <-l.jflush:
				ack <- waiting(len(l.queue) + len(l.jqueue) + 1)
				close(ack)
			}
		}
	}
	for {
		var e logEntry
		select {
		case <-tick:
			l.journaled(0, l.journal.Sync())
			continue
		case ack := <-l.jflush:
			flush(ack)
			continue
		case got, ok := <-l.jqueue:
			if !ok {
				return
			}
			e = got
		}
		group = append(group[:0], e)
	more:
		for len(group) < maxBatch {
			select {
			case e, ok := <-l.jqueue:
				if !ok {
					break more
				}
				group = append(group, e)
			default:
				break more
			}
		}
		recs, written = recs[:0], written[:0]
		for i := range group {
			claimed := group[i].state.CompareAndSwap(commitPending, commitClaimed)
			written = append(written, claimed)
			if claimed {
				recs = append(recs, &group[i].rec)
			} else {
				withdraw(&group[i].rec)
			}
		}
		seg, err := l.journal.Append(recs)
		l.journaled(len(recs), err)
		// A record claimed above is answered by this write's result,
		// whether its caller still waits (claimed) or gave up during the
		// write (abandoned: Commit waits for this answer all the same).
		for i := range group {
			if written[i] {
				if err != nil {
					withdraw(&group[i].rec)
				} else {
					group[i].seg = seg
				}
				group[i].done <- err
			}
		}
		for i := range group {
			hand(logEntry{rec: group[i].rec, seg: group[i].seg})
		}
	}
}

func (l *DecisionLog) run() {
	defer close(l.done)
	batch := make([]DecisionRecord, 0, maxBatch)
	var dones []chan error     // of the batch's committed records
	var states []*atomic.Int32 // the same records' commit states
	var committedAt []int      // and their places in batch
	var first, seg uint64      // the oldest and newest journal segments in batch
	var keep uint64            // the oldest segment of a batch lost: the journal keeps it for the next start
	lost := false              // a batch was lost
	defer func() {
		if l.journal != nil {
			if err := l.journal.Close(!lost); err != nil {
				l.logger.Warn("decision log: journal not closed cleanly", "err", err)
			}
		}
	}()
	every := flushEvery
	if l.journal != nil {
		// The records are safe in the journal: larger batches, fewer
		// commits of the file.
		every = journaledFlushEvery
	}
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	var failingSince time.Time // zero while writes succeed
	var attempts int
	// write writes the batch; it reports false when storage is unavailable
	// and the batch is kept to be written again (unless final).
	write := func(final bool) bool {
		if len(batch) == 0 {
			return true
		}
		for i, st := range states {
			if !st.CompareAndSwap(commitPending, commitClaimed) && st.Load() == commitWithdrawn {
				withdraw(&batch[committedAt[i]])
			}
		}
		// The sink write is bounded so that a stuck disk cannot hold the
		// log forever.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := l.sink.SaveDecisions(ctx, batch)
		cancel()
		switch {
		case err == nil:
			l.written.Add(uint64(len(batch)))
			if keep > 0 {
				seg = min(seg, keep)
			}
			if seg > 0 {
				// Every record of the segments before seg is written.
				if err := l.journal.Release(seg); err != nil {
					l.logger.Warn("decision log: journal segments not removed", "err", err)
				}
			}
			if !failingSince.IsZero() {
				l.logger.Warn("decision log: writing again", "records", len(batch), "failed_attempts", attempts, "down_for", time.Since(failingSince).Round(time.Millisecond).String())
				failingSince, attempts = time.Time{}, 0
			}
		case errors.Is(err, ErrUnavailable) && !final:
			// Held: the waiters may give up (and withdraw) until the
			// next attempt claims their records again; one that gave up
			// during this attempt is withdrawn now and told.
			for i, st := range states {
				if st.CompareAndSwap(commitAbandoned, commitWithdrawn) {
					answer(dones[i], err)
				} else {
					st.CompareAndSwap(commitClaimed, commitPending)
				}
			}
			attempts++
			if failingSince.IsZero() {
				failingSince = time.Now()
				l.logger.Error("decision log: storage unavailable; holding the batch and retrying", "records", len(batch), "err", err)
			}
			return false
		default:
			lost = true
			if first > 0 && (keep == 0 || first < keep) {
				keep = first
			}
			l.failed.Add(uint64(len(batch)))
			l.logger.Error("decision log: write failed; records lost", "records", len(batch), "err", err)
		}
		for _, d := range dones {
			answer(d, err) // a withdrawn one was told already
		}
		batch, dones, states, committedAt, seg = batch[:0], dones[:0], states[:0], committedAt[:0], 0
		first = 0
		return true
	}
	add := func(e logEntry) (urgent bool) {
		batch = append(batch, e.rec)
		if e.seg > 0 {
			seg = max(seg, e.seg)
			if first == 0 {
				first = e.seg
			}
		}
		if e.done != nil {
			dones = append(dones, e.done)
			states, committedAt = append(states, e.state), append(committedAt, len(batch)-1)
			return true
		}
		return false
	}
	// drain moves what is queued now into batches; it stops early when a
	// batch cannot be written (the rest waits in the buffer).
	drain := func() (open bool) {
		for {
			if len(batch) >= maxBatch && !write(false) {
				return true
			}
			select {
			case e, ok := <-l.queue:
				if !ok {
					return false
				}
				add(e)
			default:
				return true
			}
		}
	}
	for {
		// A full batch that could not be written stops the reading: new
		// records wait in the buffer, and past it are dropped and counted.
		queue := l.queue
		if len(batch) >= maxBatch {
			queue = nil
		}
		select {
		case e, ok := <-queue:
			if !ok {
				write(true)
				return
			}
			if add(e) {
				// Someone waits: write now, with whatever else is queued
				// (a group commit).
				if !drain() {
					write(true)
					return
				}
				write(false)
			} else if len(batch) == maxBatch {
				write(false)
			}
		case <-ticker.C:
			// Once closing, a batch that cannot be written is given up
			// (and counted), so that Close ends.
			write(l.closed.Load())
		case ack := <-l.flush:
			open := drain()
			if !write(false) {
				ack <- waiting(len(batch) + len(l.queue))
			}
			close(ack)
			if !open {
				write(true)
				return
			}
		}
	}
}
