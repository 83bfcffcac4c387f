package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/features/redistest"
	"github.com/tact-nba/tact/model/demo"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server/servertest"
)

// TestMain lets the test binary act as tactd, so that the tests below run
// the real program in a child process without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("TACTD_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startTactd starts tactd with the args in a child process and waits until
// /readyz answers 200.
func startTactd(t *testing.T, args ...string) (cmd *exec.Cmd, grpcAddr, httpAddr string, stderr *bytes.Buffer) {
	t.Helper()
	return startTactdIn(t, t.TempDir(), args...)
}

// startTactdIn is startTactd with a given data directory.
func startTactdIn(t *testing.T, dataDir string, args ...string) (cmd *exec.Cmd, grpcAddr, httpAddr string, stderr *bytes.Buffer) {
	t.Helper()
	grpcAddr, httpAddr = servertest.FreeAddr(t), servertest.FreeAddr(t)
	cmd = exec.Command(os.Args[0], append([]string{"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--data-dir", dataDir, "--demo=true", "--drain-delay=0s"}, args...)...)
	cmd.Env = append(os.Environ(), "TACTD_TEST_MAIN=1")
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, grpcAddr, httpAddr, stderr
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tactd not ready after 10 s; stderr:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSIGTERMUnderLoad sends SIGTERM while 50 callers are deciding: every
// call either succeeds or, once the server has stopped taking calls, is
// refused as Unavailable; none fails midway; the process exits 0 within
// 10 s.
func TestSIGTERMUnderLoad(t *testing.T) {
	cmd, grpcAddr, _, stderr := startTactd(t)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := tactv1.NewDecisionServiceClient(conn)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, refused int
	var failures []error
	stop := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := client.Decide(ctx, &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
				cancel()
				mu.Lock()
				switch status.Code(err) {
				case codes.OK:
					ok++
				case codes.Unavailable:
					refused++
				default:
					failures = append(failures, err)
				}
				mu.Unlock()
				if status.Code(err) == codes.Unavailable {
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // let the load run
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("tactd exited with %v, want 0; stderr:\n%s", err, stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("tactd still running 10 s after SIGTERM; stderr:\n%s", stderr)
	}
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d calls failed other than by refusal, first: %v", len(failures), failures[0])
	}
	if ok == 0 {
		t.Error("no call succeeded")
	}
	if !strings.Contains(stderr.String(), "tactd stopped") {
		t.Errorf("stderr lacks the clean-stop line:\n%s", stderr)
	}
	t.Logf("exit %v after SIGTERM; %d calls ok, %d refused after shutdown", took, ok, refused)
}

func TestBadConfigExits1(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--grpc-addr", "nonsense", "--log-level", "loud")
	cmd.Env = append(os.Environ(), "TACTD_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want status 1; output:\n%s", err, out)
	}
	for _, want := range []string{"grpc_addr", "log_level"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output does not name %s:\n%s", want, out)
		}
	}
}

// TestReadmeCurlExample runs the README's curl example (its request body,
// read from the README) against a real tactd.
func TestReadmeCurlExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`curl -s -X POST localhost:8080/v1/decisions -d '([^']+)'`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no curl example for POST /v1/decisions")
	}
	body := string(m[1])
	_, _, httpAddr, _ := startTactd(t)
	resp, err := http.Post("http://"+httpAddr+"/v1/decisions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		DecisionID string `json:"decision_id"`
		Action     string `json:"action"`
		Reasons    []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"reasons"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || d.DecisionID == "" || d.Action == "" || len(d.Reasons) == 0 || d.Reasons[0].Message == "" {
		t.Errorf("status %d, decision %+v: want a decision id, an action and reasons", resp.StatusCode, d)
	}
}

// TestAcknowledgedWritesSurviveKill9 writes a client's features and an
// outcome through a running tactd, kills it with SIGKILL, and finds both in
// the bbolt file.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	dataDir := t.TempDir()
	cmd, grpcAddr, httpAddr, stderr := startTactdIn(t, dataDir)
	req, err := http.NewRequest(http.MethodPut, "http://"+httpAddr+"/v1/clients/K1/features",
		strings.NewReader(`{"features":{"balance":{"number":300000},"consent_offers":{"bool":true},"age":{"number":40}}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT features: %d", resp.StatusCode)
	}
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dc := tactv1.NewDecisionServiceClient(conn)
	d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
	if err != nil || len(d.GetOffers()) == 0 {
		t.Fatalf("Decide: %v, %v", d, err)
	}
	if _, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: d.GetOffers()[0].GetProductId(), Outcome: tactv1.Outcome_OUTCOME_ACCEPTED}); err != nil {
		t.Fatalf("RecordOutcome: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the exit error is expected

	st, err := features.OpenBolt(filepath.Join(dataDir, "tact.db"))
	if err != nil {
		t.Fatalf("open the store after kill -9: %v\n%s", err, stderr)
	}
	defer st.Close()
	rec, err := st.Get(t.Context(), "K1")
	if err != nil || rec.Map()["balance"].Num != 300000 {
		t.Errorf("features after kill -9: %+v, %v", rec, err)
	}
	outs, err := st.Outcomes(t.Context(), d.GetDecisionId())
	if err != nil || len(outs) != 1 || outs[0].Outcome != "accepted" {
		t.Errorf("outcomes after kill -9: %+v, %v", outs, err)
	}
}

// TestOutcomesSurviveKill9AndRestart records outcomes of every kind for
// 40 demo clients through a running tactd, kills it with SIGKILL, starts
// it again on the same data directory and finds every acknowledged
// outcome in the export, and their effect in the contact history.
func TestOutcomesSurviveKill9AndRestart(t *testing.T) {
	dataDir := t.TempDir()
	cmd, grpcAddr, _, _ := startTactdIn(t, dataDir)
	conn := dial(t, grpcAddr)
	dc := tactv1.NewDecisionServiceClient(conn)
	kinds := []tactv1.Outcome{tactv1.Outcome_OUTCOME_PRESENTED, tactv1.Outcome_OUTCOME_ACCEPTED, tactv1.Outcome_OUTCOME_DECLINED, tactv1.Outcome_OUTCOME_NOT_PRESENTED}
	type key struct{ decision, product, outcome string }
	acked := map[key]bool{}
	declined := ""
	for i := 1; len(acked) < 40 && i <= 1000; i++ {
		id := fmt.Sprintf("C%05d", i)
		d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: id, Channel: tactv1.Channel_CHANNEL_WEB})
		if err != nil {
			t.Fatal(err)
		}
		if d.GetAction() != tactv1.Action_ACTION_OFFER_NOW {
			continue
		}
		kind := kinds[len(acked)%len(kinds)]
		req := &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: d.GetOffers()[0].GetProductId(), Outcome: kind}
		if kind == tactv1.Outcome_OUTCOME_NOT_PRESENTED {
			req.NotPresentedReason = tactv1.NotPresentedReason_NOT_PRESENTED_REASON_NO_TIME
		}
		if _, err := dc.RecordOutcome(t.Context(), req); err != nil {
			t.Fatalf("RecordOutcome: %v", err)
		}
		acked[key{d.GetDecisionId(), req.GetProductId(), strings.ToLower(strings.TrimPrefix(kind.String(), "OUTCOME_"))}] = true
		if kind == tactv1.Outcome_OUTCOME_DECLINED && declined == "" {
			declined = id + "/" + req.GetProductId()
		}
	}
	if len(acked) < 40 {
		t.Fatalf("only %d demo clients got an offer on the web", len(acked))
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the exit error is expected
	conn.Close()

	_, grpcAddr, _, _ = startTactdIn(t, dataDir)
	conn = dial(t, grpcAddr)
	stream, err := tactv1.NewExportServiceClient(conn).ExportOutcomes(t.Context(), &tactv1.ExportOutcomesRequest{Since: timestamppb.New(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		o := m.GetOutcome()
		if acked[key{o.GetDecisionId(), o.GetProductId(), o.GetOutcome()}] {
			found++
		}
		if o.GetAgentVeto() != (o.GetOutcome() == "not_presented") || (o.GetAgentVeto() && o.GetAgentReason() != "no_time") {
			t.Errorf("exported outcome %v: an agent veto must be marked, with its reason, and only a veto", o)
		}
	}
	if found != len(acked) {
		t.Errorf("after kill -9 and restart: %d of %d acknowledged outcomes exported", found, len(acked))
	}
	// The refusal is in the contact history too: a cool-down.
	client, product, _ := strings.Cut(declined, "/")
	d, err := tactv1.NewDecisionServiceClient(conn).Decide(t.Context(), &tactv1.DecideRequest{ClientId: client, Channel: tactv1.Channel_CHANNEL_WEB, Explain: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range d.GetCandidates() {
		if c.GetProductId() != product {
			continue
		}
		last := c.GetGates()[len(c.GetGates())-1]
		if last.GetPassed() || last.GetName() != "cool_down" {
			t.Errorf("%s declined %s before the kill; after restart its last gate is %v, want a failed cool_down", client, product, last)
		}
	}
}

// TestTwoTactdOneRedisHoldTheCap runs two tactd processes on one Redis
// and sends 200 concurrent Decide + Presented pairs for one client, half
// to each: together they make no more offers than the weekly cap.
func TestTwoTactdOneRedisHoldTheCap(t *testing.T) {
	rs := redistest.Start(t)
	r, err := features.OpenRedis(t.Context(), features.RedisConfig{Addr: rs.Addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bank, err := demo.New(demo.Seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.PutBatch(t.Context(), bank.Clients[2:3]); err != nil { // C00003
		t.Fatal(err)
	}
	r.Close()
	var clients []tactv1.DecisionServiceClient
	for range 2 {
		// A generous budget: 200 calls at once queue for Redis connections.
		_, addr, _, _ := startTactd(t, "--feature-store", "redis", "--redis-addr", rs.Addr, "--feature-budget", "5s")
		clients = append(clients, tactv1.NewDecisionServiceClient(dial(t, addr)))
	}
	var offered atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 200 {
		dc := clients[i%2]
		wg.Go(func() {
			<-start
			d, err := dc.Decide(context.Background(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND, MaxOffers: 3})
			if err != nil {
				t.Errorf("Decide: %v", err)
				return
			}
			for _, o := range d.GetOffers() {
				offered.Add(1)
				if _, err := dc.RecordOutcome(context.Background(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: o.GetProductId(), Outcome: tactv1.Outcome_OUTCOME_PRESENTED}); err != nil {
					t.Errorf("RecordOutcome: %v", err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	// The default policy: a standard client gets 2 offers a week by phone.
	if offered.Load() != 2 {
		t.Errorf("two tactd on one Redis made %d offers to one client; the weekly phone cap is 2", offered.Load())
	}
	t.Logf("200 pairs over 2 tactd processes: %d offers made", offered.Load())
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestTwoTactdAssignTheSameVariants: two tactd processes on the README's
// champion/challenger config put every demo client in the same variation
// and score it with the same model version.
func TestTwoTactdAssignTheSameVariants(t *testing.T) {
	exps, err := filepath.Abs("../../examples/experiments.json")
	if err != nil {
		t.Fatal(err)
	}
	var clients [2]tactv1.DecisionServiceClient
	for i := range clients {
		_, grpcAddr, _, _ := startTactd(t, "--experiments-file", exps)
		clients[i] = tactv1.NewDecisionServiceClient(dial(t, grpcAddr))
	}
	counts := map[string]int{}
	for i := 1; i <= 1000; i++ {
		var got [2]string
		for j, c := range clients {
			d, err := c.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", i), Channel: tactv1.Channel_CHANNEL_WEB})
			if err != nil {
				t.Fatal(err)
			}
			got[j] = d.GetExperimentVariant() + " " + d.GetModelVersion()
		}
		if got[0] != got[1] || got[0] == " " {
			t.Fatalf("C%05d: %q on one tactd, %q on the other", i, got[0], got[1])
		}
		counts[got[0]]++
	}
	t.Logf("%v", counts)
	if len(counts) != 2 {
		t.Errorf("variants seen: %v, want the champion's and the challenger's", counts)
	}
}

// TestOfferDecisionsSurviveKill9 kills tactd with SIGKILL in the middle of
// a load of decisions: every offer it answered takes its outcome after the
// restart (offers were answered before their decision reached the disk,
// and 14 to 343 per kill were then refused "unknown decision"), with the
// journal synced before each answer and with it synced each second.
func TestOfferDecisionsSurviveKill9(t *testing.T) {
	for _, sync := range []string{"always", "everysec"} {
		t.Run(sync, func(t *testing.T) { offersSurviveKill9(t, "--journal-sync", sync) })
	}
}

func offersSurviveKill9(t *testing.T, args ...string) {
	dataDir := t.TempDir()
	cmd, grpcAddr, _, _ := startTactdIn(t, dataDir, args...)
	conn := dial(t, grpcAddr)
	dc := tactv1.NewDecisionServiceClient(conn)
	type offer struct{ decision, product string }
	var mu sync.Mutex
	var offers []offer
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
				id := fmt.Sprintf("C%05d", 1+(w*997+i*13)%1000)
				d, err := dc.Decide(context.Background(), &tactv1.DecideRequest{ClientId: id, Channel: tactv1.Channel_CHANNEL_BRANCH})
				if err != nil {
					return // the kill
				}
				if d.GetAction() == tactv1.Action_ACTION_OFFER_NOW {
					mu.Lock()
					offers = append(offers, offer{d.GetDecisionId(), d.GetOffers()[0].GetProductId()})
					mu.Unlock()
				}
			}
		})
	}
	// Kill while offers are being made (the demo clients' caps run out
	// after about 1,300): 300 answered, the next ones in flight.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(offers)
		mu.Unlock()
		if n >= 300 || time.Now().After(deadline) {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the exit error is expected
	close(stop)
	wg.Wait()
	conn.Close()
	if len(offers) == 0 {
		t.Fatal("no offer was made before the kill")
	}

	_, grpcAddr, _, _ = startTactdIn(t, dataDir, args...)
	dc = tactv1.NewDecisionServiceClient(dial(t, grpcAddr))
	refused := 0
	for _, o := range offers {
		_, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: o.decision, ProductId: o.product, Outcome: tactv1.Outcome_OUTCOME_PRESENTED})
		if err != nil {
			refused++
			if refused == 1 {
				t.Errorf("outcome for an answered offer after kill -9: %v", err)
			}
		}
	}
	if refused > 0 {
		t.Errorf("%d of %d answered offers refused their outcome after kill -9", refused, len(offers))
	} else {
		t.Logf("%d offers answered before the kill, all took their outcome after the restart", len(offers))
	}
}
