package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tact-nba/tact/server"
	"github.com/tact-nba/tact/server/servertest"
)

func startServer(t *testing.T) string {
	t.Helper()
	return servertest.Start(t, server.Deps{}).GRPCAddr()
}

func TestCommands(t *testing.T) {
	addr := startServer(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"decide now", []string{"decide", "--client", "C00003", "--addr", addr}, []string{"OFFER NOW", "Home insurance", "high propensity:", "Decision "}},
		{"decide later", []string{"decide", "--client", "C00073", "--addr", addr}, []string{"OFFER LATER", "When: from 2", "Balanced investment fund", "need not yet:"}},
		{"decide now and later", []string{"decide", "--client", "C00009", "--addr", addr}, []string{"OFFER NOW", "1. Online savings account", "Later as well: Balanced investment fund", "When: from 2", "need not yet:"}},
		{"decide protected", []string{"decide", "--client", "C00074", "--reason", "service", "--stage", "in-progress", "--addr", addr}, []string{"NO OFFER", "client tier platinum", "protected tier service call:"}},
		{"explain", []string{"decide", "--client", "C00003", "--explain", "--max-offers", "2", "--addr", addr}, []string{"Candidates:", "already held:", "passed every gate"}},
		{"products", []string{"products", "--addr", addr}, []string{"PRODUCT", "credit_card", "Classic credit card", "120 EUR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(t.Context(), tt.args, &out, ""); err != nil {
				t.Fatalf("run: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestDecideJSONAndEnvAddr(t *testing.T) {
	addr := startServer(t)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"decide", "--client", "C99999", "--channel", "web", "--json"}, &out, addr); err != nil {
		t.Fatalf("run with TACT_ADDR: %v", err)
	}
	var d struct {
		Action  string                  `json:"action"`
		Reasons []struct{ Code string } `json:"reasons"`
	}
	if err := json.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, out.String())
	}
	if d.Action != "ACTION_NO_OFFER" || len(d.Reasons) == 0 || d.Reasons[0].Code != "REASON_CODE_CLIENT_UNKNOWN" {
		t.Errorf("unknown client: %+v", d)
	}
}

func TestErrors(t *testing.T) {
	addr := startServer(t)
	tests := []struct {
		name      string
		args      []string
		wantUsage bool
		want      string
	}{
		{"no command", nil, true, "no command"},
		{"unknown command", []string{"dance"}, true, `unknown command "dance"`},
		{"no client", []string{"decide", "--addr", addr}, true, "--client is required"},
		{"bad channel", []string{"decide", "--client", "C1", "--channel", "fax", "--addr", addr}, true, "phone-inbound"},
		{"bad flag", []string{"decide", "--colour", "blue"}, true, "colour"},
		{"a boolean's value after a space", []string{"decide", "--client", "C1", "--json", "true"}, true, "unexpected arguments: true (--json takes its value after \"=\": --json=true)"},
		{"server rejects", []string{"decide", "--client", "bad id", "--addr", addr}, false, "InvalidArgument: validation error: client_id"},
		{"no server", []string{"products", "--addr", "127.0.0.1:1", "--timeout", "1s"}, false, "products: Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), tt.args, io.Discard, "")
			if err == nil {
				t.Fatal("run succeeded, want an error")
			}
			var ue *usageError
			if errors.As(err, &ue) != tt.wantUsage {
				t.Errorf("usage error = %v, want %v (%v)", !tt.wantUsage, tt.wantUsage, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
		})
	}
}
