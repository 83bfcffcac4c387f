// The callers and the loops that drive them: closed (as fast as answers
// come) and open (at a rate, counting how late the generator was).

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// caller makes one call and returns the error code ("" when it
// succeeded) and the action answered.
type caller func(ctx context.Context, req *tactv1.DecideRequest) (code, action string)

func newCaller(srv *child, useHTTP bool) (caller, func(), error) {
	if useHTTP {
		tr := &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0, IdleConnTimeout: time.Minute}
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		url := "http://" + srv.httpAddr + "/v1/decisions"
		enc := protojson.MarshalOptions{UseProtoNames: true}
		return func(ctx context.Context, req *tactv1.DecideRequest) (string, string) {
			body, err := enc.Marshal(req)
			if err != nil {
				return "marshal", ""
			}
			hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return "request", ""
			}
			hr.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(hr)
			if err != nil {
				return "transport", ""
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return "read", ""
			}
			if resp.StatusCode != http.StatusOK {
				return "http " + strconv.Itoa(resp.StatusCode), ""
			}
			var d struct {
				Action  string `json:"action"`
				Reasons []struct {
					Code string `json:"code"`
				} `json:"reasons"`
			}
			if err := json.Unmarshal(b, &d); err != nil {
				return "decode", ""
			}
			if d.Action == "ACTION_NO_OFFER" && len(d.Reasons) > 0 {
				return "", d.Action + "/" + strings.TrimPrefix(d.Reasons[0].Code, "REASON_CODE_")
			}
			return "", d.Action
		}, tr.CloseIdleConnections, nil
	}
	conn, err := grpc.NewClient(srv.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	dc := tactv1.NewDecisionServiceClient(conn)
	return func(ctx context.Context, req *tactv1.DecideRequest) (string, string) {
		resp, err := dc.Decide(ctx, req)
		if err != nil {
			return status.Code(err).String(), ""
		}
		if resp.GetAction() == tactv1.Action_ACTION_NO_OFFER && len(resp.GetReasons()) > 0 {
			// The reason shows which path a no-offer took (a cap, a
			// budget run out, ...).
			return "", resp.GetAction().String() + "/" + strings.TrimPrefix(resp.GetReasons()[0].GetCode().String(), "REASON_CODE_")
		}
		return "", resp.GetAction().String()
	}, func() { conn.Close() }, nil
}

// recorder collects latencies and outcomes.
type recorder struct {
	mu      sync.Mutex
	lat     []time.Duration
	okLat   []time.Duration // answered
	shedLat []time.Duration // refused for overload (RESOURCE_EXHAUSTED / 429)
	lags    []time.Duration // open loop: from the intended send time to the send
	errors  map[string]int
	actions map[string]int
}

func newRecorder() *recorder {
	return &recorder{errors: map[string]int{}, actions: map[string]int{}}
}

func (r *recorder) add(d time.Duration, code, action string) {
	r.mu.Lock()
	r.lat = append(r.lat, d)
	switch code {
	case "":
		r.okLat = append(r.okLat, d)
	case "ResourceExhausted", "http 429":
		r.shedLat = append(r.shedLat, d)
	}
	if code != "" {
		r.errors[code]++
	} else if action != "" {
		r.actions[strings.TrimPrefix(action, "ACTION_")]++
	}
	r.mu.Unlock()
}

func (r *recorder) addLag(d time.Duration) {
	r.mu.Lock()
	r.lags = append(r.lags, d)
	r.mu.Unlock()
}

func (r *recorder) result(elapsed time.Duration, cpu float64, rss float64) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.Sort(r.lat)
	q := func(p float64) float64 {
		if len(r.lat) == 0 {
			return 0
		}
		i := min(int(math.Ceil(p*float64(len(r.lat))))-1, len(r.lat)-1)
		return float64(r.lat[max(i, 0)]) / 1e6
	}
	res := Result{
		Calls: len(r.lat), QPS: float64(len(r.lat)) / elapsed.Seconds(),
		P50: q(0.50), P90: q(0.90), P99: q(0.99), P999: q(0.999),
		Errors: r.errors, PeakRSSMiB: rss,
	}
	if len(r.actions) > 0 {
		res.Actions = r.actions
	}
	if len(r.shedLat) > 0 {
		res.Shed = len(r.shedLat)
		res.ShedP99 = p99(r.shedLat)
		res.AnsweredP99 = p99(r.okLat)
		res.Goodput = float64(len(r.okLat)) / elapsed.Seconds()
	}
	if len(r.lags) > 0 {
		slices.Sort(r.lags)
		res.SendLagP99 = float64(r.lags[min(int(0.99*float64(len(r.lags))), len(r.lags)-1)]) / 1e6
	}
	if res.Calls > 0 {
		res.CPUPer1000 = cpu / float64(res.Calls) * 1000
	}
	return res
}

// p99 of unsorted durations, in ms.
func p99(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[min(int(math.Ceil(0.99*float64(len(s))))-1, len(s)-1)]) / 1e6
}

func closedLoop(ctx context.Context, o *options, call caller, m *mix, srv *child) Result {
	run := func(d time.Duration, rec *recorder) time.Duration {
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		var wg sync.WaitGroup
		start := time.Now()
		for range o.concurrency {
			d := m.drawer()
			wg.Go(func() {
				for ctx.Err() == nil {
					t := time.Now()
					code, action := call(context.WithoutCancel(ctx), d.draw())
					if rec != nil && ctx.Err() == nil {
						rec.add(time.Since(t), code, action)
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	run(o.warmup, nil)
	rec := newRecorder()
	hist0 := srv.engineHistogram()
	cpu0 := srv.cpuSeconds()
	elapsed := run(o.duration, rec)
	res := rec.result(elapsed, srv.cpuSeconds()-cpu0, srv.peakRSSMiB())
	res.Mode, res.Concurrency = "closed", o.concurrency
	res.engineQuantiles(hist0, srv.engineHistogram())
	res.RSSAnonMiB, res.RSSFileMiB = srv.status("RssAnon"), srv.status("RssFile")
	return res
}

// openLoop sends calls at a fixed rate whatever the answers' speed; each
// call's latency counts from its intended send time, so queueing shows.
func openLoop(ctx context.Context, o *options, call caller, m *mix, srv *child, rate float64) Result {
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(ctx, o.openDuration)
	defer cancel()
	interval := time.Duration(float64(time.Second) / rate)
	hist0 := srv.engineHistogram()
	cpu0 := srv.cpuSeconds()
	start := time.Now()
	var wg sync.WaitGroup
	inflight := make(chan struct{}, 100_000) // a bound, not a pacing device
	d := m.drawer()
	for i := 0; ; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case inflight <- struct{}{}:
		default:
			rec.add(time.Since(intended), "client overloaded", "")
			continue
		}
		req := d.draw()
		wg.Go(func() {
			defer func() { <-inflight }()
			lag := time.Since(intended)
			code, action := call(context.WithoutCancel(ctx), req)
			rec.add(time.Since(intended), code, action)
			rec.addLag(lag)
		})
	}
	wg.Wait()
	res := rec.result(time.Since(start), srv.cpuSeconds()-cpu0, srv.peakRSSMiB())
	res.Mode, res.Rate = "open", rate
	res.engineQuantiles(hist0, srv.engineHistogram())
	res.RSSAnonMiB, res.RSSFileMiB = srv.status("RssAnon"), srv.status("RssFile")
	return res
}
