package server

import (
	"context"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/features/redistest"
	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// feastValue is a feast.types.Value as Feast serializes it (the oneof's
// field numbers: string_val 2, int64_val 4, double_val 5, bool_val 7).
func feastValue(v any) string {
	var b []byte
	switch x := v.(type) {
	case string:
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, x)
	case int64:
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(x))
	case float64:
		b = protowire.AppendTag(b, 5, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(x))
	case bool:
		b = protowire.AppendTag(b, 7, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(x))
	}
	return string(b)
}

// feastTimestamp is a google.protobuf.Timestamp's bytes.
func feastTimestamp(t time.Time) string {
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Unix()))
	return string(b)
}

// materialize writes one entity's features for each view as Feast's
// materialization does: one hash per entity, a field per feature and one
// _ts field per view.
func materialize(t *testing.T, rc *redis.Client, project, clientID string, views map[string]map[string]any, at time.Time) {
	t.Helper()
	key := string(features.FeastKey(project, "client_id", features.FeastEntity{Str: clientID}))
	fields := map[string]any{}
	for view, fs := range views {
		fields["_ts:"+view] = feastTimestamp(at)
		for name, v := range fs {
			fields[features.FeastField(view, name)] = feastValue(v)
		}
	}
	if err := rc.HSet(context.Background(), key, fields).Err(); err != nil {
		t.Fatal(err)
	}
}

// TestFeastFeatures: features Feast materialized into Redis for two
// feature views are what tactd decides on; a value of another type than
// the schema's is left out and logged; the features are read-only
// through Tact.
func TestFeastFeatures(t *testing.T) {
	rs := redistest.Start(t)
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rc.Close()
	at := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	materialize(t, rc, "bank", "F00001", map[string]map[string]any{
		"client_profile":  {"age": int64(52), "income_monthly": 6400.0, "tier": "platinum", "tenure_years": int64(12)},
		"client_products": {"balance": 91000.0, "consent_offers": true, "holds_credit_card": true},
	}, at)
	materialize(t, rc, "bank", "F00002", map[string]map[string]any{
		"client_profile":  {"age": "forty", "income_monthly": 2100.0, "tier": "standard"},
		"client_products": {"balance": 1200.0, "consent_offers": false},
	}, at)
	// Another project's entity is not this project's.
	materialize(t, rc, "other", "F00003", map[string]map[string]any{"client_profile": {"tier": "gold"}}, at)

	logs := &syncBuffer{}
	ts := startServer(t, Deps{}, func(c *Config, w *io.Writer) {
		*w = logs
		c.FeatureStore, c.Redis.Addr = "feast", rs.Addr
		c.Feast.Project, c.Feast.Views = "bank", "client_profile, client_products"
	})
	dc := tactv1.NewDecisionServiceClient(ts.conn)
	fc := tactv1.NewFeatureServiceClient(ts.conn)
	ctx := t.Context()

	got, err := fc.GetClientFeatures(ctx, &tactv1.GetClientFeaturesRequest{ClientId: "F00001"})
	if err != nil {
		t.Fatal(err)
	}
	f := got.GetClient().GetFeatures()
	if f["age"].GetNumber() != 52 || f["income_monthly"].GetNumber() != 6400 || f["tier"].GetString_() != "platinum" ||
		f["balance"].GetNumber() != 91000 || !f["consent_offers"].GetBool() || !f["holds_credit_card"].GetBool() ||
		!got.GetClient().GetUpdatedAt().AsTime().Equal(at) {
		t.Errorf("F00001 as read from Feast: %v, updated %v", f, got.GetClient().GetUpdatedAt().AsTime())
	}
	if f["holds_mortgage"] == nil || f["holds_mortgage"].GetBool() {
		t.Errorf("a feature Feast lacks takes the schema's default (false): %v", f["holds_mortgage"])
	}

	d, err := dc.Decide(ctx, &tactv1.DecideRequest{ClientId: "F00001", Channel: tactv1.Channel_CHANNEL_WEB})
	if err != nil || d.GetTier() != "platinum" || d.GetReasons()[0].GetCode() == tactv1.ReasonCode_REASON_CODE_CLIENT_UNKNOWN {
		t.Errorf("F00001: %v %v, %v; want a decision on Feast's features (tier platinum)", d.GetAction(), d.GetReasons(), err)
	}
	d, err = dc.Decide(ctx, &tactv1.DecideRequest{ClientId: "F00002", Channel: tactv1.Channel_CHANNEL_WEB})
	if err != nil || d.GetAction() != tactv1.Action_ACTION_NO_OFFER || d.GetReasons()[0].GetCode() != tactv1.ReasonCode_REASON_CODE_NO_CONSENT {
		t.Errorf("F00002 (no consent in client_products): %v %v, %v", d.GetAction(), d.GetReasons(), err)
	}
	if !strings.Contains(logs.String(), `"feature":"age"`) || !strings.Contains(logs.String(), "left out") {
		t.Errorf("F00002's age (a string in Feast) was not reported:\n%s", logs.String())
	}
	d, err = dc.Decide(ctx, &tactv1.DecideRequest{ClientId: "F00003", Channel: tactv1.Channel_CHANNEL_WEB})
	if err != nil || d.GetReasons()[0].GetCode() != tactv1.ReasonCode_REASON_CODE_CLIENT_UNKNOWN {
		t.Errorf("F00003 (another project's): %v, %v; want unknown", d.GetReasons(), err)
	}

	_, err = fc.PutClientFeatures(ctx, &tactv1.PutClientFeaturesRequest{ClientId: "F00001", Features: map[string]*tactv1.FeatureValue{"age": num(53)}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "Feast materializes the features") {
		t.Errorf("a write with feature_store feast: %v, want FailedPrecondition saying Feast owns them", err)
	}
}
