package server

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

func num(x float64) *tactv1.FeatureValue {
	return &tactv1.FeatureValue{Kind: &tactv1.FeatureValue_Number{Number: x}}
}
func boolv(b bool) *tactv1.FeatureValue {
	return &tactv1.FeatureValue{Kind: &tactv1.FeatureValue_Bool{Bool: b}}
}
func str(s string) *tactv1.FeatureValue {
	return &tactv1.FeatureValue{Kind: &tactv1.FeatureValue_String_{String_: s}}
}

// TestUnknownTierRefused: the demo schema's tier names the policy's
// tiers; a write with another value is 400 naming it (it was stored, and
// the client then treated as standard).
func TestUnknownTierRefused(t *testing.T) {
	ts := startServer(t, Deps{})
	req, err := http.NewRequest(http.MethodPut, ts.base+"/v1/clients/N00001/features", strings.NewReader(`{"features":{"tier":{"string":"bogus"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `feature \"tier\": \"bogus\" is not one of platinum, gold, silver, standard`) {
		t.Errorf("PUT tier bogus: %d %s, want 400 naming tier and its values", resp.StatusCode, body)
	}
}

func TestFeatureAdminAPI(t *testing.T) {
	ts := startServer(t, Deps{})
	ctx := t.Context()
	fc := tactv1.NewFeatureServiceClient(ts.conn)
	dc := tactv1.NewDecisionServiceClient(ts.conn)

	// Pinning C00003's tier over REST changes its next decision at once.
	req, err := http.NewRequest(http.MethodPut, ts.base+"/v1/clients/C00003/features", strings.NewReader(
		`{"features":{"tier":{"string":"platinum"},"balance":{"number":8880},"consent_offers":{"bool":true},"holds_mortgage":{"bool":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT features: %d", resp.StatusCode)
	}
	d, err := dc.Decide(ctx, &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_PHONE_INBOUND})
	if err != nil || d.GetTier() != "platinum" {
		t.Errorf("after pinning the tier: tier %q, %v; want platinum", d.GetTier(), err)
	}
	got, err := fc.GetClientFeatures(ctx, &tactv1.GetClientFeaturesRequest{ClientId: "C00003"})
	if err != nil {
		t.Fatal(err)
	}
	f := got.GetClient().GetFeatures()
	// The put replaced the record; the schema's defaults were filled in.
	if f["tier"].GetString_() != "platinum" || f["holds_credit_card"] == nil || f["holds_credit_card"].GetBool() || f["age"] != nil {
		t.Errorf("stored features = %v", f)
	}

	n, err := fc.BatchPutClientFeatures(ctx, &tactv1.BatchPutClientFeaturesRequest{Clients: []*tactv1.ClientFeatures{
		{ClientId: "N1", Features: map[string]*tactv1.FeatureValue{"age": num(30), "consent_offers": boolv(true)}},
		{ClientId: "N2", Features: map[string]*tactv1.FeatureValue{"age": num(60)}},
	}})
	if err != nil || n.GetStored() != 2 {
		t.Fatalf("batch put: %v, %v", n, err)
	}
	if d, err := dc.Decide(ctx, &tactv1.DecideRequest{ClientId: "N1", Channel: tactv1.Channel_CHANNEL_WEB}); err != nil || d.GetReasons()[0].GetCode() == tactv1.ReasonCode_REASON_CODE_CLIENT_UNKNOWN {
		t.Errorf("a client just put is unknown to Decide: %v %v", d.GetReasons(), err)
	}

	bad := []struct {
		name string
		call func() error
		code codes.Code
		want string
	}{
		{"wrong type", func() error {
			_, err := fc.PutClientFeatures(ctx, &tactv1.PutClientFeaturesRequest{ClientId: "X", Features: map[string]*tactv1.FeatureValue{"age": str("old")}})
			return err
		}, codes.InvalidArgument, `feature "age": string value, the schema says number`},
		{"unknown feature", func() error {
			_, err := fc.PutClientFeatures(ctx, &tactv1.PutClientFeaturesRequest{ClientId: "X", Features: map[string]*tactv1.FeatureValue{"shoe_size": num(44)}})
			return err
		}, codes.InvalidArgument, `"shoe_size" is not in the schema`},
		{"no value", func() error {
			_, err := fc.PutClientFeatures(ctx, &tactv1.PutClientFeaturesRequest{ClientId: "X", Features: map[string]*tactv1.FeatureValue{"age": {}}})
			return err
		}, codes.InvalidArgument, "features"},
		{"duplicate in batch", func() error {
			_, err := fc.BatchPutClientFeatures(ctx, &tactv1.BatchPutClientFeaturesRequest{Clients: []*tactv1.ClientFeatures{{ClientId: "D"}, {ClientId: "D"}}})
			return err
		}, codes.InvalidArgument, "clients[1].client_id"},
		{"bad record in batch", func() error {
			_, err := fc.BatchPutClientFeatures(ctx, &tactv1.BatchPutClientFeaturesRequest{Clients: []*tactv1.ClientFeatures{{ClientId: "E1"}, {ClientId: "E2", Features: map[string]*tactv1.FeatureValue{"age": boolv(true)}}}})
			return err
		}, codes.InvalidArgument, "clients[1].features"},
		{"unknown client", func() error {
			_, err := fc.GetClientFeatures(ctx, &tactv1.GetClientFeaturesRequest{ClientId: "NOPE"})
			return err
		}, codes.NotFound, "client_id"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if status.Code(err) != tt.code || !strings.Contains(status.Convert(err).Message(), tt.want) {
				t.Errorf("got %v, want %v naming %q", err, tt.code, tt.want)
			}
		})
	}
	if _, err := fc.GetClientFeatures(ctx, &tactv1.GetClientFeaturesRequest{ClientId: "E1"}); status.Code(err) != codes.NotFound {
		t.Errorf("the good record of a rejected batch was stored: %v", err)
	}
}
