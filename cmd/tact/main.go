// Command tact is Tact's command-line client.
//
//	tact decide --client C00001 [--channel phone-inbound] [--reason sales-enquiry]
//	            [--stage resolved] [--sentiment negative] [--queue Q]
//	            [--max-offers N] [--explain] [--json]
//	tact products [--json]
//	tact outcome --decision ID --product P --outcome presented|accepted|declined|not-presented
//	             [--reason not-appropriate|client-upset|no-time|other]
//	tact load --queue Q [--calls-waiting N] [--longest-wait S] [--service-level X]
//	          [--agents-available N]
//	tact export decisions|outcomes --since T   (JSON Lines on standard output)
//	tact train --data F --label COL [--positive V] [--sep ';'] [--drop a,b]
//	           [--log1p a,b] [--bucketize col=e1:e2] [--missing col=v]
//	           [--l2 X] [--holdout-tail 0.2] [--cv 5] --out MODEL
//	tact train --from-log --since T --out DIR [--base DIR] [--no-answer-after 24h]
//	tact eval --model M --data F --label COL [--positive V] [--top K]
//	tact evaluate --since T --model DIR [--no-answer-after 24h] [--json]
//	tact models [--calibration] [--json]
//	tact models snapshot --model-dir DIR [--version V]
//	tact models rollback --model-dir DIR --to V
//	tact score --model M --data F --out S [--id COL]
//
// decide, products, outcome, load, export and experiments take --addr (default
// localhost:9090, or TACT_ADDR), --token (or TACT_TOKEN), --tls, --ca-file,
// --cert-file and --key-file, and --timeout; train, eval and score work on files, without a server. Exit status: 0 on success, 1 when the call fails, 2 on a usage
// error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server/flaghint"
)

const usage = `tact is the command-line client of Tact.

Usage:
  tact decide --client ID [flags]   ask for a decision
  tact products [flags]             list the catalog
  tact outcome --decision ID --product P --outcome declined [--reason R]
                                    record what happened to an offer
  tact load --queue Q --calls-waiting N [flags]
                                    report a queue's load (as the telephony feed does)
  tact export decisions|outcomes|exposures --since T
                                    write the decision log, the outcomes or the experiment
                                    exposures as JSON Lines
  tact export models                each product's model and its health, as JSON Lines
  tact experiments list             the A/B experiments running
  tact experiments results KEY [--since T]
                                    an experiment's results per variation
  tact models [--calibration]       the models serving and, with learning, what they learned
  tact models snapshot --model-dir D
                                    keep the bundle served and what was learned on it as a version
  tact models rollback --model-dir D --to V
                                    serve version V (a snapshot: learning resumes from it)
  tact train --data F --label COL --out MODEL [flags]
                                    train a logistic propensity model from a CSV
  tact train --from-log --since T --out DIR [--base DIR]
                                    train a bundle from tactd's own offers and their answers
  tact eval --model M --data F --label COL [flags]
                                    measure a model on a labelled CSV
  tact evaluate --since T --model DIR
                                    estimate from tactd's log how a challenger bundle would
                                    have done (off-policy: IPS, self-normalised IPS, doubly robust)
  tact score --model M --data F --out S [--id COL]
                                    score every row of a CSV (batch scoring)
  tact demo-data --out DIR [--clients N]
                                    write the demo bank's training files (or N demo clients)
  tact features import (--data-dir D | --redis-addr A | --addr TACTD) --schema S [--skip-bad] FILE
                                    bulk-import client features (CSV or JSON Lines)

Run 'tact COMMAND --help' for a command's flags.
`

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Getenv("TACT_ADDR"))
	stop()
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, "tact:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tact:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(out, usage)
		if len(args) == 0 {
			return &usageError{"no command given"}
		}
		return nil
	}
	switch args[0] {
	case "decide":
		return decide(ctx, args[1:], out, envAddr)
	case "products":
		return products(ctx, args[1:], out, envAddr)
	case "train":
		if slices.Contains(args[1:], "--from-log") {
			return trainFromLog(ctx, args[1:], out, envAddr)
		}
		return train(ctx, args[1:], out)
	case "evaluate":
		return evaluateCmd(ctx, args[1:], out, envAddr)
	case "models":
		return modelsCmd(ctx, args[1:], out, envAddr)
	case "eval":
		return eval(ctx, args[1:], out)
	case "score":
		return score(ctx, args[1:], out)
	case "demo-data":
		return demoData(ctx, args[1:], out)
	case "features":
		return featuresCmd(ctx, args[1:], out)
	case "outcome":
		return outcome(ctx, args[1:], out, envAddr)
	case "load":
		return loadCmd(ctx, args[1:], out, envAddr)
	case "export":
		return export(ctx, args[1:], out, envAddr)
	case "experiments":
		return experimentsCmd(ctx, args[1:], out, envAddr)
	default:
		return &usageError{fmt.Sprintf("unknown command %q (run tact --help for the commands)", args[0])}
	}
}

// common holds the flags every subcommand that calls tactd has.
type common struct {
	connFlags
	timeout time.Duration
	json    bool
}

func (c *common) register(fs *pflag.FlagSet, envAddr string) {
	def := "localhost:9090"
	if envAddr != "" {
		def = envAddr
	}
	c.connFlags.register(fs, def)
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "deadline of the call")
	fs.BoolVar(&c.json, "json", false, "print the response as JSON")
}

// call connects to c.addr and makes one call with c.timeout; a failed call
// is reported as "what: Code: message".
func call[T any](ctx context.Context, c *common, what string, fn func(context.Context, *grpc.ClientConn) (T, error)) (T, error) {
	var zero T
	conn, err := c.dial()
	if err != nil {
		return zero, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := fn(ctx, conn)
	if err != nil {
		return zero, c.callError(what, err)
	}
	return resp, nil
}

func parse(fs *pflag.FlagSet, args []string, out io.Writer) error {
	return parseN(fs, args, out, 0)
}

// parseN parses flags and up to n positional arguments, in any order
// (fs.Arg(i) are the positional ones).
func parseN(fs *pflag.FlagSet, args []string, out io.Writer, n int) error {
	fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if fs.NArg() > n {
		return &usageError{fmt.Sprintf("unexpected arguments: %s%s", strings.Join(fs.Args()[n:], " "), flaghint.Hint(fs, args, fs.Arg(n)))}
	}
	return nil
}

// enumValue maps a flag word ("phone-inbound") to an enum value by its
// name with the prefix ("CHANNEL_PHONE_INBOUND").
func enumValue(flag, word, prefix string, values map[string]int32) (int32, error) {
	if word == "" {
		return 0, nil
	}
	name := prefix + strings.ToUpper(strings.ReplaceAll(word, "-", "_"))
	v, ok := values[name]
	if !ok || v == 0 {
		var words []string
		for n, v := range values {
			if v != 0 {
				words = append(words, strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(n, prefix), "_", "-")))
			}
		}
		return 0, &usageError{fmt.Sprintf("--%s: unknown value %q (one of: %s)", flag, word, strings.Join(sorted(words), ", "))}
	}
	return v, nil
}

func decide(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	fs := pflag.NewFlagSet("tact decide", pflag.ContinueOnError)
	var c common
	c.register(fs, envAddr)
	client := fs.String("client", "", "client id (required)")
	channel := fs.String("channel", "phone-inbound", "channel: phone-inbound, phone-outbound, branch, web, mobile-app, chat, email")
	reason := fs.String("reason", "", "interaction reason: service, complaint, sales-enquiry, other")
	stage := fs.String("stage", "", "interaction stage: opening, in-progress, resolved, wrap-up")
	queue := fs.String("queue", "", "contact-centre queue")
	agent := fs.String("agent", "", "agent id")
	maxOffers := fs.Uint32("max-offers", 0, "offers to return at most (1 when 0, at most 10)")
	sentiment := fs.String("sentiment", "", "client sentiment: negative, neutral, positive")
	explain := fs.Bool("explain", false, "show every product's propensity, value, priority and the gates it passed or failed")
	if err := parse(fs, args, out); err != nil {
		return err
	}
	if *client == "" {
		return &usageError{"--client is required"}
	}
	ch, err := enumValue("channel", *channel, "CHANNEL_", tactv1.Channel_value)
	if err != nil {
		return err
	}
	if ch == 0 {
		return &usageError{"--channel is required"}
	}
	rs, err := enumValue("reason", *reason, "INTERACTION_REASON_", tactv1.InteractionReason_value)
	if err != nil {
		return err
	}
	st, err := enumValue("stage", *stage, "INTERACTION_STAGE_", tactv1.InteractionStage_value)
	if err != nil {
		return err
	}
	se, err := enumValue("sentiment", *sentiment, "SENTIMENT_", tactv1.Sentiment_value)
	if err != nil {
		return err
	}
	req := &tactv1.DecideRequest{
		ClientId: *client,
		Channel:  tactv1.Channel(ch),
		Queue:    *queue,
		Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason(rs), Stage: tactv1.InteractionStage(st),
			Sentiment: tactv1.Sentiment(se)},
		AgentId:   *agent,
		MaxOffers: *maxOffers,
		Explain:   *explain,
	}
	resp, err := call(ctx, &c, "decide", func(ctx context.Context, conn *grpc.ClientConn) (*tactv1.DecideResponse, error) {
		return tactv1.NewDecisionServiceClient(conn).Decide(ctx, req)
	})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, resp)
	}
	printDecision(out, resp)
	return nil
}

func products(ctx context.Context, args []string, out io.Writer, envAddr string) error {
	fs := pflag.NewFlagSet("tact products", pflag.ContinueOnError)
	var c common
	c.register(fs, envAddr)
	if err := parse(fs, args, out); err != nil {
		return err
	}
	resp, err := call(ctx, &c, "products", func(ctx context.Context, conn *grpc.ClientConn) (*tactv1.ListProductsResponse, error) {
		return tactv1.NewCatalogServiceClient(conn).ListProducts(ctx, &tactv1.ListProductsRequest{})
	})
	if err != nil {
		return err
	}
	if c.json {
		return printJSON(out, resp)
	}
	fmt.Fprintf(out, "%-16s %-26s %-12s %9s  %s\n", "PRODUCT", "NAME", "CATEGORY", "VALUE", "CHANNELS")
	for _, p := range resp.GetProducts() {
		var chs []string
		for _, ch := range p.GetChannels() {
			chs = append(chs, words(ch.String(), "CHANNEL_"))
		}
		fmt.Fprintf(out, "%-16s %-26s %-12s %5.0f %s  %s\n", p.GetProductId(), p.GetName(), p.GetCategory(), p.GetValue(), p.GetCurrency(), strings.Join(chs, ", "))
	}
	return nil
}

func printJSON(out io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(b))
	return err
}

// words turns an enum name into lower-case words: CHANNEL_PHONE_INBOUND
// with prefix CHANNEL_ becomes "phone inbound".
func words(name, prefix string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, prefix), "_", " "))
}

func printDecision(out io.Writer, d *tactv1.DecideResponse) {
	action := strings.ToUpper(words(d.GetAction().String(), "ACTION_"))
	tier := d.GetTier()
	if tier == "" {
		tier = "-"
	}
	fmt.Fprintf(out, "%s  (client tier %s, model %s)\n", action, tier, d.GetModelVersion())
	for _, e := range d.GetExperiments() {
		fmt.Fprintf(out, "Experiment %s: variation %s\n", e.GetExperiment(), e.GetVariation())
	}
	if d.GetDegraded() {
		fmt.Fprintln(out, "DEGRADED: the answer was made without everything it needed")
	}
	for _, o := range d.GetOffers() {
		fmt.Fprintf(out, "\n  %d. %s [%s]  propensity %.2f, score %.2f\n", o.GetRank(), o.GetName(), o.GetProductId(), o.GetPropensity(), o.GetScore())
		for _, tp := range o.GetTalkingPoints() {
			fmt.Fprintf(out, "     - %s\n", tp)
		}
	}
	if l := d.GetLater(); l != nil {
		if lo := d.GetLaterOffer(); lo != nil {
			fmt.Fprintf(out, "\nLater as well: %s [%s]  propensity %.2f, score %.2f\n", lo.GetName(), lo.GetProductId(), lo.GetPropensity(), lo.GetScore())
		}
		fmt.Fprintf(out, "When: from %s to %s, by %s",
			l.GetNotBefore().AsTime().Format(time.DateOnly), l.GetNotAfter().AsTime().Format(time.DateOnly), words(l.GetChannel().String(), "CHANNEL_"))
		if h := l.GetPreferredHours(); h != "" {
			fmt.Fprintf(out, ", between %s (%s)", h, l.GetTimeZone())
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "\nWhy:")
	for _, r := range d.GetReasons() {
		fmt.Fprintf(out, "  - %s: %s\n", words(r.GetCode().String(), "REASON_CODE_"), r.GetMessage())
	}
	if cs := d.GetCandidates(); len(cs) > 0 {
		fmt.Fprintf(out, "\nCandidates:\n  %-16s %10s %7s %9s  %s\n", "PRODUCT", "PROPENSITY", "VALUE", "PRIORITY", "RESULT")
		for _, c := range cs {
			result := "passed every gate"
			for _, g := range c.GetGates() {
				if !g.GetPassed() {
					result = words(g.GetReason().GetCode().String(), "REASON_CODE_") + ": " + g.GetReason().GetMessage()
				}
			}
			fmt.Fprintf(out, "  %-16s %10.2f %7.0f %9.2f  %s\n", c.GetProductId(), c.GetPropensity(), c.GetValue(), c.GetPriority(), result)
		}
	}
	fmt.Fprintf(out, "\nDecision %s\n", d.GetDecisionId())
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
