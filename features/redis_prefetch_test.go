package features

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tact-nba/tact/features/redistest"
)

// With PrefetchContacts, a features read brings the client's contacts in
// the same round trip and the Contacts call that follows takes them (once,
// within prefetchFor); a write to the history through this Redis forgets
// them.
func TestRedisPrefetchesContacts(t *testing.T) {
	srv := redistest.Start(t)
	r, err := OpenRedis(t.Context(), RedisConfig{Addr: srv.Addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.PrefetchContacts(true)
	ctx := t.Context()
	if err := r.PutBatch(ctx, []Record{{ClientID: "C1", Values: map[string]Value{"age": Number(41)}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	add := func(id string, at time.Time) {
		t.Helper()
		if err := r.AddContact(ctx, Contact{ClientID: "C1", Kind: ContactDeclined, DecisionID: id, ProductID: "card", Channel: "web", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	add("d-old", now.AddDate(0, 0, -200))
	add("d1", now.Add(-time.Hour))
	// Written behind this Redis's back (as another replica would): a read
	// served from the prefetch does not see it, a fresh one does.
	sneak := func(id string) {
		t.Helper()
		if err := r.client.ZAdd(ctx, r.ContactsKey("C1"), redis.Z{Score: float64(now.UnixMilli()), Member: "d|web|" + id + "|card|"}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(cs []Contact, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.DecisionID)
		}
		return strings.Join(out, ",")
	}
	since := now.AddDate(0, 0, -90)

	if _, err := r.Get(ctx, "C1"); err != nil {
		t.Fatal(err)
	}
	sneak("d2")
	if got := ids(r.Contacts(ctx, "C1", since)); got != "d1" {
		t.Errorf("the contacts after a features read: %s, want d1 (the prefetched ones, since the window)", got)
	}
	if got := ids(r.Contacts(ctx, "C1", since)); got != "d1,d2" {
		t.Errorf("read again: %s, want d1,d2 (taken once, then read afresh)", got)
	}

	if _, err := r.Get(ctx, "C1"); err != nil {
		t.Fatal(err)
	}
	add("d3", now)
	if got := ids(r.Contacts(ctx, "C1", since)); got != "d1,d2,d3" {
		t.Errorf("after an outcome written here: %s, want d1,d2,d3 (the prefetch forgotten)", got)
	}

	if _, err := r.Get(ctx, "C1"); err != nil {
		t.Fatal(err)
	}
	sneak("d4")
	time.Sleep(prefetchFor + 10*time.Millisecond)
	if got := ids(r.Contacts(ctx, "C1", since)); got != "d1,d2,d3,d4" {
		t.Errorf("after the prefetch's time: %s, want d1,d2,d3,d4 (read afresh)", got)
	}
}
