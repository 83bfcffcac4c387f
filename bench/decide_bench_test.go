package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

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
