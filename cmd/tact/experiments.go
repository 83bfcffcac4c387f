package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// experimentsCmd lists the experiments running or prints one's results.
func experimentsCmd(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	const use = "tact experiments list | tact experiments results KEY [--since T]"
	if len(args) == 0 || (args[0] != "list" && args[0] != "results") {
		return &usageError{use}
	}
	what, rest, positional := args[0], args[1:], 0
	if what == "results" {
		positional = 1 // the experiment's key, before or after the flags
	}
	fs := pflag.NewFlagSet("tact experiments "+what, pflag.ContinueOnError)
	var c common
	c.register(fs, envAddr)
	var since *string
	if what == "results" {
		since = fs.String("since", "", "count decisions from this time (RFC 3339, YYYY-MM-DD or a duration back such as 72h); default: the whole log")
		fs.Lookup("timeout").DefValue, c.timeout = "1m0s", time.Minute
	}
	if err := parseN(fs, rest, out, positional); err != nil {
		return err
	}
	key := fs.Arg(0)
	if what == "list" {
		resp, err := call(ctx, &c, "experiments", func(ctx context.Context, conn *grpc.ClientConn) (*tactv1.ListExperimentsResponse, error) {
			return tactv1.NewExperimentServiceClient(conn).ListExperiments(ctx, &tactv1.ListExperimentsRequest{})
		})
		if err != nil {
			return err
		}
		if c.json {
			return printJSON(out, resp)
		}
		printExperiments(out, resp)
		return nil
	}
	if key == "" {
		return &usageError{"tact experiments results KEY: name the experiment (tact experiments list shows them)"}
	}
	req := &tactv1.GetExperimentResultsRequest{Experiment: key}
	if *since != "" {
		from, err := parseSince(*since, time.Now())
		if err != nil {
			return &usageError{"--since: " + err.Error()}
		}
		req.Since = timestamppb.New(from)
	}
	resp, err := call(ctx, &c, "experiment results", func(ctx context.Context, conn *grpc.ClientConn) (*tactv1.GetExperimentResultsResponse, error) {
		return tactv1.NewExperimentServiceClient(conn).GetExperimentResults(ctx, req)
	})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, resp)
	}
	printResults(out, resp)
	return nil
}

func printExperiments(out io.Writer, resp *tactv1.ListExperimentsResponse) {
	if resp.GetConfigVersion() == "" {
		fmt.Fprintln(out, "No experiments config (tactd's experiments_file is empty).")
		return
	}
	fmt.Fprintf(out, "Config %s: %d experiments\n", resp.GetConfigVersion(), len(resp.GetExperiments()))
	for _, e := range resp.GetExperiments() {
		var vs []string
		for _, v := range e.GetVariations() {
			vs = append(vs, fmt.Sprintf("%s %.0f%%", v.GetKey(), 100*v.GetWeight()))
		}
		fmt.Fprintf(out, "  %s (feature %s): %s\n", e.GetKey(), e.GetFeature(), strings.Join(vs, ", "))
	}
	for _, w := range resp.GetWarnings() {
		fmt.Fprintf(out, "Warning: %s\n", w)
	}
}

func printResults(out io.Writer, r *tactv1.GetExperimentResultsResponse) {
	fmt.Fprintf(out, "Experiment %s\n", r.GetExperiment())
	fmt.Fprintf(out, "%-14s %8s %9s %9s %9s %8s %10s %10s  %s\n", "VARIATION", "CLIENTS", "DECISIONS", "OFFERS", "PRESENTED", "ACCEPTED", "ACCEPTANCE", "CONVERSION", "CONVERSION VS CONTROL (95% CI)")
	for i, v := range r.GetVariations() {
		vs := "(control)"
		if d := v.GetConversionDifference(); d != nil {
			vs = fmt.Sprintf("%+.1f pts [%+.1f, %+.1f]", 100*d.GetDifference(), 100*d.GetLow(), 100*d.GetHigh())
		} else if i > 0 {
			vs = "(no clients yet)"
		}
		fmt.Fprintf(out, "%-14s %8d %9d %9d %9d %8d %9.1f%% %9.1f%%  %s\n", v.GetVariation().GetKey(), v.GetClients(), v.GetDecisions(),
			v.GetOffersNow(), v.GetPresented(), v.GetAccepted(), 100*v.GetAcceptanceRate(), 100*v.GetConversionRate(), vs)
	}
	for _, v := range r.GetVariations()[min(1, len(r.GetVariations())):] {
		if d := v.GetAcceptanceDifference(); d != nil {
			fmt.Fprintf(out, "Acceptance per presented offer, %s vs control: %+.1f pts [%+.1f, %+.1f]\n", v.GetVariation().GetKey(),
				100*d.GetDifference(), 100*d.GetLow(), 100*d.GetHigh())
		}
	}
	verdict := "no sample ratio mismatch"
	if r.GetSampleRatioMismatch() {
		verdict = "SAMPLE RATIO MISMATCH"
	}
	fmt.Fprintf(out, "Split check: chi-square p = %.4f: %s.\n", r.GetSrmPValue(), verdict)
	for _, w := range r.GetWarnings() {
		fmt.Fprintf(out, "Warning: %s\n", w)
	}
}
