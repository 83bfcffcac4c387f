package server

import (
	"context"
	"fmt"
	"html"
	"html/template"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/model/adaptive"
	"github.com/tact-nba/tact/model/load"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

var consoleFuncs = template.FuncMap{
	"mul100": func(x float64) float64 { return 100 * x },
	"inc":    func(i int) int { return i + 1 },
	"pct":    func(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + "%" },
	"num":    func(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) },
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" },
	"day":   func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"words": func(s, prefix string) string { return words(s, prefix) },
	"svg":   func(s string) template.HTML { return template.HTML(s) }, //nolint:gosec // built by activitySVG from numbers and fixed words
}

// words turns an enum name into lower-case words: REASON_CODE_BUSY_PERIOD
// with prefix REASON_CODE_ becomes "busy period".
func words(name, prefix string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, prefix), "_", " "))
}

// queueView is one queue's row on the centre page.
type queueView struct {
	Name     string
	State    string // busy, calm, busy (scheduled window), unknown
	Busy     bool
	Source   string
	Why      string
	AsOf     time.Time
	Since    time.Time // when it turned busy or calm (zero: not from the feed)
	Stale    bool
	Pressure float64
}

func (c *console) queues() []queueView {
	pol := c.s.engine.Policy()
	now := time.Now()
	var out []queueView
	for _, name := range c.s.board.Queues() {
		st := c.s.board.Status(name, now, &pol.Load)
		q := queueView{Name: name, Busy: st.Busy, Pressure: st.Pressure, Since: st.Since}
		switch st.Source {
		case load.FromFeed:
			q.Source, q.State = "the telephony feed", "calm"
			if st.Busy {
				q.State = "busy"
			}
		case load.FromSchedule:
			q.Source, q.State = "the scheduled busy windows (the feed's report is stale)", "calm (by the schedule)"
			if st.Busy {
				q.State = "busy (by the schedule)"
			}
		default:
			q.Source, q.State, q.Busy = "nothing fresh: protected tiers are treated as in a busy period", "unknown", true
		}
		if r := st.Report; r != nil {
			q.AsOf = r.AsOf
			q.Stale = now.Sub(r.AsOf) > pol.Load.StaleAfter
			q.Why = r.Describe()
			if r.Has&load.HasAgentsAvailable != 0 {
				q.Why += fmt.Sprintf(", %d agents available", r.AgentsAvailable)
			}
		}
		out = append(out, q)
	}
	return out
}

func (c *console) centre(w http.ResponseWriter, r *http.Request) {
	a := c.stats.get(r.Context(), c.s.log)
	c.render(w, r, "centre", map[string]any{"Queues": c.queues(), "Activity": a, "Chart": activitySVG(a), "HeldChart": heldBackSVG(a)})
}

func (c *console) queuesFragment(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "queues", map[string]any{"Queues": c.queues()})
}

func (c *console) activityFragment(w http.ResponseWriter, r *http.Request) {
	a := c.stats.get(r.Context(), c.s.log)
	c.render(w, r, "activity", map[string]any{"Activity": a, "Chart": activitySVG(a), "HeldChart": heldBackSVG(a)})
}

// activity is the last hour's decisions by minute and action, the main
// reasons, and today's offers and outcomes by tier, read from the
// decision log (every replica's, with Redis).
type activity struct {
	At      time.Time
	Minutes [60][3]int // per minute (oldest first): offer now, offer later, no offer
	// HeldBack counts the decisions without an offer now, per minute, by
	// main reason: the four most frequent of the hour, then the rest.
	HeldBack     [60][5]int
	HeldBackWhy  [5]string
	HeldBackSize int
	Total        int
	Reasons      []reasonCount
	Tiers        []tierCount
	Truncated    bool // more decisions than maxActivity: the oldest of the hour are left out
	Err          string
}

type reasonCount struct {
	Action, Reason string
	N              int
}

type tierCount struct {
	Tier                        string
	Offers, Presented, Accepted int
	Rate                        float64 // accepted / presented
}

// maxActivity bounds the decisions read for the centre page.
const maxActivity = 200_000

// activityCache computes the activity at most once every every.
type activityCache struct {
	every time.Duration
	mu    sync.Mutex
	last  *activity
}

func (ac *activityCache) get(ctx context.Context, lr logReader) *activity {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	if ac.last != nil && time.Since(ac.last.At) < ac.every {
		return ac.last
	}
	ac.last = readActivity(ctx, lr, time.Now().UTC())
	return ac.last
}

var errEnough = fmt.Errorf("enough")

func readActivity(ctx context.Context, lr logReader, now time.Time) *activity {
	a := &activity{At: now}
	hourAgo := now.Add(-time.Hour).Truncate(time.Minute).Add(time.Minute)
	midnight := now.Truncate(24 * time.Hour)
	since := hourAgo
	if midnight.Before(since) {
		since = midnight
	}
	reasons := map[[2]string]int{}
	tiers := map[string]*tierCount{}
	tierOf := map[string]string{} // decision -> tier, for today's outcomes
	tier := func(name string) *tierCount {
		if name == "" {
			name = "(unknown)"
		}
		t := tiers[name]
		if t == nil {
			t = &tierCount{Tier: name}
			tiers[name] = t
		}
		return t
	}
	type heldBack struct {
		minute int
		reason string
	}
	var held []heldBack
	heldCount := map[string]int{}
	n := 0
	err := lr.ExportDecisions(ctx, since, func(d *features.DecisionRecord) error {
		if n++; n > maxActivity {
			a.Truncated = true
			return errEnough
		}
		if !d.At.Before(midnight) && d.Action == "offer_now" {
			tier(d.Tier).Offers += len(d.Products)
			tierOf[d.ID] = d.Tier
		}
		if d.At.Before(hourAgo) {
			return nil
		}
		m := int(d.At.Sub(hourAgo) / time.Minute)
		if m < 0 || m >= 60 {
			return nil
		}
		col := 2
		switch d.Action {
		case "offer_now":
			col = 0
		case "offer_later":
			col = 1
		}
		a.Minutes[m][col]++
		a.Total++
		reasons[[2]string{d.Action, d.Reason}]++
		if col != 0 {
			held = append(held, heldBack{m, d.Reason})
			heldCount[d.Reason]++
		}
		return nil
	})
	// The four main reasons of the hour's decisions without an offer now.
	var why []string
	for r := range heldCount {
		why = append(why, r)
	}
	sort.Slice(why, func(i, j int) bool {
		if heldCount[why[i]] != heldCount[why[j]] {
			return heldCount[why[i]] > heldCount[why[j]]
		}
		return why[i] < why[j]
	})
	slot := map[string]int{}
	for i, r := range why {
		if i < 4 {
			slot[r], a.HeldBackWhy[i] = i, strings.ReplaceAll(r, "_", " ")
			a.HeldBackSize = i + 1
		} else {
			a.HeldBackWhy[4], a.HeldBackSize = "other reasons", 5
		}
	}
	for _, h := range held {
		k, ok := slot[h.reason]
		if !ok {
			k = 4
		}
		a.HeldBack[h.minute][k]++
	}
	if err != nil && err != errEnough {
		a.Err = "The decision log could not be read: " + err.Error()
	}
	answers := map[[2]string]*features.OfferAnswers{}
	err = lr.ExportOutcomes(ctx, midnight, func(o *features.OutcomeRecord) error {
		t, ok := tierOf[o.DecisionID]
		if !ok || o.OccurredAt.Before(midnight) {
			return nil
		}
		k := [2]string{o.DecisionID, o.ProductID}
		a := answers[k]
		if a == nil {
			a = &features.OfferAnswers{}
			answers[k] = a
		}
		presented, accepted := a.Add(o.Outcome)
		if presented {
			tier(t).Presented++
		}
		if accepted {
			tier(t).Accepted++
		}
		return nil
	})
	if err != nil {
		a.Err = "The outcomes could not be read: " + err.Error()
	}
	for k, v := range reasons {
		a.Reasons = append(a.Reasons, reasonCount{Action: strings.ReplaceAll(k[0], "_", " "), Reason: strings.ReplaceAll(k[1], "_", " "), N: v})
	}
	sort.Slice(a.Reasons, func(i, j int) bool {
		if a.Reasons[i].N != a.Reasons[j].N {
			return a.Reasons[i].N > a.Reasons[j].N
		}
		return a.Reasons[i].Action+a.Reasons[i].Reason < a.Reasons[j].Action+a.Reasons[j].Reason
	})
	if len(a.Reasons) > 8 {
		a.Reasons = a.Reasons[:8]
	}
	for _, t := range tiers {
		if t.Presented > 0 {
			t.Rate = float64(t.Accepted) / float64(t.Presented)
		}
		a.Tiers = append(a.Tiers, *t)
	}
	sort.Slice(a.Tiers, func(i, j int) bool { return a.Tiers[i].Tier < a.Tiers[j].Tier })
	return a
}

// activitySVG draws the hour's decisions as stacked bars, one a minute:
// offers now, offers later, no offers.
func activitySVG(a *activity) string {
	series := make([][]int, 60)
	for i := range a.Minutes {
		series[i] = a.Minutes[i][:]
	}
	return stackedSVG("chart-actions", fmt.Sprintf("Decisions a minute over the last hour, by action: %d in all", a.Total),
		series, []string{"s1", "s2", "s3"}, []string{"offers now", "offers later", "no offer"})
}

// heldBackSVG draws the hour's decisions without an offer now by main
// reason.
func heldBackSVG(a *activity) string {
	series := make([][]int, 60)
	for i := range a.HeldBack {
		series[i] = a.HeldBack[i][:a.HeldBackSize]
	}
	return stackedSVG("chart-reasons", "Decisions without an offer now, a minute over the last hour, by main reason",
		series, []string{"s1", "s2", "s3", "s4", "s5"}[:a.HeldBackSize], a.HeldBackWhy[:a.HeldBackSize])
}

// stackedSVG draws 60 stacked bars (one a minute, oldest first) of the
// series' values in order, each segment classed (its colour and pattern in
// the stylesheet) and titled with its count and label, and the labels as a
// legend: colour is not the only thing that tells them apart.
func stackedSVG(id, title string, series [][]int, classes, labels []string) string {
	const w, h, left, bottom, legend = 720, 200, 40, 24, 20
	peak := 1
	for _, m := range series {
		sum := 0
		for _, n := range m {
			sum += n
		}
		peak = max(peak, sum)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" id="%s" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-title"><title id="%s-title">%s</title>`, id, w, h+legend, id, id, html.EscapeString(title))
	plotH := float64(h - bottom - 8)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>`, left, h-bottom, w, h-bottom)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="8" x2="%d" y2="%d"/>`, left, left, h-bottom)
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="14" text-anchor="end">%d</text><text class="tick" x="%d" y="%d" text-anchor="end">0</text>`, left-4, peak, left-4, h-bottom)
	fmt.Fprintf(&b, `<text class="tick" x="%d" y="%d">60 min ago</text><text class="tick" x="%d" y="%d" text-anchor="end">now</text>`, left, h-6, w, h-6)
	bw := float64(w-left) / 60
	for i, m := range series {
		y := float64(h - bottom)
		x := float64(left) + float64(i)*bw
		for k, n := range m {
			if n == 0 {
				continue
			}
			bh := math.Max(1, plotH*float64(n)/float64(peak))
			y -= bh
			fmt.Fprintf(&b, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%d %s</title></rect>`,
				classes[k], x+0.5, y, bw-1, bh, n, html.EscapeString(labels[k]))
		}
	}
	x := left
	for k, l := range labels {
		fmt.Fprintf(&b, `<rect class="%s" x="%d" y="%d" width="12" height="12"/><text class="tick" x="%d" y="%d">%s</text>`, classes[k], x, h+4, x+16, h+14, html.EscapeString(l))
		x += 24 + 7*len(l)
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// testerForm is the decision tester's request as the form gives it.
type testerForm struct {
	Client, Channel, Reason, Stage, Sentiment, Queue string
	DryRun                                           bool
}

func (c *console) tester(w http.ResponseWriter, r *http.Request) {
	f := testerForm{Channel: "CHANNEL_PHONE_INBOUND", DryRun: true}
	data := map[string]any{"Form": &f, "Channels": enumNames(tactv1.Channel_name), "Reasons": enumNames(tactv1.InteractionReason_name),
		"Stages": enumNames(tactv1.InteractionStage_name), "Sentiments": enumNames(tactv1.Sentiment_name)}
	if r.Method == http.MethodPost {
		f = testerForm{Client: strings.TrimSpace(r.PostFormValue("client")), Channel: r.PostFormValue("channel"), Reason: r.PostFormValue("reason"),
			Stage: r.PostFormValue("stage"), Sentiment: r.PostFormValue("sentiment"), Queue: strings.TrimSpace(r.PostFormValue("queue")),
			DryRun: r.PostFormValue("dry_run") == "on"}
		req := &tactv1.DecideRequest{ClientId: f.Client, Channel: tactv1.Channel(tactv1.Channel_value[f.Channel]), Queue: f.Queue,
			Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason(tactv1.InteractionReason_value[f.Reason]),
				Stage: tactv1.InteractionStage(tactv1.InteractionStage_value[f.Stage]), Sentiment: tactv1.Sentiment(tactv1.Sentiment_value[f.Sentiment])},
			MaxOffers: 3, Explain: true, DryRun: f.DryRun}
		d, err := call(c, r, tactv1.DecisionService_Decide_FullMethodName, req, c.svc.decision.Decide)
		if err != nil {
			w.WriteHeader(httpStatusOf(err))
			data["Error"] = errorText(err)
		} else {
			data["Decision"] = d
		}
	}
	c.render(w, r, "tester", data)
}

// enumNames lists an enum's names but its zero (unspecified) value.
func enumNames(m map[int32]string) []string {
	out := make([]string, 0, len(m))
	for i := int32(1); ; i++ {
		name, ok := m[i]
		if !ok {
			return out
		}
		out = append(out, name)
	}
}

// contactView is one line of a client's contact history.
type contactView struct {
	At                                    time.Time
	Kind, Product, Channel, Decision, Why string
}

// coolDown is a product held back from a client.
type coolDown struct {
	Product, Why string
	Until        time.Time // zero: for good (accepted)
}

func (c *console) client(w http.ResponseWriter, r *http.Request) {
	data := map[string]any{}
	if r.Method == http.MethodPost {
		id := strings.TrimSpace(r.PostFormValue("client"))
		data["Client"] = id
		got, err := call(c, r, tactv1.FeatureService_GetClientFeatures_FullMethodName, &tactv1.GetClientFeaturesRequest{ClientId: id}, c.svc.features.GetClientFeatures)
		if err != nil {
			w.WriteHeader(httpStatusOf(err))
			data["Error"] = errorText(err)
			c.render(w, r, "client", data)
			return
		}
		names := make([]string, 0, len(got.GetClient().GetFeatures()))
		for n := range got.GetClient().GetFeatures() {
			names = append(names, n)
		}
		sort.Strings(names)
		type fv struct{ Name, Value string }
		var fs []fv
		for _, n := range names {
			fs = append(fs, fv{n, featureText(got.GetClient().GetFeatures()[n])})
		}
		data["Features"], data["Updated"] = fs, got.GetClient().GetUpdatedAt().AsTime()
		rec, err := c.s.cache.Get(r.Context(), id)
		if err == nil {
			pol := c.s.engine.Policy()
			t := pol.TierOf(&rec)
			data["Tier"] = t.Name
			now := time.Now()
			contacts, err := c.s.history.Contacts(r.Context(), id, now.AddDate(0, 0, -90))
			if err != nil {
				data["Error"] = "The contact history could not be read: " + err.Error()
			}
			var cv []contactView
			for i := len(contacts) - 1; i >= 0; i-- {
				k := contacts[i]
				cv = append(cv, contactView{At: k.At, Kind: strings.ReplaceAll(k.Kind, "_", " "), Product: k.ProductID, Channel: k.Channel, Decision: k.DecisionID, Why: k.AgentReason})
			}
			data["Contacts"] = cv
			var cds []coolDown
			for _, p := range c.s.engine.Catalog().Products() {
				var accepted, declined time.Time
				for _, k := range contacts {
					if k.ProductID != p.ID {
						continue
					}
					switch k.Kind {
					case features.ContactAccepted:
						accepted = k.At
					case features.ContactDeclined:
						declined = k.At
					}
				}
				days := max(p.CoolDownDays, t.CoolDownDays)
				switch {
				case !accepted.IsZero():
					cds = append(cds, coolDown{Product: p.Name, Why: "accepted on " + accepted.Format(time.DateOnly) + ": not offered again"})
				case !declined.IsZero() && now.Before(declined.AddDate(0, 0, days)):
					cds = append(cds, coolDown{Product: p.Name, Why: fmt.Sprintf("declined on %s: a %d-day cool-down", declined.Format(time.DateOnly), days), Until: declined.AddDate(0, 0, days)})
				}
			}
			data["CoolDowns"] = cds
		}
	}
	c.render(w, r, "client", data)
}

func featureText(v *tactv1.FeatureValue) string {
	switch k := v.GetKind().(type) {
	case *tactv1.FeatureValue_Number:
		return strconv.FormatFloat(k.Number, 'f', -1, 64)
	case *tactv1.FeatureValue_String_:
		return k.String_
	case *tactv1.FeatureValue_Bool:
		return strconv.FormatBool(k.Bool)
	case *tactv1.FeatureValue_Time:
		return k.Time.AsTime().UTC().Format(time.RFC3339)
	}
	return ""
}

// experimentView is an experiment with its results.
type experimentView struct {
	Exp     *tactv1.Experiment
	Results *tactv1.GetExperimentResultsResponse
	Err     string
}

func (c *console) experiments(w http.ResponseWriter, r *http.Request) {
	list, err := call(c, r, tactv1.ExperimentService_ListExperiments_FullMethodName, &tactv1.ListExperimentsRequest{}, c.svc.exps.ListExperiments)
	if err != nil {
		w.WriteHeader(httpStatusOf(err))
		c.render(w, r, "experiments", map[string]any{"Error": errorText(err)})
		return
	}
	var views []experimentView
	for _, e := range list.GetExperiments() {
		v := experimentView{Exp: e}
		v.Results, err = call(c, r, tactv1.ExperimentService_GetExperimentResults_FullMethodName, &tactv1.GetExperimentResultsRequest{Experiment: e.GetKey()}, c.svc.exps.GetExperimentResults)
		if err != nil {
			v.Err = errorText(err)
		}
		views = append(views, v)
	}
	c.render(w, r, "experiments", map[string]any{"List": list, "Experiments": views})
}

// modelView is one product's model in the bundle in use.
type modelView struct {
	Product, Type, Calibration, Trained string
	Metrics                             []string
	Learned                             string // learning adaptive: the outcomes learned
	RecentAUC                           string
	Deciles                             []adaptive.Decile
}

func (c *console) models(w http.ResponseWriter, r *http.Request) {
	b := c.s.engine.Bundle()
	var health map[string]adaptive.Health
	if c.s.learner != nil {
		health = c.s.learner.Health()
	}
	var ms []modelView
	for _, p := range b.Products() {
		mm := b.Manifest.Models[p]
		v := modelView{Product: p, Type: mm.Type, Calibration: "none"}
		if mm.Calibration != nil {
			v.Calibration = fmt.Sprintf("Platt (a %.3f, b %.3f)", mm.Calibration.A, mm.Calibration.B)
		}
		if meta, ok := b.Meta(p); ok {
			if !meta.TrainedAt.IsZero() {
				v.Trained = fmt.Sprintf("%s on %d rows", meta.TrainedAt.UTC().Format(time.DateOnly), meta.Rows)
			}
			keys := make([]string, 0, len(meta.Metrics))
			for k := range meta.Metrics {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v.Metrics = append(v.Metrics, fmt.Sprintf("%s %.3f", strings.ReplaceAll(k, "_", " "), meta.Metrics[k]))
			}
		}
		if c.s.learner != nil {
			h := health[p]
			v.Learned = fmt.Sprintf("%.0f accepted, %.0f declined", h.Accepted, h.Refused)
			if h.AUC > 0 {
				v.RecentAUC = fmt.Sprintf("%.3f over the last %d", h.AUC, h.Recent)
			}
			v.Deciles = h.Deciles
		}
		ms = append(ms, v)
	}
	data := map[string]any{"Bundle": b.Manifest, "Models": ms, "Learning": c.s.learner != nil, "Exploring": c.s.cfg.Exploring()}
	if c.s.learner != nil {
		if v, err := c.s.learningRestored(r.Context()); err == nil {
			data["Restored"] = v
		}
	}
	c.render(w, r, "models", data)
}

// httpStatusOf is the HTTP status of an API error, as REST answers it.
func httpStatusOf(err error) int {
	return runtime.HTTPStatusFromCode(status.Code(err))
}
