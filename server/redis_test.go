package server

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/features/redistest"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server/testpki"
)

// TestRedisOutage kills Redis under a running tactd: cached clients keep
// getting decisions, marked degraded, within the stale window; after it,
// NO_OFFER degraded; once Redis is back, fresh answers within 5 s. No call
// fails.
func TestRedisOutage(t *testing.T) {
	rs := redistest.Start(t)
	seedRedis(t, features.RedisConfig{Addr: rs.Addr})

	const ttl, stale = 300 * time.Millisecond, 1500 * time.Millisecond
	logs := &syncBuffer{}
	ts := startServer(t, Deps{}, func(c *Config, w *io.Writer) {
		*w = logs
		c.FeatureStore, c.Redis.Addr = "redis", rs.Addr
		c.Cache.TTL, c.Cache.StaleFor, c.Cache.StoreTimeout = ttl, stale, 200*time.Millisecond
	})
	client := tactv1.NewDecisionServiceClient(ts.conn)
	var calls atomic.Int64
	decide := func(id string) *tactv1.DecideResponse {
		t.Helper()
		calls.Add(1)
		resp, err := client.Decide(context.Background(), &tactv1.DecideRequest{ClientId: id, Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
		if err != nil {
			t.Fatalf("Decide %s: %v (no call may fail)", id, err)
		}
		return resp
	}

	// With Redis up: an offer. The first calls open the pool's
	// connections, which can miss the 50 ms budget on a loaded host.
	for start := time.Now(); ; {
		d := decide("C00003")
		if d.GetAction() == tactv1.Action_ACTION_OFFER_NOW && !d.GetDegraded() {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("with Redis up: %v degraded=%v %v", d.GetAction(), d.GetDegraded(), d.GetReasons())
		}
		time.Sleep(20 * time.Millisecond)
	}
	rs.Kill()
	time.Sleep(ttl + 50*time.Millisecond) // past the TTL, inside the stale window
	// The features are still served from the cache, but the contact
	// history lives in the same Redis: without it the caps cannot be
	// checked, so the safe answer is no offer.
	d := decide("C00003")
	if d.GetAction() != tactv1.Action_ACTION_NO_OFFER || !d.GetDegraded() || d.GetReasons()[0].GetCode() != tactv1.ReasonCode_REASON_CODE_HISTORY_UNAVAILABLE {
		t.Errorf("Redis down, within the stale window: %v degraded=%v %v; want NO_OFFER, degraded, history unavailable", d.GetAction(), d.GetDegraded(), d.GetReasons())
	}
	if d := decide("C00009"); d.GetAction() != tactv1.Action_ACTION_NO_OFFER || !d.GetDegraded() || d.GetReasons()[0].GetCode() != tactv1.ReasonCode_REASON_CODE_FEATURES_UNAVAILABLE {
		t.Errorf("Redis down, client never cached: %v degraded=%v %v; want NO_OFFER, degraded, features unavailable", d.GetAction(), d.GetDegraded(), d.GetReasons())
	}
	time.Sleep(stale) // past the stale window
	d = decide("C00003")
	if d.GetAction() != tactv1.Action_ACTION_NO_OFFER || !d.GetDegraded() {
		t.Errorf("Redis down, past the stale window: %v degraded=%v %v; want NO_OFFER, degraded", d.GetAction(), d.GetDegraded(), d.GetReasons())
	}

	// Calls go on for a while with Redis down: safe answers, none failing.
	for range 12 {
		if d := decide("C00011"); d.GetAction() != tactv1.Action_ACTION_NO_OFFER || !d.GetDegraded() {
			t.Errorf("Redis down: %v degraded=%v %v; want NO_OFFER, degraded", d.GetAction(), d.GetDegraded(), d.GetReasons())
		}
		time.Sleep(100 * time.Millisecond)
	}

	rs.Restart()
	back := time.Now()
	for {
		d := decide("C00003")
		if d.GetAction() == tactv1.Action_ACTION_OFFER_NOW && !d.GetDegraded() {
			break
		}
		if time.Since(back) > 5*time.Second {
			t.Fatalf("no fresh answer 5 s after Redis returned: %v degraded=%v %v", d.GetAction(), d.GetDegraded(), d.GetReasons())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("fresh again %v after Redis returned; %d calls, none failed", time.Since(back).Round(time.Millisecond), calls.Load())
	// The outage is in the log as one structured warning each way, with
	// counts (it was go-redis's plain text lines, one per failed dial).
	l := logs.String()
	down, up := strings.Count(l, `"msg":"redis unreachable"`), strings.Count(l, `"msg":"redis reachable again"`)
	if down != 1 || up != 1 || !strings.Contains(l, `"failed_calls":`) {
		t.Errorf("%d 'redis unreachable' and %d 'redis reachable again' lines, want one each with failed_calls:\n%s", down, up, l)
	}
}

// TestRedisDemoSeededOnce: with feature_store redis and demo true, the
// first replica seeds the demo clients into an empty Redis (a decision
// for a demo client offers); a replica started later finds them there and
// seeds nothing, so a demo client's features written meanwhile are kept.
func TestRedisDemoSeededOnce(t *testing.T) {
	rs := redistest.Start(t)
	onRedis := func(logs *syncBuffer) func(*Config, *io.Writer) {
		return func(c *Config, w *io.Writer) {
			*w = logs
			c.FeatureStore, c.Redis.Addr, c.Demo = "redis", rs.Addr, "true"
		}
	}
	logsA, logsB := &syncBuffer{}, &syncBuffer{}
	a := startServer(t, Deps{}, onRedis(logsA))
	if !strings.Contains(logsA.String(), `"msg":"seeded demo clients","clients":1000,"store":"redis"`) {
		t.Errorf("replica A did not say it seeded the demo clients into Redis:\n%s", logsA.String())
	}
	ctx := t.Context()
	dc := tactv1.NewDecisionServiceClient(a.conn)
	for start := time.Now(); ; {
		d, err := dc.Decide(ctx, &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
		if err == nil && d.GetAction() == tactv1.Action_ACTION_OFFER_NOW {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("C00003 on a seeded Redis: %v %v, %v; want an offer", d.GetAction(), d.GetReasons(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A demo client's features replaced through A...
	fa := tactv1.NewFeatureServiceClient(a.conn)
	if _, err := fa.PutClientFeatures(ctx, &tactv1.PutClientFeaturesRequest{ClientId: "C00005", Features: map[string]*tactv1.FeatureValue{"age": num(77)}}); err != nil {
		t.Fatal(err)
	}
	// ... stay as written when B starts with demo true.
	b := startServer(t, Deps{}, onRedis(logsB))
	if !strings.Contains(logsB.String(), "demo clients already in Redis: not seeded") || strings.Contains(logsB.String(), "seeded demo clients") {
		t.Errorf("replica B seeded the demo clients again:\n%s", logsB.String())
	}
	got, err := tactv1.NewFeatureServiceClient(b.conn).GetClientFeatures(ctx, &tactv1.GetClientFeaturesRequest{ClientId: "C00005"})
	if err != nil {
		t.Fatal(err)
	}
	if age := got.GetClient().GetFeatures()["age"].GetNumber(); age != 77 {
		t.Errorf("C00005's age after B started: %v, want 77 as written (features %v)", age, got.GetClient().GetFeatures())
	}
}

// TestSentinelFailover runs tactd with redis_mode sentinel against a real
// master, its replica and a sentinel: decisions and outcomes go through
// the master the sentinel names; when the master is killed, decisions are
// safe degraded answers (never errors) until the sentinel has promoted the
// replica, then offers again, without a restart, and an outcome recorded
// before the failover is there after it.
func TestSentinelFailover(t *testing.T) {
	sn := redistest.StartSentinel(t)
	ts := startServer(t, Deps{}, func(c *Config, _ *io.Writer) {
		c.FeatureStore, c.Demo = "redis", "true"
		c.Redis.Mode, c.Redis.Addrs, c.Redis.MasterName = "sentinel", sn.Addr, sn.MasterName
	})
	client := tactv1.NewDecisionServiceClient(ts.conn)
	ctx := t.Context()
	// offer asks until a client is offered something, fresh (the first
	// calls open the pool's connections, which can miss the budget on a
	// loaded host); it counts the degraded answers on the way.
	offer := func(id string, within time.Duration) (d *tactv1.DecideResponse, degraded int) {
		t.Helper()
		for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
			d, err := client.Decide(ctx, &tactv1.DecideRequest{ClientId: id, Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
			if err != nil {
				t.Fatalf("Decide %s: %v (a decision never fails; Redis down is a degraded NO_OFFER)", id, err)
			}
			if d.GetAction() == tactv1.Action_ACTION_OFFER_NOW && !d.GetDegraded() {
				return d, degraded
			}
			if d.GetDegraded() {
				if d.GetAction() != tactv1.Action_ACTION_NO_OFFER {
					t.Fatalf("degraded %v for %s: want NO_OFFER", d.GetAction(), id)
				}
				degraded++
			}
			if time.Since(start) > within {
				t.Fatalf("%s: no fresh offer within %v: %v %v", id, within, d.GetAction(), d.GetReasons())
			}
		}
	}
	before, _ := offer("C00003", 5*time.Second)
	product := before.GetOffers()[0].GetProductId()
	if _, err := client.RecordOutcome(ctx, &tactv1.RecordOutcomeRequest{DecisionId: before.GetDecisionId(), ProductId: product, Outcome: tactv1.Outcome_OUTCOME_DECLINED}); err != nil {
		t.Fatal(err)
	}
	sn.WaitReplicated(t)
	old := sn.Master.Addr
	sn.Master.Kill()
	killed := time.Now()

	after, degraded := offer("C00009", 30*time.Second)
	took := time.Since(killed)
	if now, err := sn.MasterAddr(); err != nil || now != sn.Replica.Addr {
		t.Errorf("the sentinel names %q (%v) as the master after the failover; want the replica %s (the old one was %s)", now, err, sn.Replica.Addr, old)
	}
	t.Logf("%d degraded answers, and the first fresh offer %v after the master was killed (the sentinel's down-after-milliseconds: 1 s)", degraded, took.Round(10*time.Millisecond))
	if _, err := client.RecordOutcome(ctx, &tactv1.RecordOutcomeRequest{DecisionId: after.GetDecisionId(), ProductId: after.GetOffers()[0].GetProductId(), Outcome: tactv1.Outcome_OUTCOME_ACCEPTED}); err != nil {
		t.Errorf("an outcome after the failover: %v", err)
	}
	// The outcome recorded before the failover is on the new master: the
	// same outcome again changes nothing.
	again, err := client.RecordOutcome(ctx, &tactv1.RecordOutcomeRequest{DecisionId: before.GetDecisionId(), ProductId: product, Outcome: tactv1.Outcome_OUTCOME_DECLINED})
	if err != nil || !again.GetDuplicate() {
		t.Errorf("the outcome recorded before the failover, again: duplicate=%v, %v; want it found on the new master", again.GetDuplicate(), err)
	}
}

// TestRedisTLSAndPassword runs tactd against a real redis-server that
// requires a password and serves TLS with a certificate of the bank's own
// CA: with the password and redis_tls_ca_file, decisions are made; a
// wrong password, the system's CAs, plain TCP to the TLS port or an
// unreadable CA file stop tactd at start, saying why.
func TestRedisTLSAndPassword(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "bank CA")
	certPEM, keyPEM := ca.Issue(t, "redis", 2, true)
	rs := redistest.StartSecure(t, "s3cret", testpki.WriteFile(t, dir, "redis.crt", certPEM), testpki.WriteFile(t, dir, "redis.key", keyPEM))
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM)
	secure := func(c *Config) {
		c.FeatureStore, c.Demo = "redis", "true"
		c.Redis.Addr, c.Redis.TLSCAFile, c.Redis.Password = rs.TLSAddr, caFile, "s3cret"
	}

	ts := startServer(t, Deps{}, func(c *Config, _ *io.Writer) { secure(c) })
	client := tactv1.NewDecisionServiceClient(ts.conn)
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		d, err := client.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
		if err == nil && d.GetAction() == tactv1.Action_ACTION_OFFER_NOW && !d.GetDegraded() {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("over TLS with the password: %v %v, %v; want an offer", d.GetAction(), d.GetReasons(), err)
		}
	}

	for _, tc := range []struct {
		name string
		set  func(c *Config)
		want string
	}{
		{"wrong password", func(c *Config) { c.Redis.Password = "guess" }, "WRONGPASS"},
		{"no password", func(c *Config) { c.Redis.Password = "" }, "NOAUTH"},
		{"the system's CAs", func(c *Config) { c.Redis.TLSCAFile, c.Redis.TLS = "", true }, "certificate"},
		{"plain TCP to the TLS port", func(c *Config) { c.Redis.TLSCAFile = "" }, "set redis_tls"},
		{"no CA file", func(c *Config) { c.Redis.TLSCAFile = filepath.Join(dir, "missing.pem") }, "redis_tls_ca_file"},
		{"not a certificate", func(c *Config) { c.Redis.TLSCAFile = testpki.WriteFile(t, dir, "junk.pem", []byte("junk")) }, "holds no PEM certificate"},
	} {
		cfg := Defaults()
		cfg.DrainDelay, cfg.GRPCAddr, cfg.HTTPAddr, cfg.DataDir = 0, "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
		secure(&cfg)
		tc.set(&cfg)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, err := New(ctx, cfg, discardLogger(), Deps{})
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v; want an error saying %q", tc.name, err, tc.want)
		}
		t.Logf("%s: %v", tc.name, err)
	}
}
