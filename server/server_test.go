package server

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/google/go-cmp/cmp"

	"github.com/tact-nba/tact/features"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// fixedNow is the clock of tests that compare against golden files.
var fixedNow = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

type testServer struct {
	*Server
	conn *grpc.ClientConn
	base string // http://host:port
	stop func() error
}

// rest makes a REST call and returns its status and body.
func (ts *testServer) rest(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// startServer runs a real Server on 127.0.0.1:0 with a fresh data dir and
// returns clients for it. The server is stopped at the end of the test.
func startServer(t testing.TB, deps Deps, opts ...func(*Config, *io.Writer)) *testServer {
	t.Helper()
	cfg := Defaults()
	cfg.Demo, cfg.DrainDelay = "true", 0 // the demo bank in a temporary data_dir; no balancer to wait for
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	// Tests that fire a thousand calls at once test other things than
	// admission control (TestAdmission sets its own limit).
	cfg.MaxInFlight = 100_000
	// A call's default deadline is for desktops, not for a CI host whose
	// disk, busy with the other packages' builds, can take a second or
	// more for one fsync (an outcome written to bbolt makes three; CI's
	// TestVariantGetsItsModelVersion once passed the 2 s). The deadline
	// itself is TestDefaultDeadline's.
	cfg.CallTimeout = 30 * time.Second
	var logTo io.Writer = io.Discard
	for _, o := range opts {
		o(&cfg, &logTo)
	}
	logger := slog.New(slog.NewJSONHandler(logTo, nil))
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg, logger, deps)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	var stopped bool
	var runErr error
	ts := &testServer{Server: srv, conn: conn, base: "http://" + srv.HTTPAddr()}
	ts.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	t.Cleanup(func() {
		conn.Close()
		if err := ts.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitReady(t, ts.base)
	return ts
}

func waitReady(t testing.TB, base string) {
	t.Helper()
	for range 100 {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server not ready after 2 s")
}

func post(t *testing.T, url, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, b
}

// TestDecideGRPC covers, among others, the demo clients the README names;
// keep the two in step.
func TestDecideGRPC(t *testing.T) {
	ts := startServer(t, Deps{})
	client := tactv1.NewDecisionServiceClient(ts.conn)
	ctx := t.Context()

	tests := []struct {
		name       string
		req        *tactv1.DecideRequest
		wantAction tactv1.Action
		wantReason tactv1.ReasonCode
		wantOffers int
		wantLater  string
	}{
		{
			name:       "offer now",
			req:        &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND},
			wantAction: tactv1.Action_ACTION_OFFER_NOW,
			wantReason: tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY,
			wantOffers: 1,
		},
		{
			// Another channel: the phone cap (2 a week) has one offer on it.
			name:       "two offers",
			req:        &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_BRANCH, MaxOffers: 2},
			wantAction: tactv1.Action_ACTION_OFFER_NOW,
			wantReason: tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY,
			wantOffers: 2,
		},
		{
			name:       "later: deposit matures",
			req:        &tactv1.DecideRequest{ClientId: "C00073", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND},
			wantAction: tactv1.Action_ACTION_OFFER_LATER,
			wantReason: tactv1.ReasonCode_REASON_CODE_NEED_NOT_YET,
			wantOffers: 1,
		},
		{
			name:       "now, and later when the deposit matures",
			req:        &tactv1.DecideRequest{ClientId: "C00009", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND},
			wantAction: tactv1.Action_ACTION_OFFER_NOW,
			wantReason: tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY,
			wantOffers: 1,
			wantLater:  "investment_fund",
		},
		{
			name:       "unknown client is not an error",
			req:        &tactv1.DecideRequest{ClientId: "C99999", Channel: tactv1.Channel_CHANNEL_WEB},
			wantAction: tactv1.Action_ACTION_NO_OFFER,
			wantReason: tactv1.ReasonCode_REASON_CODE_CLIENT_UNKNOWN,
		},
		{
			name: "complaint",
			req: &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND,
				Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_COMPLAINT}},
			wantAction: tactv1.Action_ACTION_NO_OFFER,
			wantReason: tactv1.ReasonCode_REASON_CODE_COMPLAINT,
		},
		{
			name:       "platinum: offer in a sales contact",
			req:        &tactv1.DecideRequest{ClientId: "C00074", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND},
			wantAction: tactv1.Action_ACTION_OFFER_NOW,
			wantReason: tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY,
			wantOffers: 1,
		},
		{
			name: "platinum: protected in a service call",
			req: &tactv1.DecideRequest{ClientId: "C00074", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND,
				Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SERVICE, Stage: tactv1.InteractionStage_INTERACTION_STAGE_IN_PROGRESS}},
			wantAction: tactv1.Action_ACTION_NO_OFFER,
			wantReason: tactv1.ReasonCode_REASON_CODE_PROTECTED_TIER_SERVICE_CALL,
		},
		{
			// In a branch: the phone cap (1 a week) is taken by the first.
			name: "platinum: service call resolved",
			req: &tactv1.DecideRequest{ClientId: "C00074", Channel: tactv1.Channel_CHANNEL_BRANCH,
				Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SERVICE, Stage: tactv1.InteractionStage_INTERACTION_STAGE_RESOLVED}},
			wantAction: tactv1.Action_ACTION_OFFER_NOW,
			wantReason: tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY,
			wantOffers: 1,
		},
		{
			name:       "gold: nothing clears the bar",
			req:        &tactv1.DecideRequest{ClientId: "C00033", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND},
			wantAction: tactv1.Action_ACTION_NO_OFFER,
			wantReason: tactv1.ReasonCode_REASON_CODE_BELOW_TIER_BAR,
		},
		{
			name:       "no consent",
			req:        &tactv1.DecideRequest{ClientId: "C00011", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND},
			wantAction: tactv1.Action_ACTION_NO_OFFER,
			wantReason: tactv1.ReasonCode_REASON_CODE_NO_CONSENT,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Decide(ctx, tt.req)
			if err != nil {
				t.Fatalf("Decide: %v", err)
			}
			if resp.GetAction() != tt.wantAction {
				t.Errorf("action = %v, want %v (reasons %v)", resp.GetAction(), tt.wantAction, resp.GetReasons())
			}
			if len(resp.GetReasons()) == 0 || resp.GetReasons()[0].GetCode() != tt.wantReason {
				t.Errorf("reasons = %v, want first %v", resp.GetReasons(), tt.wantReason)
			}
			if got := len(resp.GetOffers()); got != tt.wantOffers {
				t.Errorf("got %d offers, want %d", got, tt.wantOffers)
			}
			if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(resp.GetDecisionId()) {
				t.Errorf("decision_id = %q, want a UUID", resp.GetDecisionId())
			}
			if resp.GetModelVersion() == "" {
				t.Error("model_version is empty")
			}
			for i, o := range resp.GetOffers() {
				if o.GetRank() != uint32(i+1) || o.GetPropensity() <= 0 || o.GetPropensity() >= 1 {
					t.Errorf("offer %d = %v: want rank %d and propensity in (0,1)", i, o, i+1)
				}
			}
			if (resp.GetAction() == tactv1.Action_ACTION_OFFER_LATER || tt.wantLater != "") != (resp.GetLater() != nil) {
				t.Errorf("later = %v with action %v", resp.GetLater(), resp.GetAction())
			}
			if got := resp.GetLaterOffer().GetProductId(); got != tt.wantLater {
				t.Errorf("later offer %q, want %q", got, tt.wantLater)
			}
		})
	}
}

// TestDecideRESTGolden compares a REST decision with a golden file; run
// with -update to rewrite it.
func TestDecideRESTGolden(t *testing.T) {
	ts := startServer(t, Deps{Now: func() time.Time { return fixedNow }})
	for _, tc := range []struct{ name, body string }{
		{"decide_offer_now", `{"client_id":"C00003","channel":"CHANNEL_PHONE_INBOUND","context":{"reason":"INTERACTION_REASON_SALES_ENQUIRY"},"max_offers":2,"explain":true}`},
		{"decide_offer_later", `{"clientId":"C00073","channel":"CHANNEL_BRANCH"}`},
		{"decide_now_and_later", `{"clientId":"C00009","channel":"CHANNEL_BRANCH"}`},
		{"decide_unknown_client", `{"client_id":"C99999","channel":"CHANNEL_WEB"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, ts.base+"/v1/decisions", "application/json", []byte(tc.body))
			if code != http.StatusOK {
				t.Fatalf("status %d, body %s", code, body)
			}
			got := normalizeJSON(t, body)
			path := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("REST response differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

var uuidRE = regexp.MustCompile(`"decision_id":\s*"[0-9a-f-]{36}"`)

// normalizeJSON replaces the random decision id and indents the JSON
// (protojson's spacing is deliberately unstable).
func normalizeJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	b = uuidRE.ReplaceAll(b, []byte(`"decision_id":"<uuid>"`))
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, b)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

func TestBadRequests(t *testing.T) {
	ts := startServer(t, Deps{})
	client := tactv1.NewDecisionServiceClient(ts.conn)
	valid := `{"client_id":"C00001","channel":"CHANNEL_PHONE_INBOUND"}`

	grpcCases := []struct {
		name    string
		req     *tactv1.DecideRequest
		wantMsg string
	}{
		{"no client id", &tactv1.DecideRequest{Channel: tactv1.Channel_CHANNEL_WEB}, "client_id"},
		{"no channel", &tactv1.DecideRequest{ClientId: "C00001"}, "channel"},
		{"bad channel", &tactv1.DecideRequest{ClientId: "C00001", Channel: 99}, "channel"},
		{"max_offers 99", &tactv1.DecideRequest{ClientId: "C00001", Channel: tactv1.Channel_CHANNEL_WEB, MaxOffers: 99}, "max_offers"},
		{"bad client id", &tactv1.DecideRequest{ClientId: "C 1", Channel: tactv1.Channel_CHANNEL_WEB}, "client_id"},
		{"bad stage", &tactv1.DecideRequest{ClientId: "C00001", Channel: tactv1.Channel_CHANNEL_WEB, Context: &tactv1.InteractionContext{Stage: 42}}, "context.stage"},
	}
	for _, tt := range grpcCases {
		t.Run("grpc/"+tt.name, func(t *testing.T) {
			_, err := client.Decide(t.Context(), tt.req)
			if got := status.Code(err); got != codes.InvalidArgument {
				t.Fatalf("code = %v (%v), want InvalidArgument", got, err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message %q does not name %q", msg, tt.wantMsg)
			}
		})
	}

	restCases := []struct {
		name     string
		body     []byte
		wantCode int
		wantMsg  string
	}{
		{"no client id", []byte(`{"channel":"CHANNEL_PHONE_INBOUND"}`), 400, "client_id"},
		{"bad channel", []byte(`{"client_id":"C00001","channel":"CHANNEL_FAX"}`), 400, "channel"},
		{"max_offers 99", []byte(`{"client_id":"C00001","channel":"CHANNEL_WEB","max_offers":99}`), 400, "max_offers"},
		{"unknown field", []byte(`{"client_id":"C00001","channel":"CHANNEL_WEB","colour":"blue"}`), 400, `unknown field "colour"`},
		{"empty body", nil, 400, "empty"},
		{"malformed json", []byte(`{"client_id":`), 400, "malformed JSON"},
		{"100 KiB body", append([]byte(valid[:len(valid)-1]+`,"agent_id":"`), bytes.Repeat([]byte("a"), 100<<10)...), 413, "limit of 65536 bytes"},
	}
	for _, tt := range restCases {
		t.Run("rest/"+tt.name, func(t *testing.T) {
			code, body := post(t, ts.base+"/v1/decisions", "application/json", tt.body)
			if code != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", code, tt.wantCode, body)
			}
			var e struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("error body is not JSON: %v: %s", err, body)
			}
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message %q does not name %q", e.Message, tt.wantMsg)
			}
		})
	}
}

func TestRecordOutcome(t *testing.T) {
	ts := startServer(t, Deps{})
	client := tactv1.NewDecisionServiceClient(ts.conn)
	ctx := t.Context()
	d, err := client.Decide(ctx, &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	product := d.GetOffers()[0].GetProductId()

	// Recorded over REST right after the decision: the decision may still
	// be in the log's buffer.
	code, body := post(t, ts.base+"/v1/decisions/"+d.GetDecisionId()+"/outcomes", "application/json",
		[]byte(fmt.Sprintf(`{"product_id":%q,"outcome":"OUTCOME_ACCEPTED"}`, product)))
	if code != http.StatusOK {
		t.Fatalf("REST RecordOutcome: status %d: %s", code, body)
	}
	var first tactv1.RecordOutcomeResponse
	if err := unmarshalProtoJSON(body, &first); err != nil {
		t.Fatalf("REST RecordOutcome: %v: %s", err, body)
	}
	if first.GetDuplicate() || first.GetOutcome() != tactv1.Outcome_OUTCOME_ACCEPTED || first.GetProductId() != product {
		t.Errorf("first outcome = %v, want %s accepted, not a duplicate", &first, product)
	}

	again, err := client.RecordOutcome(ctx, &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: product, Outcome: tactv1.Outcome_OUTCOME_ACCEPTED})
	if err != nil {
		t.Fatalf("RecordOutcome again: %v", err)
	}
	if !again.GetDuplicate() {
		t.Error("second identical outcome: duplicate = false, want true")
	}

	errCases := []struct {
		name     string
		req      *tactv1.RecordOutcomeRequest
		wantCode codes.Code
		wantMsg  string
	}{
		{"unknown decision", &tactv1.RecordOutcomeRequest{DecisionId: "01a206df-0000-7000-8000-000000000000", ProductId: product, Outcome: tactv1.Outcome_OUTCOME_PRESENTED}, codes.NotFound, "decision_id"},
		{"product not offered", &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: "mortgage", Outcome: tactv1.Outcome_OUTCOME_PRESENTED}, codes.InvalidArgument, "product_id"},
		{"not a uuid", &tactv1.RecordOutcomeRequest{DecisionId: "x", ProductId: product, Outcome: tactv1.Outcome_OUTCOME_PRESENTED}, codes.InvalidArgument, "decision_id"},
		{"no outcome", &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: product}, codes.InvalidArgument, "outcome"},
		{"not presented without reason", &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: product, Outcome: tactv1.Outcome_OUTCOME_NOT_PRESENTED}, codes.InvalidArgument, "not_presented_reason"},
		{"in the future", &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: product, Outcome: tactv1.Outcome_OUTCOME_PRESENTED, OccurredAt: timestamppb.New(time.Now().Add(time.Hour))}, codes.InvalidArgument, "occurred_at"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.RecordOutcome(ctx, tt.req)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message %q does not name %q", msg, tt.wantMsg)
			}
		})
	}

	// The outcome is durable: it is in the store after a stop.
	if err := ts.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	store, err := features.OpenBolt(filepath.Join(ts.cfg.DataDir, "tact.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	outs, err := store.Outcomes(ctx, d.GetDecisionId())
	if err != nil || len(outs) != 1 || outs[0].Outcome != "accepted" || outs[0].ClientID != "C00003" {
		t.Errorf("stored outcomes = %+v, %v; want one accepted outcome for C00003", outs, err)
	}
}

func unmarshalProtoJSON(b []byte, m proto.Message) error {
	return protojson.Unmarshal(b, m)
}

func TestLoadFeed(t *testing.T) {
	ts := startServer(t, Deps{})
	client := tactv1.NewLoadServiceClient(ts.conn)
	ctx := t.Context()

	if _, err := client.GetLoad(ctx, &tactv1.GetLoadRequest{Queue: "retail"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetLoad before any report: %v, want NotFound", err)
	}
	asOf := time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)
	put, err := client.ReportLoad(ctx, &tactv1.ReportLoadRequest{Queue: "retail", CallsWaiting: proto.Uint32(12), LongestWaitSeconds: proto.Float64(95), ServiceLevel: proto.Float64(0.71), AgentsAvailable: proto.Uint32(1), AsOf: timestamppb.New(asOf)})
	if err != nil || !put.GetStored() {
		t.Fatalf("ReportLoad: %v, stored %v", err, put.GetStored())
	}
	// An older report does not replace a newer one.
	old, err := client.ReportLoad(ctx, &tactv1.ReportLoadRequest{Queue: "retail", CallsWaiting: proto.Uint32(1), AsOf: timestamppb.New(asOf.Add(-time.Minute))})
	if err != nil || old.GetStored() || old.GetLoad().GetCallsWaiting() != 12 {
		t.Fatalf("older ReportLoad: %v, stored %v, load %v; want not stored, 12 waiting", err, old.GetStored(), old.GetLoad())
	}

	// REST reads what gRPC wrote.
	resp, err := http.Get(ts.base + "/v1/queues/retail/load")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Load struct {
			CallsWaiting int       `json:"calls_waiting"`
			ServiceLevel float64   `json:"service_level"`
			AsOf         time.Time `json:"as_of"`
		} `json:"load"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET load: status %d, %v", resp.StatusCode, err)
	}
	if got.Load.CallsWaiting != 12 || got.Load.ServiceLevel != 0.71 || !got.Load.AsOf.Equal(asOf) {
		t.Errorf("GET load = %+v, want 12 waiting, service level 0.71, as_of %v", got.Load, asOf)
	}

	// REST PUT with bad values names the field.
	req, err := http.NewRequest(http.MethodPut, ts.base+"/v1/queues/retail/load", strings.NewReader(`{"service_level":1.5}`))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(bad.Body)
	bad.Body.Close()
	if bad.StatusCode != 400 || !strings.Contains(string(b), "service_level") {
		t.Errorf("PUT service_level 1.5: status %d, body %s; want 400 naming service_level", bad.StatusCode, b)
	}
	if _, err := client.ReportLoad(ctx, &tactv1.ReportLoadRequest{Queue: "retail", CallsWaiting: proto.Uint32(1), AsOf: timestamppb.New(time.Now().Add(time.Hour))}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("as_of an hour ahead: %v, want InvalidArgument", err)
	}
}

// TestLoadReportJudgesOnlyWhatIsReported: a measure left out of a load
// report is unknown, not zero. {"calls_waiting":0} alone made the queue
// busy (service level 0 read as below 0.80) and a platinum client got
// NO_OFFER BUSY_PERIOD; a report with no measure to judge is refused
// naming the fields.
func TestLoadReportJudgesOnlyWhatIsReported(t *testing.T) {
	ts := startServer(t, Deps{})
	put := func(queue, body string) (int, string) {
		return ts.rest(t, http.MethodPut, "/v1/queues/"+queue+"/load", body)
	}
	decide := func(queue string) *tactv1.DecideResponse {
		d, err := tactv1.NewDecisionServiceClient(ts.conn).Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00074", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND, Queue: queue, Explain: true})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	busyReason := func(d *tactv1.DecideResponse) bool {
		for _, r := range d.GetReasons() {
			if r.GetCode() == tactv1.ReasonCode_REASON_CODE_BUSY_PERIOD {
				return true
			}
		}
		return false
	}
	if code, body := put("zq", `{"calls_waiting":0}`); code != 200 || strings.Contains(body, "service_level") {
		t.Fatalf("PUT calls_waiting 0: %d %s; want 200 with no service_level", code, body)
	}
	if d := decide("zq"); busyReason(d) {
		t.Errorf("zq reported 0 calls waiting and nothing else, decision %v %v: busy", d.GetAction(), d.GetReasons())
	}
	// A measure that is reported still counts.
	if code, body := put("zq", `{"service_level":0.5}`); code != 200 {
		t.Fatalf("PUT service_level 0.5: %d %s", code, body)
	}
	d := decide("zq")
	if !busyReason(d) {
		t.Errorf("zq at service level 50%%: %v %v, want BUSY_PERIOD", d.GetAction(), d.GetReasons())
	}
	for _, r := range d.GetReasons() {
		if r.GetCode() == tactv1.ReasonCode_REASON_CODE_BUSY_PERIOD && !strings.Contains(r.GetMessage(), "service level 50%") {
			t.Errorf("busy reason %q does not say what made the queue busy", r.GetMessage())
		}
	}
	for _, body := range []string{`{}`, `{"agents_available":3}`} {
		code, msg := put("zq2", body)
		if code != 400 || !strings.Contains(msg, "calls_waiting, longest_wait_seconds, service_level") {
			t.Errorf("PUT %s: %d %s; want 400 naming the measures", body, code, msg)
		}
	}
}

func TestListProducts(t *testing.T) {
	ts := startServer(t, Deps{})
	resp, err := tactv1.NewCatalogServiceClient(ts.conn).ListProducts(t.Context(), &tactv1.ListProductsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetProducts()); n < 6 || n > 10 {
		t.Errorf("catalog has %d products, want 6-10", n)
	}
	ids := make([]string, 0, len(resp.GetProducts()))
	for _, p := range resp.GetProducts() {
		if p.GetValue() <= 0 || len(p.GetChannels()) == 0 || p.GetName() == "" {
			t.Errorf("product %v: want a name, a value and channels", p)
		}
		ids = append(ids, p.GetProductId())
	}
	if !slices.IsSorted(ids) {
		t.Errorf("products not ordered by id: %v", ids)
	}
	// REST returns the same catalog.
	hr, err := http.Get(ts.base + "/v1/products")
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Body.Close()
	var rest tactv1.ListProductsResponse
	b, _ := io.ReadAll(hr.Body)
	if err := unmarshalProtoJSON(b, &rest); err != nil {
		t.Fatalf("REST products: %v: %s", err, b)
	}
	if diff := cmp.Diff(resp, &rest, protocmp.Transform()); diff != "" {
		t.Errorf("REST catalog differs from gRPC (-grpc +rest):\n%s", diff)
	}
}

func TestHealthAndReflection(t *testing.T) {
	ts := startServer(t, Deps{})
	ctx := t.Context()
	hc := healthpb.NewHealthClient(ts.conn)
	for _, svc := range []string{"", "tact.v1.DecisionService"} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(ts.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"tact.v1.DecisionService", "tact.v1.LoadService", "tact.v1.CatalogService", "grpc.health.v1.Health"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json"} {
		resp, err := http.Get(ts.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", path, resp.StatusCode)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
