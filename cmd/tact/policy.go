package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// outcome records what happened to an offer.
func outcome(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	fs := pflag.NewFlagSet("tact outcome", pflag.ContinueOnError)
	var c common
	c.register(fs, envAddr)
	decisionID := fs.String("decision", "", "decision id (required)")
	product := fs.String("product", "", "product offered in the decision (required)")
	what := fs.String("outcome", "", "presented, accepted, declined or not-presented (required)")
	why := fs.String("reason", "", "with not-presented, the agent's reason: not-appropriate, client-upset, no-time, other")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *decisionID == "" || *product == "" || *what == "" {
		return &usageError{"--decision, --product and --outcome are required"}
	}
	o, err := enumValue("outcome", *what, "OUTCOME_", tactv1.Outcome_value)
	if err != nil {
		return err
	}
	r, err := enumValue("reason", *why, "NOT_PRESENTED_REASON_", tactv1.NotPresentedReason_value)
	if err != nil {
		return err
	}
	if (tactv1.Outcome(o) == tactv1.Outcome_OUTCOME_NOT_PRESENTED) != (r != 0) {
		return &usageError{"--reason is required with --outcome not-presented, and only then"}
	}
	resp, err := call(ctx, &c, "outcome", func(ctx context.Context, conn *grpc.ClientConn) (*tactv1.RecordOutcomeResponse, error) {
		return tactv1.NewDecisionServiceClient(conn).RecordOutcome(ctx, &tactv1.RecordOutcomeRequest{
			DecisionId: *decisionID, ProductId: *product, Outcome: tactv1.Outcome(o), NotPresentedReason: tactv1.NotPresentedReason(r),
		})
	})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, resp)
	}
	note := ""
	if resp.GetDuplicate() {
		note = " (already recorded; nothing changed)"
	}
	fmt.Fprintf(out, "Recorded: %s %s for decision %s at %s%s\n", *product, words(resp.GetOutcome().String(), "OUTCOME_"),
		resp.GetDecisionId(), resp.GetRecordedAt().AsTime().Format(time.RFC3339), note)
	return nil
}

// loadCmd reports a queue's load, as the telephony platform's feed does.
func loadCmd(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	fs := pflag.NewFlagSet("tact load", pflag.ContinueOnError)
	var c common
	c.register(fs, envAddr)
	queue := fs.String("queue", "", "queue name (required)")
	waiting := fs.Uint32("calls-waiting", 0, "calls waiting to be answered")
	longest := fs.Float64("longest-wait", 0, "longest current wait, in seconds")
	sl := fs.Float64("service-level", 0, "share of calls answered within the target, 0..1")
	agents := fs.Uint32("agents-available", 0, "agents free to take a call")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *queue == "" {
		return &usageError{"--queue is required"}
	}
	// Only the measures given are sent: one left out is unknown to tactd,
	// not zero.
	req := &tactv1.ReportLoadRequest{Queue: *queue}
	if fs.Changed("calls-waiting") {
		req.CallsWaiting = waiting
	}
	if fs.Changed("longest-wait") {
		req.LongestWaitSeconds = longest
	}
	if fs.Changed("service-level") {
		req.ServiceLevel = sl
	}
	if fs.Changed("agents-available") {
		req.AgentsAvailable = agents
	}
	if req.CallsWaiting == nil && req.LongestWaitSeconds == nil && req.ServiceLevel == nil {
		return &usageError{"give at least one of --calls-waiting, --longest-wait and --service-level"}
	}
	resp, err := call(ctx, &c, "load", func(ctx context.Context, conn *grpc.ClientConn) (*tactv1.ReportLoadResponse, error) {
		return tactv1.NewLoadServiceClient(conn).ReportLoad(ctx, req)
	})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, resp)
	}
	l := resp.GetLoad()
	var measures []string
	if l.CallsWaiting != nil {
		measures = append(measures, fmt.Sprintf("%d waiting", l.GetCallsWaiting()))
	}
	if l.LongestWaitSeconds != nil {
		measures = append(measures, fmt.Sprintf("longest wait %.0f s", l.GetLongestWaitSeconds()))
	}
	if l.ServiceLevel != nil {
		measures = append(measures, fmt.Sprintf("service level %.2f", l.GetServiceLevel()))
	}
	if l.AgentsAvailable != nil {
		measures = append(measures, fmt.Sprintf("%d agents free", l.GetAgentsAvailable()))
	}
	fmt.Fprintf(out, "Queue %s: %s (as of %s)\n", l.GetQueue(), strings.Join(measures, ", "), l.GetAsOf().AsTime().Format(time.RFC3339))
	return nil
}

// export writes the decision log, the outcomes or the experiment
// exposures as JSON Lines.
func export(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	const use = "tact export decisions|outcomes|exposures --since T [--experiment KEY] | tact export models"
	if len(args) > 0 && args[0] == "models" {
		return exportModels(ctx, args[1:], out, envAddr)
	}
	if len(args) == 0 || (args[0] != "decisions" && args[0] != "outcomes" && args[0] != "exposures") {
		return &usageError{use}
	}
	what := args[0]
	fs := pflag.NewFlagSet("tact export "+what, pflag.ContinueOnError)
	var c common
	c.register(fs, envAddr)
	fs.Lookup("timeout").DefValue, c.timeout = "10m0s", 10*time.Minute
	since := fs.String("since", "", "RFC 3339 time or YYYY-MM-DD (UTC), or a duration back from now such as 24h or 30d (required)")
	experiment := fs.String("experiment", "", "with exposures: only this experiment's")
	if err := parse(fs, args[1:], out); err != nil {
		return err
	}
	from, err := parseSince(*since, time.Now())
	if err != nil {
		return &usageError{"--since: " + err.Error()}
	}
	if *experiment != "" && what != "exposures" {
		return &usageError{"--experiment: only with tact export exposures"}
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	client := tactv1.NewExportServiceClient(conn)
	ts := timestamppb.New(from)
	switch what {
	case "decisions":
		return writeStream(out, &c.connFlags, func() (grpc.ServerStreamingClient[tactv1.ExportDecisionsResponse], error) {
			return client.ExportDecisions(ctx, &tactv1.ExportDecisionsRequest{Since: ts})
		}, func(m *tactv1.ExportDecisionsResponse) proto.Message { return m.GetDecision() })
	case "outcomes":
		return writeStream(out, &c.connFlags, func() (grpc.ServerStreamingClient[tactv1.ExportOutcomesResponse], error) {
			return client.ExportOutcomes(ctx, &tactv1.ExportOutcomesRequest{Since: ts})
		}, func(m *tactv1.ExportOutcomesResponse) proto.Message { return m.GetOutcome() })
	default:
		return writeStream(out, &c.connFlags, func() (grpc.ServerStreamingClient[tactv1.ExportExposuresResponse], error) {
			return client.ExportExposures(ctx, &tactv1.ExportExposuresRequest{Since: ts, Experiment: *experiment})
		}, func(m *tactv1.ExportExposuresResponse) proto.Message { return m.GetExposure() })
	}
}

// exportModels writes each catalog product's model and its health as a
// JSON line.
func exportModels(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	fs := pflag.NewFlagSet("tact export models", pflag.ContinueOnError)
	var c common
	c.register(fs, envAddr)
	if err := parse(fs, args, out); err != nil {
		return err
	}
	resp, err := call(ctx, &c, "export models", func(ctx context.Context, conn *grpc.ClientConn) (*tactv1.ListModelsResponse, error) {
		return tactv1.NewModelServiceClient(conn).ListModels(ctx, &tactv1.ListModelsRequest{})
	})
	if err != nil {
		return err
	}
	enc := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
	for _, m := range resp.GetModels() {
		raw, err := enc.Marshal(m)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(out, "{\"bundle_version\":%q,\"model\":%s}\n", resp.GetBundleVersion(), b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// writeStream writes each message of a server stream as a JSON line.
func writeStream[M any](out io.Writer, c *connFlags, open func() (grpc.ServerStreamingClient[M], error), row func(*M) proto.Message) error {
	stream, err := open()
	if err != nil {
		return c.callError("export", err)
	}
	enc := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
	prog := newProgress("records")
	defer prog.done()
	for n := 0; ; n++ {
		prog.at(int64(n))
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return c.callError(fmt.Sprintf("export (after %d records)", n), err)
		}
		b, err := enc.Marshal(row(m))
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
			return err
		}
	}
}

// parseSince reads an RFC 3339 time, a date (UTC midnight) or a duration
// back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("required")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time, a YYYY-MM-DD date or a duration such as 24h or 30d", s)
}
