// Command tactfault drives a running tactd the way agent desktops do
// (decide, then record an outcome for an offer), while an operator
// injects a fault by hand (a full disk, a SIGTERM, Redis killed), and
// counts what callers saw: answers by status, calls that failed at the
// connection level, and offers made. It keeps every outcome tactd
// acknowledged in a file, and its check command verifies later that each
// is in tactd's export (nothing acknowledged lost).
//
//	tactfault run --http localhost:8080 --grpc localhost:9090 --via rest \
//	    --duration 60s --workers 8 --acked acked.txt [--stop-when-not-ready]
//	tactfault check --grpc localhost:9090 --acked acked.txt
//	tactfault run ... --offers-only --acked offers.txt   (no outcomes: the offers are kept)
//	tactfault settle --grpc localhost:9090 --acked offers.txt
//
// run prints a line a second (calls by result, offers) and a JSON summary.
// With --stop-when-not-ready it acts as a load balancer would: it polls
// /readyz and sends no new call once it answers 503. With --offers-only it
// records no outcome but keeps every offer answered, and settle then
// records an outcome for each (after a kill -9 and a restart, say) and
// counts those refused.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, pflag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "tactfault:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: tactfault run|check [flags]")
	}
	fs := pflag.NewFlagSet("tactfault "+args[0], pflag.ContinueOnError)
	o := opts{}
	fs.StringVar(&o.httpAddr, "http", "localhost:8080", "tactd's HTTP address")
	fs.StringVar(&o.grpcAddr, "grpc", "localhost:9090", "tactd's gRPC address")
	fs.StringVar(&o.via, "via", "rest", "rest or grpc")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long to run")
	fs.IntVar(&o.workers, "workers", 8, "concurrent callers")
	fs.IntVar(&o.clients, "clients", 1000, "clients C00001.. to draw from")
	fs.StringVar(&o.acked, "acked", "acked.txt", "file of acknowledged outcomes (appended by run, read by check)")
	fs.BoolVar(&o.stopWhenNotReady, "stop-when-not-ready", false, "stop sending new calls once /readyz answers 503, as a load balancer would")
	fs.BoolVar(&o.offersOnly, "offers-only", false, "record no outcome; keep each offer answered in --acked (for settle)")
	fs.Float64Var(&o.rate, "rate", 0, "decisions per second in all (0: as fast as the callers go)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	conn, err := grpc.NewClient(o.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	switch args[0] {
	case "run":
		return o.run(ctx, conn, out)
	case "check":
		return o.check(ctx, conn, out)
	case "settle":
		return o.settle(ctx, conn, out)
	default:
		return fmt.Errorf("unknown command %q (run or check)", args[0])
	}
}

type opts struct {
	httpAddr, grpcAddr, via, acked string
	duration                       time.Duration
	workers, clients               int
	rate                           float64
	stopWhenNotReady, offersOnly   bool
}

// counts are a run's results, by kind: "decide OK", "outcome 503",
// "decide connection error" and so on.
type counts struct {
	mu     sync.Mutex
	byKind map[string]int
	second map[string]int // since the last progress line
	first  map[string]string
}

func (c *counts) add(kind, example string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byKind[kind]++
	c.second[kind]++
	if _, ok := c.first[kind]; !ok && example != "" {
		c.first[kind] = example
	}
}

func (o *opts) run(ctx context.Context, conn *grpc.ClientConn, out io.Writer) error {
	ackFile, err := os.OpenFile(o.acked, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer ackFile.Close()
	var ackMu sync.Mutex
	ack := func(decision, product string) {
		ackMu.Lock()
		defer ackMu.Unlock()
		fmt.Fprintln(ackFile, decision, product)
	}
	c := &counts{byKind: map[string]int{}, second: map[string]int{}, first: map[string]string{}}
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var routed atomic.Bool
	routed.Store(true)
	if o.stopWhenNotReady {
		go pollReady(ctx, "http://"+o.httpAddr+"/readyz", &routed, c)
	}
	// Calls run on a context of their own (5 s each), so that the end of
	// the run stops new calls but never cuts one in flight.
	callCtx := context.WithoutCancel(ctx)
	dec := tactv1.NewDecisionServiceClient(conn)
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.workers}, Timeout: 10 * time.Second}
	limit := rate.NewLimiter(rate.Inf, 1)
	if o.rate > 0 {
		limit = rate.NewLimiter(rate.Limit(o.rate), 1)
	}
	var wg sync.WaitGroup
	for range o.workers {
		wg.Go(func() {
			for ctx.Err() == nil && routed.Load() {
				if limit.Wait(ctx) != nil {
					return
				}
				ctx, cancel := context.WithTimeout(callCtx, 5*time.Second)
				o.call(ctx, c, dec, httpc, ack)
				cancel()
			}
		})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-tick.C:
			c.mu.Lock()
			fmt.Fprintf(out, "%5.0fs %s\n", time.Since(start).Seconds(), line(c.second))
			c.second = map[string]int{}
			c.mu.Unlock()
		case <-done:
			c.mu.Lock()
			defer c.mu.Unlock()
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"counts": c.byKind, "first_error_of_each_kind": c.first, "seconds": time.Since(start).Seconds()})
		}
	}
}

// call makes one decision and, for an offer, records an outcome.
func (o *opts) call(ctx context.Context, c *counts, dec tactv1.DecisionServiceClient, httpc *http.Client, ack func(decision, product string)) {
	id := fmt.Sprintf("C%05d", 1+rand.IntN(o.clients))
	var d *tactv1.DecideResponse
	var kind, example string
	if o.via == "grpc" {
		d, kind, example = grpcDecide(ctx, dec, id)
	} else {
		d, kind, example = restDecide(ctx, httpc, o.httpAddr, id)
	}
	c.add("decide "+kind, example)
	if d.GetDegraded() {
		c.add("decide degraded", "")
	}
	if d == nil || d.GetAction() != tactv1.Action_ACTION_OFFER_NOW || len(d.GetOffers()) == 0 {
		return
	}
	c.add("offer made", "")
	product := d.GetOffers()[0].GetProductId()
	if o.offersOnly {
		ack(d.GetDecisionId(), product)
		return
	}
	outcome := []tactv1.Outcome{tactv1.Outcome_OUTCOME_ACCEPTED, tactv1.Outcome_OUTCOME_DECLINED, tactv1.Outcome_OUTCOME_PRESENTED}[rand.IntN(3)]
	if o.via == "grpc" {
		_, err := dec.RecordOutcome(ctx, &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: product, Outcome: outcome, OccurredAt: timestamppb.Now()})
		kind, example = grpcKind(err)
	} else {
		body := fmt.Sprintf(`{"product_id":%q,"outcome":%q}`, product, outcome.String())
		_, kind, example = restCall(ctx, httpc, "http://"+o.httpAddr+"/v1/decisions/"+d.GetDecisionId()+"/outcomes", body, nil)
	}
	c.add("outcome "+kind, example)
	if kind == "OK" {
		ack(d.GetDecisionId(), product)
	}
}

func line(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d  ", k, m[k])
	}
	return b.String()
}

func pollReady(ctx context.Context, url string, routed *atomic.Bool, c *counts) {
	probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	for ctx.Err() == nil {
		resp, err := probe.Get(url)
		if err != nil {
			c.add("readyz connection error", err.Error())
			routed.Store(false)
			return
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			c.add("readyz 503 seen", "")
			routed.Store(false)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grpcDecide(ctx context.Context, dec tactv1.DecisionServiceClient, id string) (*tactv1.DecideResponse, string, string) {
	d, err := dec.Decide(ctx, &tactv1.DecideRequest{ClientId: id, Channel: tactv1.Channel_CHANNEL_BRANCH})
	kind, example := grpcKind(err)
	return d, kind, example
}

func grpcKind(err error) (string, string) {
	if err == nil {
		return "OK", ""
	}
	st := status.Convert(err)
	return st.Code().String(), st.Message()
}

func restDecide(ctx context.Context, httpc *http.Client, addr, id string) (*tactv1.DecideResponse, string, string) {
	body := fmt.Sprintf(`{"client_id":%q,"channel":"CHANNEL_BRANCH"}`, id)
	var d struct {
		DecisionID string `json:"decision_id"`
		Action     string `json:"action"`
		Degraded   bool   `json:"degraded"`
		Offers     []struct {
			ProductID string `json:"product_id"`
		} `json:"offers"`
	}
	_, kind, example := restCall(ctx, httpc, "http://"+addr+"/v1/decisions", body, &d)
	if kind != "OK" {
		return nil, kind, example
	}
	resp := &tactv1.DecideResponse{DecisionId: d.DecisionID, Action: tactv1.Action(tactv1.Action_value[d.Action]), Degraded: d.Degraded}
	for _, o := range d.Offers {
		resp.Offers = append(resp.Offers, &tactv1.Offer{ProductId: o.ProductID})
	}
	return resp, kind, ""
}

// restCall POSTs body and reports the result as "OK", the HTTP status
// ("503"), or "connection error".
func restCall(ctx context.Context, httpc *http.Client, url, body string, into any) (int, string, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "request error", err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, "connection error", err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "connection error", err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Sprint(resp.StatusCode), string(bytes.TrimSpace(b))
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			return resp.StatusCode, "bad JSON", err.Error()
		}
	}
	return resp.StatusCode, "OK", ""
}

// settle records an outcome (presented) for every offer in the file and
// counts the answers by code: an offer tactd answered must take its
// outcome, after a crash too.
func (o *opts) settle(ctx context.Context, conn *grpc.ClientConn, out io.Writer) error {
	lines, err := readLines(o.acked)
	if err != nil {
		return err
	}
	dec := tactv1.NewDecisionServiceClient(conn)
	byCode := map[string]int{}
	var first string
	for l := range lines {
		decision, product, _ := strings.Cut(l, " ")
		_, err := dec.RecordOutcome(ctx, &tactv1.RecordOutcomeRequest{DecisionId: decision, ProductId: product, Outcome: tactv1.Outcome_OUTCOME_PRESENTED})
		code, msg := grpcKind(err)
		byCode[code]++
		if err != nil && first == "" {
			first = msg
		}
	}
	fmt.Fprintf(out, "outcomes for %d answered offers: %s\n", len(lines), line(byCode))
	if byCode["OK"] != len(lines) {
		return fmt.Errorf("%d of %d answered offers did not take their outcome (first: %s)", len(lines)-byCode["OK"], len(lines), first)
	}
	return nil
}

func readLines(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines[l] = true
		}
	}
	return lines, sc.Err()
}

// check reads the acknowledged outcomes and looks each up in tactd's
// outcome export.
func (o *opts) check(ctx context.Context, conn *grpc.ClientConn, out io.Writer) error {
	want, err := readLines(o.acked)
	if err != nil {
		return err
	}
	stream, err := tactv1.NewExportServiceClient(conn).ExportOutcomes(ctx, &tactv1.ExportOutcomesRequest{Since: timestamppb.New(time.Now().Add(-7 * 24 * time.Hour))})
	if err != nil {
		return err
	}
	found := 0
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		k := r.GetOutcome().GetDecisionId() + " " + r.GetOutcome().GetProductId()
		if want[k] {
			found++
			delete(want, k)
		}
	}
	fmt.Fprintf(out, "acknowledged outcomes: %d found in the export, %d missing\n", found, len(want))
	if len(want) > 0 {
		return fmt.Errorf("%d acknowledged outcomes are missing", len(want))
	}
	return nil
}
