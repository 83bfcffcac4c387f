package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/tact-nba/tact/server"
	"github.com/tact-nba/tact/server/servertest"
	"github.com/tact-nba/tact/server/testpki"
)

// TestCommandsWithTokenAndMTLS: against a tactd with API keys and mTLS,
// decide, outcome, load, export and experiments results work with a token
// (flag or TACT_TOKEN) and the certificates; without either the error
// says which to give.
func TestCommandsWithTokenAndMTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "bank CA")
	sc, sk := ca.Issue(t, "tactd", 10, true)
	cc, ck := ca.Issue(t, "ops laptop", 20, false)
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM)
	certFile, keyFile := testpki.WriteFile(t, dir, "client.pem", cc), testpki.WriteFile(t, dir, "client.key", ck)
	const token = "s3cret-ops-key"
	sum := sha256.Sum256([]byte(token))
	keys := testpki.WriteFile(t, dir, "keys.yaml", fmt.Appendf(nil, "keys:\n  - {name: ops, sha256: %s, roles: [agent, feed, admin]}\n", hex.EncodeToString(sum[:])))
	srv := servertest.Start(t, server.Deps{}, func(c *server.Config) {
		c.AuthAPIKeysFile = keys
		c.TLSCertFile, c.TLSKeyFile = testpki.WriteFile(t, dir, "server.pem", sc), testpki.WriteFile(t, dir, "server.key", sk)
		c.TLSClientCAFile = caFile
		c.ExperimentsFile = "../../examples/experiments.json"
	})
	addr := srv.GRPCAddr()
	creds := []string{"--addr", addr, "--ca-file", caFile, "--cert-file", certFile, "--key-file", keyFile}
	with := func(args ...string) []string { return append(args, creds...) }
	run1 := func(args []string) (string, error) {
		var out bytes.Buffer
		err := run(t.Context(), args, &out, "")
		return out.String(), err
	}

	out, err := run1(with("decide", "--client", "C00003", "--token", token, "--json"))
	if err != nil {
		t.Fatalf("decide with the token and certificates: %v", err)
	}
	var d struct {
		DecisionID string `json:"decision_id"`
		Offers     []struct {
			ProductID string `json:"product_id"`
		} `json:"offers"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("decide --json: %v\n%s", err, out)
	}
	decision, product := d.DecisionID, ""
	if len(d.Offers) > 0 {
		product = d.Offers[0].ProductID
	}
	if decision == "" || product == "" {
		t.Fatalf("decide gave no offer to record an outcome for:\n%s", out)
	}
	t.Setenv("TACT_TOKEN", token) // from here on the token comes from the environment
	for _, args := range [][]string{
		{"outcome", "--decision", decision, "--product", product, "--outcome", "presented"},
		{"load", "--queue", "retail", "--calls-waiting", "3"},
		{"export", "outcomes", "--since", "1h"},
		{"experiments", "results", "model-cc-2026-11"},
	} {
		out, err := run1(with(args...))
		if err != nil {
			t.Errorf("%s with TACT_TOKEN and certificates: %v", args[0], err)
			continue
		}
		if args[0] == "export" && !strings.Contains(out, decision) {
			t.Errorf("export outcomes lacks the outcome just recorded:\n%s", out)
		}
	}

	// What goes wrong, and what the error says.
	os.Unsetenv("TACT_TOKEN")
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"no token", with("decide", "--client", "C00003"), []string{"Unauthenticated", "set --token or TACT_TOKEN"}},
		{"a wrong token", with("decide", "--client", "C00003", "--token", "guess"), []string{"Unauthenticated", "the token given was refused"}},
		{"no client certificate", []string{"decide", "--client", "C00003", "--token", token, "--addr", addr, "--ca-file", caFile}, []string{"Unavailable", "check --ca-file, --cert-file and --key-file"}},
		{"plain text to TLS", []string{"decide", "--client", "C00003", "--token", token, "--addr", addr}, []string{"Unavailable", "does tactd use TLS? try --tls"}},
		{"nobody there", []string{"products", "--addr", "127.0.0.1:1"}, []string{"Unavailable", "is tactd running on 127.0.0.1:1? set --addr or TACT_ADDR"}},
		{"half a key pair", []string{"products", "--addr", addr, "--cert-file", certFile}, []string{"--cert-file and --key-file go together"}},
		{"no CA file", []string{"products", "--addr", addr, "--ca-file", dir + "/nope.pem"}, []string{"--ca-file:", "nope.pem"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), append(tt.args, "--timeout", "3s"), io.Discard, "")
			if err == nil {
				t.Fatal("run succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
