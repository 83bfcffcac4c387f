package readme

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tact-nba/tact/server/servertest"
)

// step is one command of the README: a line of a ```sh block, with its
// continuation lines joined. sample is the ```json block that follows the
// last command of a shell block, if one does: the answer the README
// shows.
type step struct {
	block  int
	cmd    string
	sample string
}

// commands reads the README's shell blocks in order.
func commands(t *testing.T, path string) []step {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []step
	// afterSh: only blank lines since a shell block ended.
	block, in, inSample, afterSh := 0, false, false, false
	var cont string
	var sample strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh") || strings.HasPrefix(line, "```bash"):
			block, in = block+1, true
			continue
		case strings.HasPrefix(line, "```json") && afterSh && len(out) > 0 && out[len(out)-1].block == block:
			inSample, afterSh = true, false
			sample.Reset()
			continue
		case strings.HasPrefix(line, "```"):
			if inSample {
				out[len(out)-1].sample = sample.String()
			}
			afterSh = in
			in, inSample = false, false
			continue
		case inSample:
			sample.WriteString(line + "\n")
			continue
		case !in:
			if strings.TrimSpace(line) != "" {
				afterSh = false
			}
			continue
		}
		if c, ok := strings.CutSuffix(strings.TrimRight(line, " "), "\\"); ok {
			cont += c + " "
			continue
		}
		line, cont = cont+line, ""
		if s := strings.TrimSpace(line); s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		out = append(out, step{block: block, cmd: strings.TrimSpace(line)})
	}
	return out
}

// A rule says what the test does with the commands it matches: run them
// (in the foreground, or tactd in the background) or skip them, saying
// why. A README command no rule matches fails the test, so that a new
// command is either run here or its skipping argued.
type rule struct {
	match *regexp.Regexp
	skip  string   // why it is not run here; empty: run
	want  []string // in the output, when run
}

var rules = []rule{
	{match: regexp.MustCompile(`^go test \./\.\.\.`), skip: "the test command itself (CI runs it)"},
	{match: regexp.MustCompile(`^(make (generate|checkgenerate|lint|test|race|bench)|bash \.ci/run)\b`), skip: "CI runs these (.ci/run)"},
	{match: regexp.MustCompile(`^make image`), skip: "deploy/image's TestImage builds this image and runs its binary (make deploytest, in CI)"},
	{match: regexp.MustCompile(`^(skopeo|podman) `), skip: "no container runtime or registry on this machine"},
	{match: regexp.MustCompile(`^kubectl apply`), skip: "needs a Kubernetes cluster"},
	{match: regexp.MustCompile(`^export TACT_TOKEN=\.\.\.|tact\.bank\.internal`), skip: "a bank's host and certificates: TestCommandsWithTokenAndMTLS runs these flags against a tactd with API keys and mTLS"},
	{match: regexp.MustCompile(`^ln -s v2 D/`), skip: "D is a model_dir: TestBundleHotSwapUnderLoad swaps current the same way"},
	{match: regexp.MustCompile(`tact train \.\.\.`), skip: "the command before, with --cv 5 added (minutes of training)"},
	{match: regexp.MustCompile(`tact score .* --data F `), skip: "F is a file of the bank's clients with a client_id column (TestTrainEvalScore scores such a file)"},
	{match: regexp.MustCompile(`tact features import .*clients\.(csv|jsonl)`), skip: "clients.csv is the bank's file (TestFeaturesImport and TestFeaturesImportDetectsFormat run these)"},
	{match: regexp.MustCompile(`genfeatures --rows 1000000`), skip: "writes a million rows for the schema.yaml shown above, a bank's file not in the repository; not run here"},
	{match: regexp.MustCompile(`tact (evaluate|train --from-log) `), skip: "need a log of answered offers: TestLearningFromTheLog runs both against one"},
	{match: regexp.MustCompile(`^mkdir -p models && cp -r model/demo/bundle`)},
	{match: regexp.MustCompile(`^go run \./cmd/tactd`)},
	{match: regexp.MustCompile(`tact decide --client C00009 --channel branch --explain`), want: []string{"OFFER NOW", "Candidates:"}},
	{match: regexp.MustCompile(`tact models snapshot`), want: []string{"wrote snapshot demo-2-learned-1"}},
	{match: regexp.MustCompile(`tact models rollback`), want: []string{"current now points at demo-2-learned-1 (was demo-2)", "learning resumes"}},
	{match: regexp.MustCompile(`tact models$`), want: []string{"learning adaptive", "savings_account"}},
	{match: regexp.MustCompile(`tact decide --client C00074 --queue demo`), want: []string{"NO OFFER", "busy"}},
	{match: regexp.MustCompile(`tact decide --client C00015 --channel web --explain`), want: []string{"Candidates:", "cool-down"}},
	{match: regexp.MustCompile(`tact decide --client C00002 --channel web`), want: []string{"demo-2-challenger", "Experiment model-cc-2026-11: variation challenger"}},
	{match: regexp.MustCompile(`tact experiments results`), want: []string{"challenger"}},
	{match: regexp.MustCompile(`^go run \./cmd/tact train`), want: []string{"ROC AUC"}},
	{match: regexp.MustCompile(`^go run \./cmd/tact `)},
	{match: regexp.MustCompile(`^curl `)},
	{match: regexp.MustCompile(`grpcurl .*Health/Check`), want: []string{"SERVING"}},
	{match: regexp.MustCompile(`grpcurl `)},
	{match: regexp.MustCompile(`^kubectl (kustomize|create secret)`)},
}

// TestReadme runs the README's commands in order in a fresh directory:
// tactd from `go run ./cmd/tactd` (restarted when the README starts it
// again), the CLI, curl and grpcurl against it, training on the shared
// data, the manifests' rendering. localhost:8080 and :9090 become free
// ports; DECISION_ID becomes the decision the command before printed.
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tactd, tact and grpcurl and runs every README command")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	bin, work := t.TempDir(), t.TempDir()
	build := func(args ...string) {
		t.Helper()
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", args, err, out)
		}
	}
	build("-o", bin, "./cmd/tactd", "./cmd/tact")
	build("-modfile=proto/tools/go.mod", "-o", filepath.Join(bin, "grpcurl"), "github.com/fullstorydev/grpcurl/cmd/grpcurl")
	for _, d := range []string{"examples", "model", "deploy", "proto"} {
		if err := os.Symlink(filepath.Join(repo, d), filepath.Join(work, d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, "api-keys.yaml"), []byte("keys: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(filepath.Dir(repo), "shared")
	_, sharedErr := os.Stat(filepath.Join(shared, "data"))
	httpAddr, grpcAddr := servertest.FreeAddr(t), servertest.FreeAddr(t)
	env := append(os.Environ(), "TACT_ADDR="+grpcAddr, "REDIS_PASSWORD=readme-test", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	var tactd *exec.Cmd
	stopTactd := func() {
		if tactd != nil {
			_ = tactd.Process.Signal(os.Interrupt)
			_ = tactd.Wait() // stopped: its exit status is not the test's
			tactd = nil
		}
	}
	t.Cleanup(stopTactd)
	startTactd := func(args []string) {
		t.Helper()
		stopTactd()
		cmd := exec.Command(filepath.Join(bin, "tactd"), append(args, "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--drain-delay", "0s")...)
		cmd.Dir, cmd.Env = work, env
		logs, err := os.Create(filepath.Join(work, "tactd.log"))
		if err != nil {
			t.Fatal(err)
		}
		defer logs.Close()
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tactd = cmd
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		for {
			resp, err := http.Get("http://" + httpAddr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			select {
			case <-ctx.Done():
				b, _ := os.ReadFile(filepath.Join(work, "tactd.log"))
				t.Fatalf("tactd %v did not become ready:\n%s", args, b)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	apiError := regexp.MustCompile(`^\{"code":\d+`) // the gateway's error shape
	decisionID := regexp.MustCompile(`(?:Decision |"decision_id":\s*")([0-9a-f-]{36})`)
	lastDecision := ""
	ran, skipped, compared := 0, 0, 0
	for _, st := range commands(t, filepath.Join(repo, "README.md")) {
		var r *rule
		for i := range rules {
			if rules[i].match.MatchString(st.cmd) {
				r = &rules[i]
				break
			}
		}
		if r == nil {
			t.Errorf("README block %d: no rule for %q: run it in this test or say why not", st.block, st.cmd)
			continue
		}
		if r.skip != "" {
			t.Logf("skip (block %d) %s: %s", st.block, st.cmd, r.skip)
			skipped++
			continue
		}
		cmd := st.cmd
		cmd = strings.NewReplacer("localhost:8080", httpAddr, "localhost:9090", grpcAddr,
			"go tool -modfile=proto/tools/go.mod grpcurl", "grpcurl", "go run ./cmd/tact ", "tact ",
			"../shared/", shared+"/", " --data F ", " --data "+shared+"/data/bank-marketing/bank-additional-full.csv ").Replace(cmd)
		if strings.Contains(cmd, "DECISION_ID") {
			if lastDecision == "" {
				t.Fatalf("README block %d: %q needs a decision, and none was printed before", st.block, st.cmd)
			}
			cmd = strings.ReplaceAll(cmd, "DECISION_ID", lastDecision)
		}
		if strings.Contains(cmd, shared) && sharedErr != nil {
			if os.Getenv("TACT_REQUIRE_DATA") == "1" {
				t.Fatalf("TACT_REQUIRE_DATA=1 but %s is missing", shared)
			}
			t.Logf("skip (block %d) %s: ../shared/data is not beside the checkout", st.block, st.cmd)
			skipped++
			continue
		}
		if rest, ok := strings.CutPrefix(cmd, "go run ./cmd/tactd"); ok {
			args := strings.Fields(strings.SplitN(rest, "#", 2)[0])
			startTactd(args)
			t.Logf("ran (block %d) %s: ready", st.block, st.cmd)
			ran++
			continue
		}
		c := exec.Command("bash", "-o", "pipefail", "-c", cmd)
		c.Dir, c.Env = work, env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Errorf("README block %d: %s\n(ran: %s)\n%v\n%s", st.block, st.cmd, cmd, err, out)
			continue
		}
		if strings.HasPrefix(cmd, "curl ") && apiError.Match(out) {
			t.Errorf("README block %d: %s answered an error:\n%s", st.block, st.cmd, out)
		}
		if st.sample != "" {
			compared++
			if diff := sampleDiff(st.sample, out); diff != "" {
				t.Errorf("README block %d: %s: the answer shown after it is not what tactd answers: %s\n%s", st.block, st.cmd, diff, out)
			}
		}
		for _, w := range r.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("README block %d: %s: output lacks %q:\n%s", st.block, st.cmd, w, out)
			}
		}
		if m := decisionID.FindSubmatch(out); m != nil {
			lastDecision = string(m[1])
		}
		t.Logf("ran (block %d) %s", st.block, st.cmd)
		ran++
	}
	t.Logf("%d README commands run, %d skipped with their reasons", ran, skipped)
	if ran < 25 {
		t.Errorf("only %d README commands ran", ran)
	}
	if compared != 1 {
		t.Errorf("%d answers shown in the README compared with tactd's, want 1 (the first decision's)", compared)
	}
}

// sampleDiff compares an answer the README shows with the one tactd gave:
// the same fields with the same values, but for the decision's id and
// time (what differs from one decision to the next). It returns "" when
// they agree.
func sampleDiff(sample string, got []byte) string {
	var want, have any
	if err := json.Unmarshal([]byte(sample), &want); err != nil {
		return "the README's sample is not JSON: " + err.Error()
	}
	if err := json.Unmarshal(got, &have); err != nil {
		return "the answer is not JSON: " + err.Error()
	}
	return jsonDiff("", want, have)
}

func jsonDiff(path string, want, have any) string {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %v in the README, %v answered", path, want, have)
		}
		for k := range h {
			if _, ok := w[k]; !ok {
				return fmt.Sprintf("%s.%s: answered, not in the README", path, k)
			}
		}
		for k, wv := range w {
			if k == "decision_id" || k == "decided_at" {
				continue
			}
			hv, ok := h[k]
			if !ok {
				return fmt.Sprintf("%s.%s: in the README, not answered", path, k)
			}
			if d := jsonDiff(path+"."+k, wv, hv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return fmt.Sprintf("%s: %v in the README, %v answered", path, want, have)
		}
		for i := range w {
			if d := jsonDiff(fmt.Sprintf("%s[%d]", path, i), w[i], h[i]); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(want, have) {
			return fmt.Sprintf("%s: %v in the README, %v answered", path, want, have)
		}
		return ""
	}
}
