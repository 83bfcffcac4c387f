package features

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

func openTemp(t testing.TB) (*Bolt, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "tact.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	return b, path
}

func TestBoltRecordsSurviveReopen(t *testing.T) {
	ctx := t.Context()
	b, path := openTemp(t)
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := []Record{
		{ClientID: "C1", UpdatedAt: at, Values: map[string]Value{
			"age": Number(41), "segment": String("retail"), "consent_offers": Bool(true), "deposit_maturity": Time(at.AddDate(0, 2, 0)),
		}},
		{ClientID: "C2", UpdatedAt: at, Values: map[string]Value{"balance": Number(1234.5)}},
	}
	if err := b.PutBatch(ctx, recs); err != nil {
		t.Fatalf("PutBatch: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, want := range recs {
		got, err := b.Get(ctx, want.ClientID)
		if err != nil {
			t.Fatalf("Get %s: %v", want.ClientID, err)
		}
		if diff := cmp.Diff(want, unpacked(got), ignoreMemo); diff != "" {
			t.Errorf("Get %s after reopen (-want +got):\n%s", want.ClientID, diff)
		}
	}
	if n, err := b.CountClients(ctx); err != nil || n != 2 {
		t.Errorf("CountClients = %d, %v; want 2", n, err)
	}
	if _, err := b.Get(ctx, "C3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get unknown: %v, want ErrNotFound", err)
	}
	// Upsert replaces the whole record.
	if err := b.PutBatch(ctx, []Record{{ClientID: "C2", Values: map[string]Value{"balance": Number(1)}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Get(ctx, "C2"); got.Map()["balance"].Num != 1 {
		t.Errorf("after upsert balance = %v, want 1", got.Map()["balance"])
	}
}

func TestBoltRejectsBadRecordsWhole(t *testing.T) {
	ctx := t.Context()
	b, _ := openTemp(t)
	defer b.Close()
	err := b.PutBatch(ctx, []Record{
		{ClientID: "ok", Values: map[string]Value{"a": Number(1)}},
		{ClientID: "bad", Values: map[string]Value{"x": {}}},
	})
	if err == nil {
		t.Fatal("PutBatch with a kindless value succeeded")
	}
	if _, err := b.Get(ctx, "ok"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the good record of a rejected batch was stored (%v)", err)
	}
}

func TestBoltSecondOpenFailsClearly(t *testing.T) {
	b, path := openTemp(t)
	defer b.Close()
	if _, err := OpenBolt(path); err == nil {
		t.Fatal("second OpenBolt of a locked file succeeded")
	}
}

func TestOutcomesDuplicate(t *testing.T) {
	ctx := t.Context()
	b, _ := openTemp(t)
	defer b.Close()
	o := OutcomeRecord{DecisionID: "d1", ProductID: "p", Outcome: "accepted", ClientID: "C1", RecordedAt: time.Unix(100, 0).UTC()}
	if dup, err := b.PutOutcome(ctx, &o); err != nil || dup {
		t.Fatalf("first PutOutcome: dup %v, %v", dup, err)
	}
	again := o
	again.RecordedAt = time.Unix(200, 0).UTC()
	if dup, err := b.PutOutcome(ctx, &again); err != nil || !dup {
		t.Fatalf("second PutOutcome: dup %v, %v; want a duplicate", dup, err)
	}
	if !again.RecordedAt.Equal(o.RecordedAt) {
		t.Errorf("duplicate returned recorded_at %v, want the first %v", again.RecordedAt, o.RecordedAt)
	}
	other := OutcomeRecord{DecisionID: "d1", ProductID: "p", Outcome: "presented"}
	if _, err := b.PutOutcome(ctx, &other); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutOutcome(ctx, &OutcomeRecord{DecisionID: "d10", ProductID: "p", Outcome: "presented"}); err != nil {
		t.Fatal(err)
	}
	outs, err := b.Outcomes(ctx, "d1")
	if err != nil || len(outs) != 2 {
		t.Fatalf("Outcomes(d1) = %v, %v; want 2 (not d10's)", outs, err)
	}
}

func TestDecisionLogWritesAndFlushes(t *testing.T) {
	ctx := t.Context()
	b, _ := openTemp(t)
	defer b.Close()
	l := NewDecisionLog(b, 1024, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range 600 {
		if !l.Append(DecisionRecord{ID: idOf(i), ClientID: "C1", Products: []string{"p"}}) {
			t.Fatalf("Append %d dropped with room in the buffer", i)
		}
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 511, 512, 599} {
		d, err := b.GetDecision(ctx, idOf(i))
		if err != nil || !d.Offered("p") {
			t.Errorf("GetDecision(%d) = %+v, %v after Flush", i, d, err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if l.Append(DecisionRecord{ID: "late"}) {
		t.Error("Append after Close was accepted")
	}
	if l.Written() != 600 || l.Dropped() != 1 {
		t.Errorf("written %d, dropped %d; want 600 and 1", l.Written(), l.Dropped())
	}
}

// stuckSink blocks every write until released, so that the buffer fills.
type stuckSink struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (s *stuckSink) SaveDecisions(ctx context.Context, _ []DecisionRecord) error {
	s.once.Do(func() { close(s.started) })
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestDecisionLogDropsWhenFullWithoutBlocking(t *testing.T) {
	sink := &stuckSink{started: make(chan struct{}), release: make(chan struct{})}
	l := NewDecisionLog(sink, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l.Append(DecisionRecord{ID: "first"})
	<-sink.started // the writer now holds "first" and is stuck
	accepted := 0
	for i := range 10 {
		if l.Append(DecisionRecord{ID: idOf(i)}) {
			accepted++
		}
	}
	if accepted != 4 || l.Dropped() != 6 {
		t.Errorf("accepted %d, dropped %d; want 4 and 6 with a buffer of 4", accepted, l.Dropped())
	}
	close(sink.release)
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func idOf(i int) string { return time.Unix(int64(i), 0).UTC().Format("150405") }

func TestValueFormat(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{Number(167540), "167,540"},
		{Number(8880), "8880"},
		{Number(-1234567), "-1,234,567"},
		{Number(2.5), "2.50"},
		{Bool(true), "yes"},
		{String("gold"), "gold"},
		{Time(time.Date(2027, 4, 30, 12, 0, 0, 0, time.UTC)), "2027-04-30"},
	}
	for _, tt := range tests {
		if got := tt.v.Format(); got != tt.want {
			t.Errorf("Format(%+v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

// downSink fails every write with a storage error while down is set, and
// keeps what it is given once it is not.
type downSink struct {
	down    atomic.Bool
	mu      sync.Mutex
	written []string
}

func (s *downSink) SaveDecisions(_ context.Context, recs []DecisionRecord) error {
	if s.down.Load() {
		return &StorageError{Op: "write decisions", Where: "test.db", Err: syscall.ENOSPC}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.written = append(s.written, r.ID)
	}
	return nil
}

// TestDecisionLogHoldsRecordsWhileStorageIsDown: a batch that cannot be
// written because storage is unavailable (a full disk) is kept and written
// once storage is back, not dropped; Flush says storage is unavailable
// meanwhile; one error is logged when writes start failing and one warning
// when they work again. (The log used to drop the batch, so an offer given
// during a full disk could never take its outcome.)
func TestDecisionLogHoldsRecordsWhileStorageIsDown(t *testing.T) {
	var logs bytes.Buffer
	sink := &downSink{}
	sink.down.Store(true)
	l := NewDecisionLog(sink, 1024, slog.New(slog.NewJSONHandler(&logs, nil)))
	for i := range 700 { // more than a batch
		l.Append(DecisionRecord{ID: fmt.Sprintf("d%04d", i)})
	}
	if err := l.Flush(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Flush while storage is down: %v, want ErrUnavailable", err)
	}
	time.Sleep(3 * flushEvery) // a few more failed attempts
	sink.down.Store(false)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatalf("Flush once storage is back: %v", err)
	}
	if err := l.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	n := len(sink.written)
	sink.mu.Unlock()
	if n != 700 || l.Failed() != 0 || l.Written() != 700 {
		t.Errorf("written %d (counted %d), failed %d; want all 700 written, none failed", n, l.Written(), l.Failed())
	}
	if got := strings.Count(logs.String(), "storage unavailable; holding the batch"); got != 1 {
		t.Errorf("%d 'storage unavailable' lines, want 1:\n%s", got, logs.String())
	}
	if got := strings.Count(logs.String(), "decision log: writing again"); got != 1 {
		t.Errorf("%d 'writing again' lines, want 1:\n%s", got, logs.String())
	}
}

// TestBoltStorageErrorsAreUnavailable: a write or read the file cannot
// take (here: the file closed under the store) is a StorageError naming
// the file, matching ErrUnavailable; a problem with the data is not.
func TestBoltStorageErrorsAreUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tact.db")
	b, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	errData := errors.New("bad data")
	if err := b.update("write", func(*bolt.Tx) error { return errData }); !errors.Is(err, errData) || errors.Is(err, ErrUnavailable) {
		t.Errorf("a transaction's own error: %v, want it as it is, not ErrUnavailable", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = b.PutOutcome(t.Context(), &OutcomeRecord{DecisionID: "d", ProductID: "p", Outcome: "accepted"})
	var se *StorageError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &se) || se.Where != path || !strings.Contains(err.Error(), "write outcome") {
		t.Errorf("PutOutcome on a closed file: %v; want a StorageError naming %s", err, path)
	}
	if _, err := b.GetDecision(t.Context(), "d"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("GetDecision on a closed file: %v, want ErrUnavailable", err)
	}
}

// gateSink writes to a Bolt, or fails as storage unavailable while down.
type gateSink struct {
	b    *Bolt
	down atomic.Bool
}

func (g *gateSink) SaveDecisions(ctx context.Context, recs []DecisionRecord) error {
	if g.down.Load() {
		return &StorageError{Op: "write decisions", Where: "test", Err: syscall.ENOSPC}
	}
	return g.b.SaveDecisions(ctx, recs)
}

// TestCommitGivenUpIsWithdrawn: an offer whose commit the caller gave up
// waiting for (it answered NO_OFFER) is written as what was answered, a
// degraded no-offer without products, and its reserved offer neither
// reaches the history nor holds a cap slot; an offer committed in time is
// written with its offer.
func TestCommitGivenUpIsWithdrawn(t *testing.T) {
	b, _ := openTemp(t)
	defer b.Close()
	sink := &gateSink{b: b}
	l := NewDecisionLog(sink, 64, slog.New(slog.DiscardHandler))
	defer l.Close(t.Context())
	at := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	caps := []Cap{{Window: 7 * 24 * time.Hour, Max: 1}}
	offer := func(id string) DecisionRecord {
		t.Helper()
		got, err := b.Reserve(t.Context(), Reservation{ClientID: "C1", Channel: "web", DecisionID: id, Products: []string{"card"}, At: at, Caps: caps})
		if err != nil || got.N != 1 {
			t.Fatalf("Reserve %s: %+v, %v", id, got, err)
		}
		return DecisionRecord{ID: id, ClientID: "C1", Channel: "web", Action: "offer_now", Products: []string{"card"}, At: at}
	}
	sink.down.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	err := l.Commit(ctx, offer(idAt(at, 1)))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Commit while storage is down: %v, want the deadline", err)
	}
	sink.down.Store(false)
	if err := l.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	d, err := b.GetDecision(t.Context(), idAt(at, 1))
	if err != nil || d.Action != "no_offer" || len(d.Products) != 0 || !d.Degraded {
		t.Errorf("the given-up decision as written: %+v, %v; want a degraded no_offer without products", d, err)
	}
	if cs, _ := b.Contacts(t.Context(), "C1", at.Add(-time.Hour)); countOffers(cs, "web", at.Add(-time.Hour)) != 0 {
		t.Errorf("the withdrawn offer is in the history: %+v", cs)
	}
	// The slot is free: the next offer fits a cap of 1, and is written.
	if err := l.Commit(t.Context(), offer(idAt(at, 2))); err != nil {
		t.Fatal(err)
	}
	if d, err := b.GetDecision(t.Context(), idAt(at, 2)); err != nil || d.Action != "offer_now" {
		t.Errorf("a commit in time: %+v, %v", d, err)
	}
	if cs, _ := b.Contacts(t.Context(), "C1", at.Add(-time.Hour)); countOffers(cs, "web", at.Add(-time.Hour)) != 1 {
		t.Errorf("history after the committed offer: %+v, want its offer", cs)
	}
}

// heldSink blocks each write until released, then says storage is
// unavailable.
type heldSink struct {
	entered chan struct{}
	release chan struct{}
	up      atomic.Bool
}

func (s *heldSink) SaveDecisions(context.Context, []DecisionRecord) error {
	if s.up.Load() {
		return nil
	}
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.release
	return &StorageError{Op: "write decisions", Where: "test", Err: syscall.ENOSPC}
}

// TestCommitGivenUpWhileAWriteIsHeld: a Commit whose caller gives up while
// a write of its record is under way, a write that then finds storage
// unavailable and holds the batch, returns that error (the record is
// withdrawn) instead of waiting for storage to come back: CI once hung in
// TestCommitGivenUpIsWithdrawn when a retry claimed the record just as its
// caller gave up.
func TestCommitGivenUpWhileAWriteIsHeld(t *testing.T) {
	sink := &heldSink{entered: make(chan struct{}, 1), release: make(chan struct{})}
	l := NewDecisionLog(sink, 16, slog.New(slog.DiscardHandler))
	defer func() {
		sink.up.Store(true)
		close(sink.release)
		l.Close(t.Context())
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	res := make(chan error, 1)
	go func() {
		res <- l.Commit(ctx, DecisionRecord{ID: "d1", Action: "offer_now", Products: []string{"card"}})
	}()
	<-sink.entered // the write has claimed the record
	<-ctx.Done()   // the caller gives up meanwhile
	time.Sleep(20 * time.Millisecond)
	sink.release <- struct{}{} // the write finds storage unavailable and holds the batch
	select {
	case err := <-res:
		// Withdrawn by the held write: the caller answers without the offer.
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Commit: %v, want storage unavailable (the record withdrawn)", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Commit still waits for a held write after its caller gave up")
	}
}
