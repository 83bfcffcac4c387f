package experiment

import (
	"context"
	"os"
	"testing"

	"github.com/tact-nba/tact/model/catalog"
	"github.com/tact-nba/tact/model/demo"
	"github.com/tact-nba/tact/model/policy"
)

// FuzzParse: any experiments file, catalog or policy loads or is refused
// with an error; a config that loads assigns a client without error.
func FuzzParse(f *testing.F) {
	env := demoEnv(f)
	if raw, err := os.ReadFile("../../examples/experiments.json"); err == nil {
		f.Add(raw, uint8(0))
	}
	f.Add([]byte(`{"features": {"f": {"defaultValue": {}, "rules": [{"condition": {"id": {"$in": ["a"]}}, "force": {"levers": {"mortgage": 2}}}, {"variations": [{}, {"tiers": {"gold": {"min_propensity": 0.5}}}], "weights": [0.3, 0.7], "namespace": ["ns", 0, 0.5]}]}}}`), uint8(0))
	f.Add([]byte(`{"features": {"f": {"defaultValue": {"load": {"busy_when": {"calls_waiting": 1}}}}}}`), uint8(0))
	f.Add(demo.CatalogYAML(), uint8(1))
	f.Add(policy.DefaultYAML(), uint8(2))
	f.Add([]byte("tiers: [{name: a, when: 'balance >', min_propensity: 2}]"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, kind uint8) {
		switch kind % 3 {
		case 0:
			s, err := Parse(data, env)
			if err != nil {
				return
			}
			defer s.Close()
			if _, _, err := s.Assign(context.Background(), Attributes{ClientID: "C1", Tier: "gold", Channel: "web"}); err != nil {
				t.Fatalf("a config that loaded fails to assign: %v", err)
			}
		case 1:
			_, _ = catalog.Parse(data, env.Schema)
		case 2:
			_, _ = policy.Parse(data, env.Catalog, env.Schema)
		}
	})
}
