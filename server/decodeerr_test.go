package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// rawCodec sends a request's bytes as they are, so that a test can send
// what no generated client would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal([]byte, any) error   { return nil }
func (rawCodec) Name() string                  { return "proto" }

// TestUndecodableRequestsAreInvalidArgument sends requests whose bytes do
// not decode (invalid UTF-8 in a string field, a truncated field) to a
// unary and a streaming method over gRPC, and invalid UTF-8 over REST: the
// caller is told its request is wrong, with the field named, not that the
// server failed.
func TestUndecodableRequestsAreInvalidArgument(t *testing.T) {
	ts := startServer(t, Deps{})
	badUTF8 := []byte{0x0a, 0x03, 'C', 0xff, 0xfe} // field 1 (client_id / since...) = "C\xff\xfe"
	truncated := []byte{0x0a, 0x09, 'C', '0'}      // field 1 says 9 bytes, has 2
	for _, tc := range []struct {
		name, method string
		body         []byte
		stream       bool
		want         string
	}{
		{"invalid UTF-8", "/tact.v1.DecisionService/Decide", badUTF8, false, "field tact.v1.DecideRequest.client_id is not valid UTF-8"},
		{"truncated", "/tact.v1.DecisionService/Decide", truncated, false, "request: "},
		{"invalid UTF-8, outcome", "/tact.v1.DecisionService/RecordOutcome", badUTF8, false, "field tact.v1.RecordOutcomeRequest.decision_id is not valid UTF-8"},
		{"invalid UTF-8, stream", "/tact.v1.ExportService/ExportExposures", []byte{0x12, 0x02, 0xff, 0xfe}, true, "field tact.v1.ExportExposuresRequest.experiment is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.stream {
				var st grpc.ClientStream
				st, err = ts.conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true}, tc.method, grpc.ForceCodec(rawCodec{}))
				if err == nil {
					if err = st.SendMsg(tc.body); err == nil {
						_ = st.CloseSend()
						var out []byte
						err = st.RecvMsg(&out)
					}
				}
			} else {
				var out []byte
				err = ts.conn.Invoke(t.Context(), tc.method, tc.body, &out, grpc.ForceCodec(rawCodec{}))
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Errorf("err = %v, want InvalidArgument naming %q", err, tc.want)
			}
		})
	}
	code, body := post(t, ts.base+"/v1/decisions", "application/json", []byte("{\"client_id\":\"C\xff\xfe\",\"channel\":\"CHANNEL_PHONE_INBOUND\"}"))
	if code != http.StatusBadRequest || !strings.Contains(string(body), "UTF-8") {
		t.Errorf("REST: %d %s, want 400 naming UTF-8", code, body)
	}
}

// FuzzDecideBytes sends any bytes as a Decide request over a real gRPC
// connection: the answer is a decision or INVALID_ARGUMENT, never another
// code (INTERNAL was grpc-go's answer to bytes that do not decode).
func FuzzDecideBytes(f *testing.F) {
	valid, err := proto.Marshal(&tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND,
		Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SALES_ENQUIRY}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte{0x0a, 0x03, 'C', 0xff, 0xfe})
	f.Add([]byte{0x0a, 0x09, 'C', '0'})
	f.Add([]byte{})
	ts := startServer(f, Deps{})
	f.Fuzz(func(t *testing.T, body []byte) {
		var out []byte
		err := ts.conn.Invoke(context.Background(), "/tact.v1.DecisionService/Decide", body, &out, grpc.ForceCodec(rawCodec{}))
		if c := status.Code(err); c != codes.OK && c != codes.InvalidArgument {
			t.Fatalf("%x: %v", body, err)
		}
	})
}
