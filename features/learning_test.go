package features

import (
	"reflect"
	"testing"

	"github.com/tact-nba/tact/features/redistest"
)

// RestoreLearning replaces the shared learned state whole (a product not
// in the snapshot is forgotten) and records the version restored.
func TestRedisRestoreLearning(t *testing.T) {
	srv := redistest.Start(t)
	r, err := OpenRedis(t.Context(), RedisConfig{Addr: srv.Addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.AddLearning(t.Context(), "loan", map[string][3]float64{"age=41": {0.5, 0.25, 1}}, true); err != nil {
		t.Fatal(err)
	}
	if v, err := r.LearningRestored(t.Context()); err != nil || v != "" {
		t.Fatalf("restored %q, %v before any restore", v, err)
	}
	snap := map[string]LearnedState{"card": {Accepted: 3, Refused: 7, Coords: map[string][3]float64{"age=41": {-1, 2, 10}, "tier=gold": {0.5, 1, 4}}}}
	if err := r.RestoreLearning(t.Context(), "snap-1", snap); err != nil {
		t.Fatal(err)
	}
	got, err := r.LoadLearning(t.Context())
	if err != nil || !reflect.DeepEqual(got, snap) {
		t.Errorf("after the restore: %+v, %v; want %+v", got, err, snap)
	}
	if v, err := r.LearningRestored(t.Context()); err != nil || v != "snap-1" {
		t.Errorf("restored %q, %v; want snap-1", v, err)
	}
}

// The embedded store: the same, with the version kept apart from the
// products.
func TestBoltRestoreLearning(t *testing.T) {
	b, _ := openTemp(t)
	t.Cleanup(func() { b.Close() })
	if err := b.SaveLearning(t.Context(), map[string][]byte{"loan": []byte(`{"Accepted":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := b.RestoreLearning(t.Context(), "snap-1", map[string][]byte{"card": []byte(`{"Accepted":3}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := b.LoadLearning(t.Context())
	if err != nil || len(got) != 1 || string(got["card"]) != `{"Accepted":3}` {
		t.Errorf("after the restore: %q, %v; want the card only", got, err)
	}
	if v, err := b.LearningRestored(t.Context()); err != nil || v != "snap-1" {
		t.Errorf("restored %q, %v; want snap-1", v, err)
	}
}
