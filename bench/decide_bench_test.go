package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server"
	"github.com/tact-nba/tact/server/servertest"
)

// callersPerCPU makes RunParallel use 8 callers per GOMAXPROCS (16 on the
// 2-core reference machine), as a contact centre's desktops would.
const callersPerCPU = 8

// clientID spreads calls over the 1,000 demo clients.
func clientID(i int) string { return fmt.Sprintf("C%05d", i%1000+1) }

func BenchmarkDecideGRPC(b *testing.B) {
	srv := servertest.Start(b, server.Deps{})
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := tactv1.NewDecisionServiceClient(conn)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(callersPerCPU)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := client.Decide(ctx, &tactv1.DecideRequest{ClientId: clientID(i), Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkDecideREST(b *testing.B) {
	srv := servertest.Start(b, server.Deps{})
	url := "http://" + srv.HTTPAddr() + "/v1/decisions"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.SetParallelism(callersPerCPU)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			body := []byte(`{"client_id":"` + clientID(i) + `","channel":"CHANNEL_PHONE_INBOUND"}`)
			resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkDecideBufconn is the whole Decide in process: the real server's
// interceptors, engine and stores, over grpc-go on an in-memory listener
// (no TCP), beside a bare grpc-go echo of the same messages on the same
// kind of listener. The ratio of the two is what Tact adds to gRPC itself.
func BenchmarkDecideBufconn(b *testing.B) {
	b.Run("tact", func(b *testing.B) {
		lis := bufconn.Listen(1 << 20)
		servertest.Start(b, server.Deps{GRPCListener: lis})
		benchBufconn(b, lis)
	})
	b.Run("echo", func(b *testing.B) {
		lis := bufconn.Listen(1 << 20)
		s := grpc.NewServer()
		tactv1.RegisterDecisionServiceServer(s, echoServer{})
		go func() { _ = s.Serve(lis) }()
		defer s.Stop()
		benchBufconn(b, lis)
	})
}

func benchBufconn(b *testing.B, lis *bufconn.Listener) {
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := tactv1.NewDecisionServiceClient(conn)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(callersPerCPU)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if _, err := client.Decide(ctx, &tactv1.DecideRequest{ClientId: clientID(i), Channel: tactv1.Channel_CHANNEL_WEB}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// echoServer answers every Decide with the same typical decision.
type echoServer struct {
	tactv1.UnimplementedDecisionServiceServer
}

var echoAnswer = &tactv1.DecideResponse{
	DecisionId: "01a207b4-e5e7-7a7d-90ff-4bf25cd86043",
	Action:     tactv1.Action_ACTION_OFFER_NOW,
	Offers: []*tactv1.Offer{{ProductId: "home_insurance", Name: "Home insurance", Propensity: 0.648221, Score: 55.3399, Rank: 1,
		TalkingPoints: []string{"Cover for buildings and contents in one policy."}}},
	Reasons: []*tactv1.Reason{{Code: tactv1.ReasonCode_REASON_CODE_HIGH_PROPENSITY,
		Message: "Home insurance: propensity 0.65 clears the standard bar of 0.15; rank 1 of 5 eligible.", ProductId: "home_insurance"}},
	Tier: "standard", ModelVersion: "demo-2",
}

func (echoServer) Decide(context.Context, *tactv1.DecideRequest) (*tactv1.DecideResponse, error) {
	return echoAnswer, nil
}
