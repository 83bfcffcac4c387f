package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// startTracedServer runs the demo with spans kept in memory and the log
// written to logs.
func startTracedServer(t *testing.T, logs io.Writer, opts ...func(*Config, *io.Writer)) (*testServer, *tracetest.InMemoryExporter) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	ts := startServer(t, Deps{SpanExporter: spans}, append([]func(*Config, *io.Writer){func(c *Config, w *io.Writer) {
		*w = logs
		c.ExperimentsFile = "../examples/experiments.json"
	}}, opts...)...)
	return ts, spans
}

func (ts *testServer) flushSpans(t *testing.T) {
	t.Helper()
	if err := ts.tel.tp.ForceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsAndTraces: after traffic, /metrics has every series the
// README names, and a Decide's trace has the engine's child spans under
// the gRPC server span.
func TestMetricsAndTraces(t *testing.T) {
	ts, spans := startTracedServer(t, io.Discard)
	dec := tactv1.NewDecisionServiceClient(ts.conn)
	d, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_WEB})
	if err != nil || d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
		t.Fatalf("Decide: %v %v", d.GetAction(), err)
	}
	resp, err := http.Post(ts.base+"/v1/decisions", "application/json", strings.NewReader(`{"client_id":"C00004","channel":"CHANNEL_WEB"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("REST decide: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "NOBODY", Channel: tactv1.Channel_CHANNEL_WEB}); err != nil {
		t.Fatal(err)
	}

	mresp, err := http.Get(ts.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, series := range []string{
		`tact_decide_duration_seconds_bucket{action="offer_now",channel="web"`,
		`tact_decisions_total{action="offer_now"`, `reason="client_unknown"`,
		`tact_experiment_exposures_total{experiment="model-cc-2026-11"`,
		"tact_cache_hits_total", "tact_cache_misses_total", "tact_cache_stale_serves_total",
		`tact_store_duration_seconds_bucket{`, `tact_store_errors_total{`,
		"tact_decision_log_queue_depth", "tact_decision_log_dropped_total", "tact_decision_log_failed_total",
		`tact_rpc_in_flight{method="/tact.v1.DecisionService/Decide"`,
		`tact_model_info{`, `version="demo-2"`, `tact_config_info{experiments="`,
		`tact_rpc_duration_seconds_bucket{code="OK",method="/tact.v1.DecisionService/Decide"`, "http_server_request_duration_seconds",
	} {
		if !bytes.Contains(body, []byte(series)) {
			t.Errorf("/metrics lacks %s", series)
		}
	}

	ts.flushSpans(t)
	var server *tracetest.SpanStub
	got := spans.GetSpans()
	for i := range got {
		if got[i].Name == "tact.v1.DecisionService/Decide" && server == nil {
			server = &got[i]
		}
	}
	if server == nil {
		t.Fatalf("no gRPC server span among %d spans", len(got))
	}
	children := map[string]bool{}
	for _, s := range got {
		if s.Parent.SpanID() == server.SpanContext.SpanID() {
			children[s.Name] = true
		}
	}
	for _, want := range []string{"features.read", "experiments", "history.read", "score", "policy", "history.reserve"} {
		if !children[want] {
			t.Errorf("the Decide span has no child %q (children: %v)", want, children)
		}
	}
	attrs := map[string]string{}
	for _, kv := range server.Attributes {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["tact.action"] == "" && attrs["action"] != "offer_now" {
		t.Errorf("server span attributes %v lack the action", attrs)
	}
	if len(attrs["tact.client_hash"]) != 16 {
		t.Errorf("server span attributes %v lack the client's hash", attrs)
	}
	// A REST call's span, with the decision's attributes too.
	rest := false
	for _, s := range got {
		if s.Name == "POST /v1/decisions" {
			rest = true
		}
	}
	if !rest {
		t.Errorf("no REST span among %v", spanNames(got))
	}
}

func spanNames(ss tracetest.SpanStubs) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// TestCanaryNeverLogged seeds a client with a recognisable id and feature
// values, drives every kind of call about it over gRPC and REST with debug
// logging, and finds neither in the logs, the spans or the metrics.
func TestCanaryNeverLogged(t *testing.T) {
	const id, value, text = "CANARYq7x9k2", 7654321.125, "canary-note-z3v8"
	logs := &syncBuffer{}
	ts, spans := startTracedServer(t, logs, func(c *Config, _ *io.Writer) { c.LogLevel = "debug" })
	feat := tactv1.NewFeatureServiceClient(ts.conn)
	dec := tactv1.NewDecisionServiceClient(ts.conn)
	_, err := feat.PutClientFeatures(t.Context(), &tactv1.PutClientFeaturesRequest{ClientId: id, Features: map[string]*tactv1.FeatureValue{
		"consent_offers":               {Kind: &tactv1.FeatureValue_Bool{Bool: true}},
		"balance":                      {Kind: &tactv1.FeatureValue_Number{Number: value}},
		"income_monthly":               {Kind: &tactv1.FeatureValue_Number{Number: value}},
		"contact_hours_phone_outbound": {Kind: &tactv1.FeatureValue_String_{String_: text}},
	}})
	if err != nil {
		t.Fatalf("PutClientFeatures: %v", err)
	}
	var decisionIDs []string
	for _, ch := range []tactv1.Channel{tactv1.Channel_CHANNEL_WEB, tactv1.Channel_CHANNEL_BRANCH, tactv1.Channel_CHANNEL_PHONE_INBOUND} {
		d, err := dec.Decide(t.Context(), &tactv1.DecideRequest{ClientId: id, Channel: ch, Explain: true, AgentId: "agent-1"})
		if err != nil {
			t.Fatal(err)
		}
		decisionIDs = append(decisionIDs, d.GetDecisionId())
		if len(d.GetOffers()) > 0 {
			_, err := dec.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: d.GetOffers()[0].GetProductId(), Outcome: tactv1.Outcome_OUTCOME_DECLINED})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/decisions", fmt.Sprintf(`{"client_id":%q,"channel":"CHANNEL_WEB"}`, id)},
		{"GET", "/v1/clients/" + id + "/features", ""},
		{"PUT", "/v1/clients/" + id + "/features", fmt.Sprintf(`{"features":{"balance":{"number":%v}}}`, value)},
		{"POST", "/v1/decisions", fmt.Sprintf(`{"client_id":%q,"channel":"CHANNEL_PIGEON"}`, id)}, // a bad request too
		{"PUT", "/v1/clients/" + id + "/features", `{"features":{"balance":{"number":"lots"}}}`},
		{"POST", "/v1/decisions/" + decisionIDs[0] + "/outcomes", `{"product_id":"nope","outcome":"OUTCOME_ACCEPTED"}`},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), c.method, ts.base+c.path, strings.NewReader(c.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mresp, err := http.Get(ts.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	ts.flushSpans(t)
	spanText, err := json.Marshal(spans.GetSpans())
	if err != nil {
		t.Fatal(err)
	}
	if len(spans.GetSpans()) < 10 || !strings.Contains(logs.String(), `"msg":"call"`) {
		t.Fatalf("too little to search: %d spans, logs:\n%s", len(spans.GetSpans()), logs.String())
	}
	for where, text2 := range map[string]string{"logs": logs.String(), "spans": string(spanText), "metrics": string(metrics)} {
		for _, canary := range []string{id, strings.ToLower(id), text, "7654321", "7.654321"} {
			if strings.Contains(text2, canary) {
				i := strings.Index(text2, canary)
				t.Errorf("%s carry %q: ...%s...", where, canary, text2[max(0, i-200):min(len(text2), i+100)])
			}
		}
	}
}
