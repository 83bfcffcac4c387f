package features

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tact-nba/tact/features/redistest"
)

// store is what both feature stores offer; the conformance suite runs the
// same cases against each.
type store interface {
	Source
	GetMany(ctx context.Context, ids []string) ([]Record, error)
}

var (
	_ store = (*Bolt)(nil)
	_ store = (*Redis)(nil)
)

func TestConformance(t *testing.T) {
	stores := map[string]func(t *testing.T) store{
		"bolt": func(t *testing.T) store {
			b, _ := openTemp(t)
			t.Cleanup(func() { b.Close() })
			return b
		},
		"redis": func(t *testing.T) store {
			srv := redistest.Start(t)
			r, err := OpenRedis(t.Context(), RedisConfig{Addr: srv.Addr}, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			return r
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conformance(t, open(t))
		})
	}
}

func conformance(t *testing.T, s store) {
	ctx := t.Context()
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := []Record{
		{ClientID: "C1", UpdatedAt: at, Values: map[string]Value{"age": Number(41), "segment": String("retail"), "consent_offers": Bool(true), "maturity": Time(at.AddDate(0, 2, 0))}},
		{ClientID: "C2", UpdatedAt: at, Values: map[string]Value{"balance": Number(1234.5)}},
		{ClientID: "C{3}:x", Values: map[string]Value{}},
	}
	if _, err := s.Get(ctx, "C1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before any put: %v, want ErrNotFound", err)
	}
	if err := s.PutBatch(ctx, recs); err != nil {
		t.Fatalf("PutBatch: %v", err)
	}
	for _, want := range recs {
		got, err := s.Get(ctx, want.ClientID)
		if err != nil {
			t.Fatalf("Get %s: %v", want.ClientID, err)
		}
		if len(want.Values) == 0 {
			want.Values = map[string]Value{}
		}
		if diff := cmp.Diff(want, unpacked(got), ignoreMemo); diff != "" {
			t.Errorf("Get %s (-want +got):\n%s", want.ClientID, diff)
		}
	}
	many, err := s.GetMany(ctx, []string{"C2", "nobody", "C1"})
	if err != nil {
		t.Fatal(err)
	}
	if many[0].Map()["balance"].Num != 1234.5 || many[1].Len() != 0 || many[2].Map()["age"].Num != 41 {
		t.Errorf("GetMany = %+v", many)
	}
	// Upsert replaces the whole record; running a batch twice changes
	// nothing more.
	upd := []Record{{ClientID: "C2", Values: map[string]Value{"balance": Number(1)}}}
	for range 2 {
		if err := s.PutBatch(ctx, upd); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Get(ctx, "C2"); got.Len() != 1 || got.Map()["balance"].Num != 1 {
		t.Errorf("after upsert: %+v", got)
	}
	// A bad record rejects the whole batch.
	err = s.PutBatch(ctx, []Record{{ClientID: "C4", Values: map[string]Value{"a": Number(1)}}, {ClientID: "", Values: nil}})
	if err == nil {
		t.Error("a batch with an empty client id was stored")
	}
	if _, err := s.Get(ctx, "C4"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the good record of a rejected batch was stored (%v)", err)
	}
	// A large batch.
	big := make([]Record, 5000)
	for i := range big {
		big[i] = Record{ClientID: fmt.Sprintf("B%05d", i), Values: map[string]Value{"i": Number(float64(i))}}
	}
	if err := s.PutBatch(ctx, big); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "B04999"); err != nil || got.Map()["i"].Num != 4999 {
		t.Errorf("Get B04999 = %+v, %v", got, err)
	}
	// A cancelled context fails.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Get(cctx, "C1"); err == nil {
		t.Error("Get with a cancelled context succeeded")
	}
}
