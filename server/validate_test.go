package server

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"buf.build/go/protovalidate"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// checkQuick holds decideRequestValid to protovalidate on one request:
// the quick check may pass only what protovalidate passes, and must pass
// every valid request whose agent id is ASCII (else the fast path would
// quietly stop being taken).
func checkQuick(t *testing.T, v protovalidate.Validator, r *tactv1.DecideRequest) {
	t.Helper()
	quick := decideRequestValid(r)
	err := v.Validate(r)
	if quick && err != nil {
		t.Fatalf("quick check passed a request protovalidate refuses (%v): %v", err, r)
	}
	ascii := true
	for i := 0; i < len(r.AgentId); i++ {
		ascii = ascii && r.AgentId[i] < utf8.RuneSelf
	}
	if !quick && err == nil && ascii {
		t.Fatalf("quick check refused a valid request: %v", r)
	}
}

func TestDecideQuickCheckAgrees(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"", "C00001", "a", "0", "-x", ".x", "_x", "x-y.z_w", "x:y", "x@bank", "ab cd", "é", "xé", "C\x00", ":x", "@x",
		strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("é", 33), "x/y", "x\n"}
	agents := []string{"", "agent-7", strings.Repeat("b", 64), strings.Repeat("b", 65), strings.Repeat("é", 40), strings.Repeat("é", 64), strings.Repeat("é", 65)}
	enum := []int32{-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 99}
	rng := rand.New(rand.NewPCG(1, 2))
	// Four draws in five are of the common, valid kind, so that both
	// sides of the check see plenty.
	pick := func(xs []string) string {
		if rng.IntN(5) > 0 {
			return xs[1]
		}
		return xs[rng.IntN(len(xs))]
	}
	pickEnum := func() int32 {
		if rng.IntN(5) > 0 {
			return 1 + rng.Int32N(3)
		}
		return enum[rng.IntN(len(enum))]
	}
	quick := 0
	for range 20000 {
		r := &tactv1.DecideRequest{
			ClientId:  pick(ids),
			Channel:   tactv1.Channel(pickEnum()),
			Queue:     pick(ids),
			AgentId:   pick(agents),
			MaxOffers: uint32(rng.IntN(13)),
			Explain:   rng.IntN(2) == 0,
		}
		if rng.IntN(3) > 0 {
			r.Context = &tactv1.InteractionContext{
				Reason:    tactv1.InteractionReason(pickEnum()),
				Stage:     tactv1.InteractionStage(pickEnum()),
				Sentiment: tactv1.Sentiment(pickEnum()),
			}
		}
		checkQuick(t, v, r)
		if decideRequestValid(r) {
			quick++
		}
	}
	// The draws are mostly invalid; enough must be valid for the test to
	// have checked the fast path at all.
	if quick < 2000 {
		t.Errorf("only %d of 20000 requests took the fast path", quick)
	}
}

func FuzzDecideQuickCheck(f *testing.F) {
	v, err := protovalidate.New()
	if err != nil {
		f.Fatal(err)
	}
	f.Add("C00001", int32(1), "cards", int32(1), int32(1), int32(2), "agent-7", uint32(1), true)
	f.Add("x@bank:1", int32(4), "", int32(0), int32(0), int32(0), "", uint32(10), false)
	f.Add("é", int32(9), "-q", int32(-1), int32(7), int32(4), "ééé", uint32(11), true)
	f.Fuzz(func(t *testing.T, client string, channel int32, queue string, reason, stage, sentiment int32, agent string, maxOffers uint32, withContext bool) {
		r := &tactv1.DecideRequest{ClientId: client, Channel: tactv1.Channel(channel), Queue: queue, AgentId: agent, MaxOffers: maxOffers}
		if withContext {
			r.Context = &tactv1.InteractionContext{Reason: tactv1.InteractionReason(reason), Stage: tactv1.InteractionStage(stage), Sentiment: tactv1.Sentiment(sentiment)}
		}
		checkQuick(t, v, r)
	})
}
