package features

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func journalRec(at time.Time, n int, products ...string) DecisionRecord {
	d := DecisionRecord{ID: idAt(at, n), ClientID: "C1", Channel: "web", Action: "no_offer", Tier: "gold", ModelVersion: "m1", At: at,
		Exposures: []Exposure{{Experiment: "e", Feature: "f", VariationID: 1, Variation: "challenger"}}}
	if len(products) > 0 {
		d.Action, d.Products = "offer_now", products
	}
	return d
}

// TestJournalReadsUpToATear: what was appended is read back in order,
// across segments; a frame torn by a crash mid-write, or damaged, ends
// its segment's records without touching the other segments'; Release
// removes the segments read.
func TestJournalReadsUpToATear(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.segmentSize = 1 // a segment a group: three segments
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var want []DecisionRecord
	for g := range 3 {
		var group []*DecisionRecord
		for i := range 4 {
			d := journalRec(at, g*10+i, "card")
			want = append(want, d)
			group = append(group, &d)
		}
		if seg, err := j.Append(group); err != nil || seg != uint64(g+1) {
			t.Fatalf("Append group %d: segment %d, %v", g, seg, err)
		}
	}
	if err := j.Close(false); err != nil {
		t.Fatal(err)
	}
	// A crash mid-write tears the last segment's tail; a damaged byte in
	// the second segment's last frame.
	tear := func(seg uint64, edit func([]byte) []byte) {
		t.Helper()
		p := filepath.Join(dir, segName(seg))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, edit(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tear(3, func(b []byte) []byte { return append(b, 0x50, 1, 2, 3) }) // a length, then less than it says
	tear(2, func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })

	j, err = OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, next, err := j.Records()
	if err != nil {
		t.Fatal(err)
	}
	want = append(want[:7], want[8:]...) // the damaged frame
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %d records:\n%+v\nwant %d:\n%+v", len(got), got, len(want), want)
	}
	if next != 4 {
		t.Errorf("next = %d, want 4", next)
	}
	// New records go to a new segment, which Release(next) keeps.
	d := journalRec(at, 99)
	if seg, err := j.Append([]*DecisionRecord{&d}); err != nil || seg != 4 {
		t.Fatalf("Append after reopening: segment %d, %v; want 4", seg, err)
	}
	if err := j.Release(next); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); j.Segments() != 1 || len(entries) != 1 || entries[0].Name() != segName(4) {
		t.Errorf("after Release: %d segments, files %v; want only %s", j.Segments(), entries, segName(4))
	}
	if err := j.Close(true); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("after a clean Close: %v, want no segment", entries)
	}
}

func segName(seq uint64) string { return filepath.Base((&Journal{}).path(seq)) }

// restoringGate is a gateSink that restores into its Bolt.
type restoringGate struct{ gateSink }

func (g *restoringGate) RestoreDecisions(ctx context.Context, recs []DecisionRecord) (int, error) {
	return g.b.RestoreDecisions(ctx, recs)
}

// TestJournaledLogRestoresOffersAfterACrash: offers committed to the
// journal while the bbolt file could not take them (as if tactd had died
// before its batch) are in the file after the next start, with their
// offers in the contact history counting against the caps; a decision
// the file held already is not written again, so an offer vetoed since
// stays deleted.
func TestJournaledLogRestoresOffersAfterACrash(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	dir := filepath.Join(t.TempDir(), "journal")
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	caps := []Cap{{Window: 7 * 24 * time.Hour, Max: 3}}
	reserve := func(id, client string) DecisionRecord {
		t.Helper()
		got, err := b.Reserve(t.Context(), Reservation{ClientID: client, Channel: "web", DecisionID: id, Products: []string{"card"}, At: at, Caps: caps})
		if err != nil || got.N != 1 {
			t.Fatalf("Reserve %s: %+v, %v", id, got, err)
		}
		d := journalRec(at, 0, "card")
		d.ID, d.ClientID = id, client
		return d
	}
	// Written and vetoed before the crash.
	vetoed := reserve(idAt(at, 1), "C2")
	if err := b.SaveDecisions(t.Context(), []DecisionRecord{vetoed}); err != nil {
		t.Fatal(err)
	}
	if err := b.AddContact(t.Context(), Contact{ClientID: "C2", Kind: ContactNotPresented, DecisionID: vetoed.ID, ProductID: "card", Channel: "web", AgentReason: "busy", At: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}

	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	sink := &restoringGate{gateSink{b: b}}
	sink.down.Store(true) // nothing reaches the file: as if killed before the batch
	l, _, err := NewJournaledDecisionLog(t.Context(), sink, j, 64, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		d := reserve(idAt(at, 10+i), "C1")
		if err := l.Commit(t.Context(), d); err != nil {
			t.Fatalf("Commit %s: %v", d.ID, err)
		}
		ids = append(ids, d.ID)
	}
	// The journal has the vetoed decision again too, as if the crash came
	// between the file's write and the journal's removal.
	if _, err := j.Append([]*DecisionRecord{&vetoed}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(t.Context()); err != nil { // the final write fails: the journal stays
		t.Fatal(err)
	}

	// The next start: a fresh process's store (no pending offers) on the
	// same file.
	path := b.Path()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err = OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, restored, err := NewJournaledDecisionLog(t.Context(), b, j, 64, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(t.Context())
	if restored != 3 {
		t.Errorf("restored %d decisions, want the 3 the file missed", restored)
	}
	for _, id := range ids {
		if d, err := b.GetDecision(t.Context(), id); err != nil || d.Action != "offer_now" || d.Exposures[0].Variation != "challenger" {
			t.Errorf("decision %s after the restart: %+v, %v", id, d, err)
		}
	}
	// C1's three offers fill its cap of 3; C2's vetoed offer stays gone.
	if got, err := b.Reserve(t.Context(), Reservation{ClientID: "C1", Channel: "web", DecisionID: idAt(at, 20), Products: []string{"card"}, At: at.Add(time.Minute), Caps: caps}); err != nil || got.N != 0 || got.Used != 3 {
		t.Errorf("C1 after the restart: %+v, %v; want the cap of 3 used by the restored offers", got, err)
	}
	if cs, err := b.Contacts(t.Context(), "C2", at.Add(-time.Hour)); err != nil || countOffers(cs, "web", at.Add(-time.Hour)) != 0 {
		t.Errorf("C2's vetoed offer after the restart: %+v, %v; want it still deleted", cs, err)
	}
	if j.Segments() != 0 {
		t.Errorf("%d journal segments after the restore, want 0", j.Segments())
	}
}

// TestJournalFailureWithdrawsTheOffer: when the journal cannot be written
// Commit says storage is unavailable, the decision reaches the file as
// the degraded no-offer the caller answered, and its reserved offer holds
// no cap slot; once the journal can be written, offers commit again.
func TestJournalFailureWithdrawsTheOffer(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	dir := filepath.Join(t.TempDir(), "journal")
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.segmentSize = 1 // every write starts a segment: a missing directory fails it
	l, _, err := NewJournaledDecisionLog(t.Context(), b, j, 64, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(t.Context())
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	caps := []Cap{{Window: 7 * 24 * time.Hour, Max: 1}}
	offer := func(n int) DecisionRecord {
		t.Helper()
		got, err := b.Reserve(t.Context(), Reservation{ClientID: "C1", Channel: "web", DecisionID: idAt(at, n), Products: []string{"card"}, At: at, Caps: caps})
		if err != nil || got.N != 1 {
			t.Fatalf("Reserve %d: %+v, %v", n, got, err)
		}
		d := journalRec(at, n, "card")
		return d
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err = l.Commit(t.Context(), offer(1))
	var se *StorageError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &se) || se.Op != "start journal segment" {
		t.Fatalf("Commit without a journal directory: %v, want a StorageError", err)
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d, err := b.GetDecision(t.Context(), idAt(at, 1)); err != nil || d.Action != "no_offer" || !d.Degraded || len(d.Products) != 0 {
		t.Errorf("the decision whose journal write failed: %+v, %v; want a degraded no_offer", d, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(t.Context(), offer(2)); err != nil { // the cap of 1 is free again
		t.Fatalf("Commit once the journal can be written: %v", err)
	}
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d, err := b.GetDecision(t.Context(), idAt(at, 2)); err != nil || d.Action != "offer_now" {
		t.Errorf("the decision committed after: %+v, %v", d, err)
	}
}

// TestJournalCommitGivenUpMidWrite: callers that give up waiting at every
// moment of a journal write (before it claims their record, while it
// syncs, after) each get an answer, and the file then holds each decision
// as its caller answered it: an offer when Commit said nil, a degraded
// no-offer otherwise. (A caller giving up while the sync ran was never
// answered: the journal writer told only the records still marked
// claimed, and a race-run decision waited ten minutes.)
func TestJournalCommitGivenUpMidWrite(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	l, _ := journaledLog(t, b, filepath.Join(t.TempDir(), "journal"), 4096)
	defer l.Close(t.Context())
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	// Deadlines from nothing to a few syncs long.
	errs := commitMany(t, l, at, 2000, func(i int) time.Duration { return time.Duration(i%40) * 25 * time.Microsecond })
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	given, withdrawn := 0, 0
	for i, cerr := range errs {
		d, err := b.GetDecision(t.Context(), idAt(at, i))
		switch {
		case err != nil:
			t.Errorf("decision %d (Commit: %v) is not in the file: %v", i, cerr, err)
		case cerr == nil && d.Action != "offer_now":
			t.Errorf("decision %d: Commit said it was written, the file holds %s", i, d.Action)
		case cerr != nil && (d.Action != "no_offer" || !d.Degraded):
			t.Errorf("decision %d: Commit said %v, the file holds %s (degraded %v)", i, cerr, d.Action, d.Degraded)
		case cerr == nil:
			given++
		default:
			withdrawn++
		}
	}
	t.Logf("%d committed, %d withdrawn", given, withdrawn)
	if given == 0 || withdrawn == 0 {
		t.Errorf("%d committed and %d withdrawn: the deadlines did not cover both sides of a write", given, withdrawn)
	}
}

// TestJournalPreallocatedSegment: a segment is preallocated to its full
// size (where the file system can), and what a crash leaves is read back
// up to the last frame written, the zeros after it ignored; a damaged
// last frame still ends the records before it.
func TestJournalPreallocatedSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	var want []DecisionRecord
	for i := range 5 {
		d := journalRec(at, i, "card")
		want = append(want, d)
		if _, err := j.Append([]*DecisionRecord{&d}); err != nil {
			t.Fatal(err)
		}
	}
	written := j.size
	if err := j.Close(false); err != nil { // as a crash leaves it
		t.Fatal(err)
	}
	p := filepath.Join(dir, segName(1))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && int64(len(b)) != segmentSize {
		t.Errorf("the segment is %d bytes, want it preallocated to %d", len(b), segmentSize)
	}
	read := func() []DecisionRecord {
		t.Helper()
		j, err := OpenJournal(dir)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := j.Records()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := read(); !reflect.DeepEqual(got, want) {
		t.Errorf("read back %d records, want the %d written", len(got), len(want))
	}
	b[written-1] ^= 0xff // the last frame's last byte
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := read(); !reflect.DeepEqual(got, want[:4]) {
		t.Errorf("with the last frame damaged: %d records, want the first 4", len(got))
	}
}

// BenchmarkJournalAppend: one decision appended and synced, as an offer
// waiting alone for its group commit is.
func BenchmarkJournalAppend(b *testing.B) {
	j, err := OpenJournal(filepath.Join(b.TempDir(), "journal"))
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close(true)
	d := journalRec(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), 1, "card")
	recs := []*DecisionRecord{&d}
	for b.Loop() {
		if _, err := j.Append(recs); err != nil {
			b.Fatal(err)
		}
	}
}

// downBolt is a Bolt whose decision writes fail as unavailable while down
// is set (a full disk, say), the journal still writable.
type downBolt struct {
	*Bolt
	down atomic.Bool
}

func (s *downBolt) SaveDecisions(ctx context.Context, recs []DecisionRecord) error {
	if s.down.Load() {
		return &StorageError{Op: "write decisions", Where: "test", Err: errors.New("no space left on device")}
	}
	return s.Bolt.SaveDecisions(ctx, recs)
}

// TestJournalAnswersWhileTheStoreIsDown: with the file unwritable for long
// enough to fill the log's buffer, every Commit is still answered at once
// (an offer once its record is in the journal, else an error), a Flush
// says the decisions wait (unavailable, not a timeout); once the file is
// writable, it holds every decision as its caller answered it. (The
// journal writer used to answer its callers only after the full buffer
// took their records: they waited, past every deadline, until the file was
// writable again.)
func TestJournalAnswersWhileTheStoreIsDown(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	sink := &downBolt{Bolt: b}
	sink.down.Store(true)
	const size = 16 // the buffer; the sink's writer holds up to maxBatch more
	l, _ := journaledLog(t, sink, filepath.Join(t.TempDir(), "journal"), size)
	defer l.Close(t.Context())
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	const n = maxBatch + 200
	errs := commitMany(t, l, at, n, func(int) time.Duration { return 200 * time.Millisecond })
	given, full := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			given++
		case errors.Is(err, ErrLogFull):
			full++
		}
	}
	// Every record not refused at the door goes on to the file (given or
	// withdrawn): more than the sink's writer and the buffer hold.
	if n-full <= maxBatch+size {
		t.Fatalf("%d of %d records taken: the buffer never filled", n-full, n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	err := l.Flush(ctx)
	cancel()
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush during the outage: %v, want unavailable", err)
	}

	sink.down.Store(false)
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if err := l.Flush(t.Context()); err == nil {
			break
		} else if time.Since(start) > 20*time.Second {
			t.Fatalf("Flush 20 s after the file is writable again: %v", err)
		}
	}
	for i, cerr := range errs {
		d, err := b.GetDecision(t.Context(), idAt(at, i))
		switch {
		case cerr == nil && (err != nil || d.Action != "offer_now"):
			t.Errorf("decision %d was given; the file holds %+v, %v", i, d.Action, err)
		case cerr != nil && !errors.Is(cerr, ErrLogFull) && (err != nil || d.Action != "no_offer" || !d.Degraded):
			t.Errorf("decision %d (Commit: %v): the file holds %s (degraded %v), %v; want a degraded no_offer", i, cerr, d.Action, d.Degraded, err)
		case errors.Is(cerr, ErrLogFull) && err == nil:
			t.Errorf("decision %d was refused (buffer full), yet the file holds it as %s", i, d.Action)
		}
	}
	t.Logf("during the outage %d of %d offers given, %d refused at the door (buffer full)", given, n, full)
}

// commitMany commits n offers from 8 callers, offer i giving up after
// wait(i), and returns what each Commit said. The test fails if some
// Commit is unanswered a minute on.
func commitMany(t *testing.T, l *DecisionLog, at time.Time, n int, wait func(int) time.Duration) []error {
	t.Helper()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				ctx, cancel := context.WithTimeout(t.Context(), wait(i))
				errs[i] = l.Commit(ctx, journalRec(at, i, "card"))
				cancel()
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(time.Minute):
		t.Fatal("a Commit whose caller gave up was never answered")
	}
	return errs
}

// TestJournalFlushWhileCommitting: with the file writable, a Flush made
// while Commits come and go always succeeds. (A Flush that reached the
// journal writer while it handed records to the file's queue was told,
// half of the time, that they waited to be written: outcomes answered
// 503.)
func TestJournalFlushWhileCommitting(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	l, _ := journaledLog(t, b, filepath.Join(t.TempDir(), "journal"), 4096)
	defer l.Close(t.Context())
	stop := make(chan struct{})
	flushes, failed := 0, 0
	var lastErr error
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			flushes++
			if err := l.Flush(t.Context()); err != nil {
				failed, lastErr = failed+1, err
			}
		}
	}()
	errs := commitMany(t, l, time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), 3000, func(int) time.Duration { return 10 * time.Second })
	close(stop)
	<-flushed
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Commit %d: %v", i, err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d Flushes failed with the file writable, the last: %v", failed, flushes, lastErr)
	}
	t.Logf("%d Flushes during 3,000 Commits", flushes)
}

// TestJournalStoppedWhileTheStoreIsDown: tactd stopped while tact.db
// cannot be written and the log's buffer is full: Close ends, and at the
// next start every offer that was given is restored from the journal into
// the file, so that its outcome is taken.
func TestJournalStoppedWhileTheStoreIsDown(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	sink := &downBolt{Bolt: b}
	sink.down.Store(true)
	dir := filepath.Join(t.TempDir(), "journal")
	l, _ := journaledLog(t, sink, dir, 16)
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	errs := commitMany(t, l, at, maxBatch+200, func(int) time.Duration { return 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	err := l.Close(ctx)
	cancel()
	if err != nil {
		t.Fatalf("Close while the file cannot be written: %v", err)
	}

	// The next start, the file writable again.
	sink.down.Store(false)
	l, restored := journaledLog(t, sink, dir, 16)
	defer l.Close(t.Context())
	given := 0
	for i, cerr := range errs {
		if cerr != nil {
			continue
		}
		given++
		if d, err := b.GetDecision(t.Context(), idAt(at, i)); err != nil || d.Action != "offer_now" {
			t.Errorf("decision %d was given before the stop; after the restart the file holds %+v, %v", i, d.Action, err)
		}
	}
	t.Logf("%d offers given during the outage, %d decisions restored from the journal at the restart", given, restored)
	if given == 0 || restored < given {
		t.Errorf("%d offers given, %d decisions restored: want every given offer restored", given, restored)
	}
}

// journaledLog opens the journal in dir and starts a journaled log of
// size on sink, returning it and how many decisions it restored.
func journaledLog(t *testing.T, sink DecisionRestorer, dir string, size int) (*DecisionLog, int) {
	t.Helper()
	j, err := OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	l, restored, err := NewJournaledDecisionLog(t.Context(), sink, j, size, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return l, restored
}
