package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server"
	"github.com/tact-nba/tact/server/servertest"
)

// FuzzRESTDecide posts any body to the REST Decide route of a real
// tactd on loopback: the answer is 200 with a decision, or 400/413 with a
// JSON error naming what is wrong; never a 5xx, never a dropped connection.
func FuzzRESTDecide(f *testing.F) {
	srv := servertest.Start(f, server.Deps{}, func(c *server.Config) { c.AccessLog = false })
	url := "http://" + srv.HTTPAddr() + "/v1/decisions"
	for _, s := range []string{
		`{"client_id":"C00003","channel":"CHANNEL_PHONE_INBOUND","context":{"reason":"INTERACTION_REASON_SALES_ENQUIRY","stage":"INTERACTION_STAGE_IN_PROGRESS"}}`,
		`{"clientId":"C00074","channel":"CHANNEL_WEB","maxOffers":3,"explain":true}`,
		`{"client_id":"","channel":"CHANNEL_WEB"}`, `{"client_id":"x","channel":99}`, `{"client_id":"x","channel":"CHANNEL_WEB","max_offers":-1}`,
		`{"client_id":"x","channel":"CHANNEL_WEB","unknown":1}`, `[]`, `null`, `{`, ``, `{"client_id":"\u0000\ud800"}`,
		`{"client_id":"C00001","channel":"CHANNEL_BRANCH","queue":"q","agent_id":"a","context":{"sentiment":"SENTIMENT_NEGATIVE"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%d: not a JSON object: %q", resp.StatusCode, raw)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			if out["decision_id"] == "" || out["action"] == nil {
				t.Fatalf("200 without a decision: %s", raw)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if msg, _ := out["message"].(string); msg == "" {
				t.Fatalf("%d without a message: %s", resp.StatusCode, raw)
			}
		default:
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, raw)
		}
	})
}

// FuzzDecide calls Decide over gRPC with any field values: OK, or
// INVALID_ARGUMENT naming a field; never another code.
func FuzzDecide(f *testing.F) {
	srv := servertest.Start(f, server.Deps{}, func(c *server.Config) { c.AccessLog = false })
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { conn.Close() })
	client := tactv1.NewDecisionServiceClient(conn)
	f.Add("C00003", int32(1), int32(1), int32(2), int32(0), uint32(1), false, "", "")
	f.Add("C00074", int32(3), int32(2), int32(3), int32(3), uint32(10), true, "retail", "agent-7")
	f.Add("", int32(0), int32(9), int32(-1), int32(99), uint32(11), true, strings.Repeat("q", 300), "\xff")
	f.Fuzz(func(t *testing.T, id string, ch, reason, stage, sentiment int32, maxOffers uint32, explain bool, queue, agent string) {
		// A string field with invalid UTF-8 cannot be marshaled by the
		// client (and grpc-go answers INTERNAL when it cannot unmarshal one).
		if !utf8.ValidString(id) || !utf8.ValidString(queue) || !utf8.ValidString(agent) {
			return
		}
		_, err := client.Decide(t.Context(), &tactv1.DecideRequest{
			ClientId: id, Channel: tactv1.Channel(ch), Queue: queue, AgentId: agent, MaxOffers: maxOffers, Explain: explain,
			Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason(reason), Stage: tactv1.InteractionStage(stage), Sentiment: tactv1.Sentiment(sentiment)},
		})
		switch status.Code(err) {
		case codes.OK:
		case codes.InvalidArgument:
			if !strings.Contains(status.Convert(err).Message(), ":") {
				t.Fatalf("INVALID_ARGUMENT without a field: %v", err)
			}
		default:
			t.Fatalf("Decide: %v", err)
		}
	})
}

// FuzzLoadConfig: any YAML config file is loaded or refused with an error;
// a loaded config is valid.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte("grpc_addr: 0.0.0.0:9090\nhttp_addr: 0.0.0.0:8080\ndata_dir: /var/lib/tact\nlog_level: info\nshutdown_timeout: 8s\n"))
	f.Add([]byte("feature_store: redis\nredis_addr: r:6379\ncache_bytes: 1\n"))
	f.Add([]byte("unknown_key: 1\n"))
	f.Add([]byte("model_poll: -1s\nmax_body_bytes: 9999999999999999999999\n"))
	f.Add([]byte("log_hash_key: [1, 2]\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "tactd.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := server.LoadConfig([]string{"--config", path}, nil)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("LoadConfig accepted a config that does not validate: %v", err)
		}
	})
}
