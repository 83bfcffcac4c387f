package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tact-nba/tact/model/demo"
	"github.com/tact-nba/tact/model/policy"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// startExperimentServer runs the demo bank with an experiments file
// holding js; it returns the server and the file's path.
func startExperimentServer(t *testing.T, js string, logs io.Writer) (*testServer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "experiments.json")
	if err := os.WriteFile(path, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Deps{}, func(c *Config, w *io.Writer) {
		c.ExperimentsFile = path
		c.ModelPoll = 100 * time.Millisecond
		if logs != nil {
			*w = logs
		}
	})
	return ts, path
}

func readExample(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../examples/experiments.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestVariantGetsItsModelVersion: the README's champion/challenger config
// over the 1,000 demo clients: the challengers are scored by the
// challenger bundle, the others by the bundle served, and the results
// count what was decided and recorded.
func TestVariantGetsItsModelVersion(t *testing.T) {
	ts, _ := startExperimentServer(t, readExample(t), nil)
	dec := tactv1.NewDecisionServiceClient(ts.conn)
	type arm struct{ clients, offersNow, presented, accepted int }
	arms := map[string]*arm{"champion": {}, "challenger": {}}
	for i := 1; i <= 1000; i++ {
		id := fmt.Sprintf("C%05d", i)
		d, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: id, Channel: tactv1.Channel_CHANNEL_WEB})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.GetExperiments()) != 1 {
			t.Fatalf("%s: exposures %v", id, d.GetExperiments())
		}
		e := d.GetExperiments()[0]
		want := "demo-2"
		if e.GetVariation() == "challenger" {
			want = demo.ChallengerVersion
		}
		if e.GetExperiment() != "model-cc-2026-11" || d.GetModelVersion() != want || d.GetExperimentVariant() != "model-cc-2026-11:"+e.GetVariation() {
			t.Fatalf("%s: in %s:%s, scored by %q (want %q), variant %q", id, e.GetExperiment(), e.GetVariation(), d.GetModelVersion(), want, d.GetExperimentVariant())
		}
		a := arms[e.GetVariation()]
		a.clients++
		if d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
			continue
		}
		a.offersNow++
		// Every third offer presented, every ninth accepted.
		if i%3 == 0 {
			outcome := tactv1.Outcome_OUTCOME_PRESENTED
			if i%9 == 0 {
				outcome = tactv1.Outcome_OUTCOME_ACCEPTED
				a.accepted++
			}
			a.presented++
			_, err := dec.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: d.GetOffers()[0].GetProductId(), Outcome: outcome})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if arms["champion"].clients < 400 || arms["challenger"].clients < 400 {
		t.Fatalf("split %+v %+v", *arms["champion"], *arms["challenger"])
	}

	// The results, over REST.
	resp, err := http.Get(ts.base + "/v1/experiments/model-cc-2026-11/results")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Variations []struct {
			Variation struct {
				Key string `json:"key"`
			} `json:"variation"`
			// int64 is a JSON string in protojson.
			Clients          string `json:"clients"`
			Decisions        string `json:"decisions"`
			OffersNow        string `json:"offers_now"`
			Presented        string `json:"presented"`
			Accepted         string `json:"accepted"`
			ConvertedClients string `json:"converted_clients"`
		} `json:"variations"`
		SrmPValue float64 `json:"srm_p_value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("results: %d %v", resp.StatusCode, err)
	}
	if len(res.Variations) != 2 {
		t.Fatalf("results: %+v", res)
	}
	for _, v := range res.Variations {
		a := arms[v.Variation.Key]
		got := strings.Join([]string{v.Clients, v.Decisions, v.OffersNow, v.Presented, v.Accepted, v.ConvertedClients}, " ")
		want := fmt.Sprint(a.clients, " ", a.clients, " ", a.offersNow, " ", a.presented, " ", a.accepted, " ", a.accepted)
		if got != want {
			t.Errorf("%s: clients, decisions, offers now, presented, accepted, converted = %s; want %s", v.Variation.Key, got, want)
		}
	}
	if res.SrmPValue < 0.001 {
		t.Errorf("SRM p %v on a 50/50 split of %d/%d", res.SrmPValue, arms["champion"].clients, arms["challenger"].clients)
	}

	// Unknown experiment: 404 naming it.
	resp2, err := http.Get(ts.base + "/v1/experiments/nope/results")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `no experiment \"nope\"`) {
		t.Errorf("unknown experiment: %d %s", resp2.StatusCode, body)
	}
}

// TestExperimentsHotReloadUnderLoad: the split changes while 8 callers
// decide; no call fails, and once the new config is in use every
// decision follows it.
func TestExperimentsHotReloadUnderLoad(t *testing.T) {
	logs := &syncBuffer{}
	ts, path := startExperimentServer(t, readExample(t), logs)
	dec := tactv1.NewDecisionServiceClient(ts.conn)
	expc := tactv1.NewExperimentServiceClient(ts.conn)
	before, err := expc.ListExperiments(t.Context(), &tactv1.ListExperimentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var failed, calls atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", 1+(w*131+i)%1000), Channel: tactv1.Channel_CHANNEL_WEB})
				calls.Add(1)
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	// Everyone to the challenger.
	allIn := strings.Replace(readExample(t), `"weights": [0.5, 0.5]`, `"weights": [0, 1]`, 1)
	if allIn == readExample(t) {
		t.Fatal("the example's weights changed: update the test")
	}
	if err := os.WriteFile(path, []byte(allIn), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		l, err := expc.ListExperiments(t.Context(), &tactv1.ListExperimentsRequest{})
		return err == nil && l.GetConfigVersion() != before.GetConfigVersion()
	})
	// From the next decision on, every client is a challenger.
	for i := 1; i <= 200; i++ {
		d, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", i), Channel: tactv1.Channel_CHANNEL_WEB})
		if err != nil {
			t.Fatal(err)
		}
		if v := d.GetExperimentVariant(); v != "model-cc-2026-11:challenger" || d.GetModelVersion() != demo.ChallengerVersion {
			t.Fatalf("C%05d after the reload: %q scored by %s", i, v, d.GetModelVersion())
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || calls.Load() < 100 {
		t.Errorf("%d of %d calls failed across the reload", failed.Load(), calls.Load())
	}

	// A broken file is rejected with its errors; the config in use stays.
	if err := os.WriteFile(path, []byte(`{"features": {"f": {"defaultValue": {"model_version": "v9"}}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(logs.String(), "experiments rejected") })
	if !strings.Contains(logs.String(), `features.f.defaultValue: model_version: no demo model bundle has version \"v9\"`) {
		t.Errorf("the rejection does not name the problem:\n%s", logs.String())
	}
	d, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00001", Channel: tactv1.Channel_CHANNEL_WEB})
	if err != nil || d.GetExperimentVariant() != "model-cc-2026-11:challenger" {
		t.Errorf("after a broken file: %q, %v; want the config in use", d.GetExperimentVariant(), err)
	}
	t.Logf("%d calls across the reload, none failed", calls.Load())
}

// TestExperimentsAtStart: a config that weakens platinum without saying so
// stops tactd with the path named; saying so starts it with a warning.
func TestExperimentsAtStart(t *testing.T) {
	weak := `{"features": {"bar": {"defaultValue": {}, "rules": [{"variations": [{}, {"tiers": {"platinum": {"pitch_when_busy": true}}%s}]}]}}}`
	path := filepath.Join(t.TempDir(), "e.json")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(weak, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.Demo, cfg.DrainDelay = "true", 0 // the demo bank in a temporary data_dir; no balancer to wait for
	cfg.DataDir, cfg.ExperimentsFile = t.TempDir(), path
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	_, err := New(t.Context(), cfg, discardLogger(), Deps{})
	if err == nil || !strings.Contains(err.Error(), "features.bar.rules[0].variations[1]: weakens the protection") || !strings.Contains(err.Error(), "tiers.platinum.pitch_when_busy allowed") {
		t.Fatalf("New: %v", err)
	}
	logs := &syncBuffer{}
	ts, _ := startExperimentServer(t, fmt.Sprintf(weak, `, "weaken_protection": true`), logs)
	if !strings.Contains(logs.String(), "a variant weakens protection: tiers.platinum.pitch_when_busy allowed") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
	l, err := tactv1.NewExperimentServiceClient(ts.conn).ListExperiments(t.Context(), &tactv1.ListExperimentsRequest{})
	if err != nil || len(l.GetWarnings()) != 1 || len(l.GetExperiments()) != 1 || l.GetExperiments()[0].GetKey() != "bar" {
		t.Errorf("ListExperiments: %v, %v", l, err)
	}
}

// TestOverridesShapeDecisions: values forced for some clients (GrowthBook
// force rules on the id) change the tier bar, the caps and the busy
// thresholds for those clients only.
func TestOverridesShapeDecisions(t *testing.T) {
	cfg := `{"features": {
	  "bar":  {"defaultValue": {}, "rules": [{"condition": {"id": "S1"}, "force": {"tiers": {"standard": {"min_propensity": 0.95}}}}]},
	  "busy": {"defaultValue": {}, "rules": [{"condition": {"id": "B1"}, "force": {"tiers": {"standard": {"pitch_when_busy": false}},
	            "load": {"busy_when": {"calls_waiting": 3}, "calm_when": {"calls_waiting": 2}}}}]},
	  "caps": {"defaultValue": {}, "rules": [{"condition": {"id": "K1"}, "force": {"tiers": {"standard": {"caps": {"default": {"per_7_days": 0, "per_30_days": 0}}}}}}]}
	}}`
	path := filepath.Join(t.TempDir(), "e.json")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e := startScenarioServer(t, string(policy.DefaultYAML()), func(c *Config, _ *io.Writer) { c.ExperimentsFile = path })
	for _, id := range []string{"S1", "B1", "K1", "X1"} {
		e.client(t, id, nil)
	}
	e.report(t, "retail", 5, 0.95, monday) // 5 waiting: busy only by B1's thresholds
	for _, tc := range []struct {
		id     string
		action tactv1.Action
		reason tactv1.ReasonCode
	}{
		{"X1", tactv1.Action_ACTION_OFFER_NOW, tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY},
		{"S1", tactv1.Action_ACTION_NO_OFFER, tactv1.ReasonCode_REASON_CODE_BELOW_TIER_BAR},
		{"B1", tactv1.Action_ACTION_NO_OFFER, tactv1.ReasonCode_REASON_CODE_BUSY_PERIOD},
		{"K1", tactv1.Action_ACTION_NO_OFFER, tactv1.ReasonCode_REASON_CODE_CAP_REACHED},
	} {
		d := e.decide(t, &tactv1.DecideRequest{ClientId: tc.id, Channel: inbound, Queue: "retail"})
		if d.GetAction() != tc.action || len(d.GetReasons()) == 0 || d.GetReasons()[0].GetCode() != tc.reason {
			t.Errorf("%s: %v %v; want %v %v", tc.id, d.GetAction(), d.GetReasons(), tc.action, tc.reason)
		}
		if len(d.GetExperiments()) != 0 {
			t.Errorf("%s: a forced value is no experiment, yet exposures %v", tc.id, d.GetExperiments())
		}
	}
}
