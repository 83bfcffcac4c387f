package load

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestBoardKeepsLatest(t *testing.T) {
	b := NewBoard()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if _, ok := b.Get("q"); ok {
		t.Fatal("empty board has a report")
	}
	if _, stored, err := b.Put(Report{Queue: "q", CallsWaiting: 5, AsOf: t0, ReceivedAt: t0}); err != nil || !stored {
		t.Fatalf("Put: %v %v", stored, err)
	}
	held, stored, err := b.Put(Report{Queue: "q", CallsWaiting: 1, AsOf: t0.Add(-time.Second), ReceivedAt: t0})
	if err != nil || stored || held.CallsWaiting != 5 {
		t.Errorf("older Put: held %+v stored %v err %v; want the newer report kept", held, stored, err)
	}
	if _, stored, _ := b.Put(Report{Queue: "q", CallsWaiting: 9, ReceivedAt: t0.Add(time.Second)}); !stored {
		t.Error("report without as_of (taken as received) not stored")
	}
	if r, _ := b.Get("q"); r.CallsWaiting != 9 || !r.AsOf.Equal(t0.Add(time.Second)) {
		t.Errorf("Get = %+v, want 9 waiting as of receipt", r)
	}
	if _, _, err := b.Put(Report{Queue: "q", AsOf: t0.Add(2 * time.Minute), ReceivedAt: t0}); !errors.Is(err, ErrFuture) {
		t.Errorf("future report: %v, want ErrFuture", err)
	}
}

func TestBoardBounded(t *testing.T) {
	b := NewBoard()
	now := time.Now()
	for i := range MaxQueues {
		if _, _, err := b.Put(Report{Queue: fmt.Sprint(i), ReceivedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := b.Put(Report{Queue: "one-more", ReceivedAt: now}); !errors.Is(err, ErrTooManyQueues) {
		t.Errorf("queue past the limit: %v, want ErrTooManyQueues", err)
	}
	if _, stored, err := b.Put(Report{Queue: "0", ReceivedAt: now.Add(time.Second)}); err != nil || !stored {
		t.Errorf("update of a known queue at the limit: %v %v", stored, err)
	}
}
