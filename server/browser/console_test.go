package browser

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server"
	"github.com/tact-nba/tact/server/servertest"
)

// start runs a tactd and returns its console's base URL and a gRPC client
// connection.
func start(t *testing.T, opts ...func(*server.Config)) (string, *grpc.ClientConn) {
	t.Helper()
	opts = append([]func(*server.Config){func(c *server.Config) { c.ExperimentsFile = "../../examples/experiments.json" }}, opts...)
	srv := servertest.Start(t, server.Deps{}, opts...)
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return "http://" + srv.HTTPAddr(), conn
}

// TestConsolePages: every page loads and its forms work with no console
// error, no CSP refusal and no failed request; / leads to the console;
// the Centre's chart draws bars once decisions are made. With
// -screenshots DIR each page is saved at 1280x800.
func TestConsolePages(t *testing.T) {
	base, conn := start(t)
	dc := tactv1.NewDecisionServiceClient(conn)
	for i := 1; i <= 60; i++ {
		if _, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: fmt.Sprintf("C%05d", i), Channel: tactv1.Channel_CHANNEL_WEB}); err != nil {
			t.Fatal(err)
		}
	}
	// C00015 declines the offer it is given: a cool-down for the client page.
	d, err := dc.Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00015", Channel: tactv1.Channel_CHANNEL_BRANCH})
	if err != nil || len(d.GetOffers()) == 0 {
		t.Fatalf("C00015 on branch: %v, %v", d.GetAction(), err)
	}
	for _, o := range []tactv1.Outcome{tactv1.Outcome_OUTCOME_PRESENTED, tactv1.Outcome_OUTCOME_DECLINED} {
		if _, err := dc.RecordOutcome(t.Context(), &tactv1.RecordOutcomeRequest{DecisionId: d.GetDecisionId(), ProductId: d.GetOffers()[0].GetProductId(), Outcome: o}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tactv1.NewLoadServiceClient(conn).ReportLoad(t.Context(), &tactv1.ReportLoadRequest{Queue: "retail", CallsWaiting: ptr[uint32](3), ServiceLevel: ptr(0.92)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // the decision log's batch
	if *screenshots != "" {
		if err := os.MkdirAll(*screenshots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tb := newTab(t)

	var url string
	tb.run(t, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("h1")), chromedp.WaitVisible(chromedp.CSS("body")))
	url = get(t, tb, chromedp.Location())
	if url != base+"/console/" {
		t.Errorf("/ led to %s, want the console", url)
	}
	if got := tb.text(t, "h1"); got != "Centre" {
		t.Errorf("the first page is %q", got)
	}
	// Bars carry a title with their count (the legend's swatches do not).
	if n := tb.count(t, "#chart-actions rect title"); n == 0 {
		t.Error("the Centre's chart by action drew no bar after 60 decisions")
	}
	if n := tb.count(t, "#chart-reasons rect title"); n == 0 {
		t.Error("the Centre's chart of what held offers back drew no bar")
	}
	if got := tb.text(t, `tr[data-queue="retail"]`); !strings.Contains(got, "calm") || !strings.Contains(got, "3 calls waiting") {
		t.Errorf("the retail queue's row: %q", got)
	}
	tb.shot(t, "centre")
	tb.clean(t, "Centre")

	// The tester: a dry run for C00003.
	tb.run(t, chromedp.Navigate(base+"/console/tester"), chromedp.WaitVisible(chromedp.CSS("#client")),
		chromedp.SendKeys(chromedp.CSS("#client"), "C00003"),
		chromedp.SetValue(chromedp.CSS("#channel"), "CHANNEL_WEB"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := tb.text(t, "#result h2"); !strings.Contains(got, "offer now") || !strings.Contains(got, "dry run") {
		t.Errorf("the tester's answer: %q", got)
	}
	if n := tb.count(t, "ul.gates li"); n < 8 {
		t.Errorf("the tester shows %d gates, want every product's", n)
	}
	tb.shot(t, "tester")
	tb.clean(t, "Decision tester")

	tb.run(t, chromedp.Navigate(base+"/console/client"), chromedp.WaitVisible(chromedp.CSS("#client")),
		chromedp.SendKeys(chromedp.CSS("#client"), "C00015"),
		chromedp.Click(chromedp.CSS(`form.inline button`)),
		chromedp.WaitVisible(chromedp.CSS("#tier")))
	if got := tb.text(t, "#tier"); got != "standard" {
		t.Errorf("C00015's tier on the client page: %q", got)
	}
	if got := tb.text(t, "main"); !strings.Contains(got, "-day cool-down") || !strings.Contains(got, "declined") || !strings.Contains(got, "presented") {
		t.Errorf("the client page does not show C00015's decline and cool-down: %q", got)
	}
	tb.shot(t, "client")
	tb.clean(t, "Client")

	tb.run(t, chromedp.Navigate(base+"/console/experiments"), chromedp.WaitVisible(chromedp.CSS("section.experiment")))
	if got := tb.text(t, "section.experiment"); !strings.Contains(got, "challenger") || !strings.Contains(got, "Sample ratio") {
		t.Errorf("the experiments page: %q", got)
	}
	tb.shot(t, "experiments")
	tb.clean(t, "Experiments")

	tb.run(t, chromedp.Navigate(base+"/console/models"), chromedp.WaitVisible(chromedp.CSS("table")))
	if got := tb.text(t, "main"); !strings.Contains(got, "demo-2") || !strings.Contains(got, "credit_card") || !strings.Contains(got, "Exploration: off") {
		t.Errorf("the models page: %q", got)
	}
	tb.shot(t, "models")
	tb.clean(t, "Models")
}

func ptr[T any](v T) *T { return &v }

// TestTesterIsTheAPIsDecision: the tester answers what the API answers for
// the same request, and leaves the client's caps as they were: after five
// dry runs in the browser, the real decision still offers the same.
func TestTesterIsTheAPIsDecision(t *testing.T) {
	base, conn := start(t)
	dc := tactv1.NewDecisionServiceClient(conn)
	req := &tactv1.DecideRequest{ClientId: "C00015", Channel: tactv1.Channel_CHANNEL_BRANCH, DryRun: true, MaxOffers: 3, Explain: true,
		Context: &tactv1.InteractionContext{Reason: tactv1.InteractionReason_INTERACTION_REASON_SALES_ENQUIRY}}
	api, err := dc.Decide(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	tb := newTab(t)
	for range 5 {
		tb.run(t, chromedp.Navigate(base+"/console/tester"), chromedp.WaitVisible(chromedp.CSS("#client")),
			chromedp.SendKeys(chromedp.CSS("#client"), "C00015"),
			chromedp.SetValue(chromedp.CSS("#channel"), "CHANNEL_BRANCH"),
			chromedp.SetValue(chromedp.CSS("#reason"), "INTERACTION_REASON_SALES_ENQUIRY"),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS("#result")))
	}
	offered := get(t, tb, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("ol.offers li")).map(li => li.dataset.product)`))
	var want []string
	for _, o := range api.GetOffers() {
		want = append(want, o.GetProductId())
	}
	if got := tb.text(t, "#result h2"); !strings.HasPrefix(got, words(api.GetAction().String())) || strings.Join(offered, ",") != strings.Join(want, ",") {
		t.Errorf("the tester said %q offering %v; the API %v offering %v", got, offered, api.GetAction(), want)
	}
	tb.clean(t, "tester")
	req.DryRun = false
	real, err := dc.Decide(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range real.GetOffers() {
		got = append(got, o.GetProductId())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("after five dry runs in the tester, the real decision offers %v; the dry run said %v (caps used up?)", got, want)
	}
}

func words(action string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(action, "ACTION_"), "_", " "))
}

// TestCentreTurnsBusy: a busy report over the API turns the queue busy on
// an open Centre page within its refresh interval (2 s), and a calm one
// turns it back.
func TestCentreTurnsBusy(t *testing.T) {
	base, conn := start(t)
	lc := tactv1.NewLoadServiceClient(conn)
	report := func(waiting uint32) {
		t.Helper()
		if _, err := lc.ReportLoad(t.Context(), &tactv1.ReportLoadRequest{Queue: "retail", CallsWaiting: ptr(waiting)}); err != nil {
			t.Fatal(err)
		}
	}
	report(1)
	tb := newTab(t)
	tb.run(t, chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(chromedp.CSS(`tr[data-queue="retail"][data-state="calm"]`)))
	for _, tt := range []struct {
		waiting uint32
		state   string
	}{{60, "busy"}, {0, "calm"}} {
		report(tt.waiting)
		start := time.Now()
		tb.run(t, chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-queue="retail"][data-state="%s"]`, tt.state))))
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("the queue turned %s on the page %v after the report; the refresh is 2 s", tt.state, took)
		}
		if row := tb.text(t, `tr[data-queue="retail"]`); !strings.Contains(row, "since") || !strings.Contains(row, fmt.Sprintf("%d calls waiting", tt.waiting)) {
			t.Errorf("the %s row does not say since when and why: %q", tt.state, row)
		}
	}
	tb.clean(t, "Centre")
}

// TestConsoleLogin: with authentication on, a page without a login leads
// to the login page; an agent's token opens the Centre but not a client's
// page (403, saying which role it needs); an admin's opens it; a wrong
// token is refused.
func TestConsoleLogin(t *testing.T) {
	dir := t.TempDir()
	sha := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	keys := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(keys, fmt.Appendf(nil, "keys:\n  - {name: desk, sha256: %s, roles: [agent]}\n  - {name: analyst, sha256: %s, roles: [admin]}\n", sha("agent-token"), sha("admin-token")), 0o600); err != nil {
		t.Fatal(err)
	}
	base, _ := start(t, func(c *server.Config) { c.AuthAPIKeysFile = keys })
	login := func(tb *tab, token string) {
		t.Helper()
		tb.run(t, chromedp.Navigate(base+"/console/login"), chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Submit(chromedp.CSS("#token")),
			// The next page: the Centre's queues, or the login page again
			// with its error (the login page's own h1 is there already).
			chromedp.WaitVisible(chromedp.CSS("#queues, p.error")))
	}

	tb := newTab(t)
	var url string
	tb.run(t, chromedp.Navigate(base+"/console/client"), chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.WaitVisible(chromedp.CSS("body")))
	url = get(t, tb, chromedp.Location())
	if url != base+"/console/login" {
		t.Errorf("without a login /console/client led to %s, want the login page", url)
	}
	tb.clean(t, "login page")
	login(tb, "wrong-token")
	if got := tb.text(t, ".error"); !strings.Contains(got, "not valid") {
		t.Errorf("a wrong token: %q", got)
	}
	tb.forget() // the refused login's 401 is the point

	login(tb, "agent-token")
	if got := tb.text(t, "h1"); got != "Centre" {
		t.Errorf("an agent after logging in sees %q, want the Centre", got)
	}
	tb.clean(t, "Centre as an agent")
	tb.run(t, chromedp.Navigate(base+"/console/client"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if got := tb.text(t, "main"); !strings.Contains(got, "Not allowed") || !strings.Contains(got, "admin") {
		t.Errorf("an agent on the client page: %q, want refused naming admin", got)
	}
	tb.forget() // the 403 is the point

	tb2 := newTab(t)
	login(tb2, "admin-token")
	tb2.run(t, chromedp.Navigate(base+"/console/client"), chromedp.WaitVisible(chromedp.CSS("#client")),
		chromedp.SendKeys(chromedp.CSS("#client"), "C00074"), chromedp.Click(chromedp.CSS(`form.inline button`)),
		chromedp.WaitVisible(chromedp.CSS("#tier")))
	if got := tb2.text(t, "#tier"); got != "platinum" {
		t.Errorf("an admin on C00074's page: tier %q", got)
	}
	tb2.clean(t, "client page as an admin")
}
