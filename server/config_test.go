package server

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestLoadConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tact.yaml")
	if err := os.WriteFile(file, []byte("grpc_addr: 127.0.0.1:7001\nhttp_addr: 127.0.0.1:7002\nlog_level: debug\nfeature_budget: 20ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		environ []string
		check   func(Config) string
	}{
		{"defaults", nil, nil, func(c Config) string {
			if c != Defaults() {
				return "not the defaults"
			}
			return ""
		}},
		{"file over defaults", []string{"--config", file}, nil, func(c Config) string {
			if c.GRPCAddr != "127.0.0.1:7001" || c.LogLevel != "debug" || c.FeatureBudget != 20*time.Millisecond || c.DataDir != "tact-data" {
				return "file values not applied"
			}
			return ""
		}},
		{"file from TACT_CONFIG", nil, []string{"TACT_CONFIG=" + file}, func(c Config) string {
			if c.GRPCAddr != "127.0.0.1:7001" || c.ConfigFile != file {
				return "TACT_CONFIG not read"
			}
			return ""
		}},
		{"env over file", []string{"--config", file}, []string{"TACT_GRPC_ADDR=127.0.0.1:7101", "TACT_DEMO=false", "TACT_REQUIRE_REDIS=1", "TACT_ADDR=x"}, func(c Config) string {
			if c.GRPCAddr != "127.0.0.1:7101" || c.Demo != "false" || c.LogLevel != "debug" {
				return "environment not applied over the file"
			}
			return ""
		}},
		{"redis password from the environment", []string{"--feature-store", "redis"}, []string{"TACT_REDIS_PASSWORD=s3cret"}, func(c Config) string {
			if c.Redis.Password != "s3cret" || c.FeatureStore != "redis" {
				return "TACT_REDIS_PASSWORD not read"
			}
			return ""
		}},
		{"flags over env", []string{"--config", file, "--grpc-addr", "127.0.0.1:7201", "--shutdown-timeout", "3s"}, []string{"TACT_GRPC_ADDR=127.0.0.1:7101"}, func(c Config) string {
			if c.GRPCAddr != "127.0.0.1:7201" || c.ShutdownTimeout != 3*time.Second || c.HTTPAddr != "127.0.0.1:7002" {
				return "flags not applied over environment and file"
			}
			return ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(tt.args, tt.environ)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if msg := tt.check(cfg); msg != "" {
				t.Errorf("%s: got %+v", msg, cfg)
			}
		})
	}
}

func TestLoadConfigErrorsNameEveryKey(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("grpc_adr: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "pw.yaml")
	if err := os.WriteFile(pwFile, []byte("feature_store: redis\nredis_password: hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		environ []string
		want    []string
	}{
		{"several bad values at once", []string{"--grpc-addr", "nohost", "--log-level", "loud", "--log-format", "xml", "--decision-log-buffer", "0"}, nil,
			[]string{"grpc_addr", "log_level", "log_format", "decision_log_buffer"}},
		{"bad duration in env", nil, []string{"TACT_SHUTDOWN_TIMEOUT=soon"}, []string{"shutdown_timeout"}},
		{"unknown key in file", []string{"--config", bad}, nil, []string{"grpc_adr"}},
		{"missing file", []string{"--config", filepath.Join(dir, "nope.yaml")}, nil, []string{"nope.yaml"}},
		{"unknown flag", []string{"--grpc"}, nil, []string{"grpc"}},
		{"stray argument", []string{"serve"}, nil, []string{"serve"}},
		{"same address twice", []string{"--grpc-addr", "localhost:9000", "--http-addr", "localhost:9000"}, nil, []string{"http_addr"}},
		{"bad feature store", []string{"--feature-store", "postgres"}, nil, []string{"feature_store"}},
		{"redis password in a file", []string{"--config", pwFile}, nil, []string{"redis_password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.args, tt.environ)
			if err == nil {
				t.Fatal("LoadConfig succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestReadmeConfigTable keeps the README's configuration table in step
// with the keys Config declares: the same keys, flags, environment
// variables and defaults.
func TestReadmeConfigTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| `--([a-z-]+)` \\| `TACT_([A-Z_]+)` \\| ([^|]+) \\|").FindAllSubmatch(readme, -1) {
		key := string(m[1])
		if strings.ReplaceAll(string(m[2]), "-", "_") != key || strings.ToLower(string(m[3])) != key {
			t.Errorf("README row for %s names flag --%s and TACT_%s", key, m[2], m[3])
		}
		documented[key] = strings.Trim(strings.TrimSpace(string(m[4])), "`")
	}
	var want []string
	for _, k := range configKeys {
		if k.from&fromFlag == 0 || k.name == "config" {
			continue // config, log_hash_key and redis_password are described in the text
		}
		want = append(want, k.name)
		def, ok := documented[k.name]
		switch {
		case !ok:
			t.Errorf("README does not document %s", k.name)
		case def == "(empty)" && k.def == "":
		case def != k.def:
			t.Errorf("README gives %s's default as %q, Config %q", k.name, def, k.def)
		}
	}
	if len(documented) != len(want) {
		t.Errorf("README documents %d keys, Config declares %d: %v", len(documented), len(want), want)
	}
}

// TestConfigDeclarations: every key is declared once, with help, and a
// default that parses (Defaults panics otherwise); every field of a
// supported type.
func TestConfigDeclarations(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range configKeys {
		if seen[k.name] {
			t.Errorf("%s declared twice", k.name)
		}
		seen[k.name] = true
		if k.help == "" {
			t.Errorf("%s has no help", k.name)
		}
		if k.from == 0 {
			t.Errorf("%s can be set from nowhere", k.name)
		}
		if _, err := parseValue(k.typ, k.def); err != nil && k.typ.Kind() != reflect.String {
			t.Errorf("%s: default %q: %v", k.name, k.def, err)
		}
	}
	for _, name := range []string{"cache_bytes", "cache_ttl", "store_timeout", "redis_addr", "redis_prefix", "redis_password", "drain_delay"} {
		if !seen[name] {
			t.Errorf("%s is not a key", name)
		}
	}
	d := Defaults()
	if d.Cache.MaxBytes != 256<<20 || d.Cache.TTL != 10*time.Minute || d.Redis.Prefix != "tact:" || d.CallTimeout != 2*time.Second || !d.AccessLog || d.Demo != "auto" {
		t.Errorf("Defaults() = %+v", d)
	}
}

// TestDurationsNeedAUnit: a bare number for a duration is refused, naming
// the key, from the file (where YAML reads 2 as a number, which was taken
// as 2 ns), the environment and a flag alike.
func TestDurationsNeedAUnit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tact.yaml")
	if err := os.WriteFile(file, []byte("call_timeout: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		environ []string
		where   string
	}{
		{"file", []string{"--config", file}, nil, "in " + file},
		{"environment", nil, []string{"TACT_CALL_TIMEOUT=2"}, "from TACT_CALL_TIMEOUT"},
		{"flag", []string{"--call-timeout", "2"}, nil, "flag --call-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := LoadConfig(tc.args, tc.environ)
			if err == nil {
				t.Fatalf("call_timeout 2 accepted as %v", cfg.CallTimeout)
			}
			if msg := err.Error(); !strings.Contains(msg, "call_timeout: 2 has no unit") && !strings.Contains(msg, `call_timeout: "2" has no unit`) || !strings.Contains(msg, tc.where) {
				t.Errorf("error %q: want call_timeout, no unit, %s", msg, tc.where)
			}
		})
	}
	if cfg, err := LoadConfig([]string{"--call-timeout", "1500ms"}, nil); err != nil || cfg.CallTimeout != 1500*time.Millisecond {
		t.Errorf("1500ms: %v, %v", cfg.CallTimeout, err)
	}
}

// TestEveryProblemOncePerKey: an unknown key does not hide the other
// problems of the file; each problem is one line naming one key and its
// value; an address that is not host:port is reported as such only.
func TestEveryProblemOncePerKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tact.yaml")
	if err := os.WriteFile(file, []byte("grpc_adr: x\nlog_level: verbose\ncache_bytes: -5\ncall_timeout: 2\nmax_in_flight: -3\nrate_limit: 50\ngrpc_addr: nonsense\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig([]string{"--config", file, "--rate-burst", "many"}, nil)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *ConfigError", err)
	}
	want := map[string]string{
		"grpc_adr":      "unknown key",
		"log_level":     `"verbose"`,
		"cache_bytes":   "-5",
		"call_timeout":  "no unit",
		"max_in_flight": "-3",
		"grpc_addr":     `"nonsense" is not host:port`,
		"rate_burst":    `"many"`,
	}
	got := map[string]string{}
	for _, p := range ce.Problems {
		key, msg, _ := strings.Cut(p, ": ")
		if _, dup := got[key]; dup {
			t.Errorf("%s reported twice: %q", key, ce.Problems)
		}
		got[key] = msg
		for other := range want {
			if other != key && strings.Contains(msg, other+",") {
				t.Errorf("problem of %s names %s too: %q", key, other, p)
			}
		}
	}
	for key, frag := range want {
		if !strings.Contains(got[key], frag) {
			t.Errorf("problem of %s = %q, want it to contain %q (all: %q)", key, got[key], frag, ce.Problems)
		}
	}
	if strings.Contains(got["grpc_addr"], "other machines") {
		t.Errorf("grpc_addr nonsense reported as %q", got["grpc_addr"])
	}
	if len(got) != len(want) {
		t.Errorf("problems %q, want one for each of %v", ce.Problems, want)
	}
}

// TestDemoSeedsOnlyTheDefaultDataDir: demo defaults to auto, which seeds
// the default data_dir only; a production data_dir gets the demo only
// when asked.
func TestDemoSeedsOnlyTheDefaultDataDir(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--data-dir", "/var/lib/tact"}, false},
		{[]string{"--data-dir", "/var/lib/tact", "--demo"}, true},
		{[]string{"--data-dir", "/var/lib/tact", "--demo=true"}, true},
		{[]string{"--demo=false"}, false},
	} {
		cfg, err := LoadConfig(tc.args, nil)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := cfg.SeedDemo(); got != tc.want {
			t.Errorf("%v: SeedDemo() = %v, want %v", tc.args, got, tc.want)
		}
	}
	file := filepath.Join(t.TempDir(), "tact.yaml")
	if err := os.WriteFile(file, []byte("data_dir: /var/lib/tact\ndemo: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err := LoadConfig([]string{"--config", file}, nil); err != nil || !cfg.SeedDemo() {
		t.Errorf("demo: true in a file: %+v, %v", cfg, err)
	}
	if _, err := LoadConfig([]string{"--demo=maybe"}, nil); err == nil || !strings.Contains(err.Error(), `demo: "maybe"`) {
		t.Errorf("--demo=maybe: %v", err)
	}
	// A value after a space is left over; the error says how to give it.
	for _, args := range [][]string{{"--demo", "true"}, {"--data-dir", "d", "--insecure", "false"}} {
		_, err := LoadConfig(args, nil)
		flag, val := args[len(args)-2], args[len(args)-1]
		if err == nil || !strings.Contains(err.Error(), "unexpected arguments: "+val) || !strings.Contains(err.Error(), flag+"="+val) {
			t.Errorf("%v: %v; want the argument named and %s=%s", args, err, flag, val)
		}
	}
	if _, err := LoadConfig([]string{"--demo", "extra", "more"}, nil); err == nil || !strings.Contains(err.Error(), "--demo=extra") {
		t.Errorf("--demo extra more: %v", err)
	}
	if _, err := LoadConfig([]string{"--data-dir", "d", "extra"}, nil); err == nil || strings.Contains(err.Error(), "=") {
		t.Errorf("a stray argument after a flag with a value: %v; want no hint", err)
	}
}

// TestHardeningKeysLoad: the auth, TLS and overload keys load from a file
// and the environment like the others.
func TestHardeningKeysLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tactd.yaml")
	if err := os.WriteFile(path, []byte("call_timeout: 3s\nrate_limit: 9\nmax_in_flight: 77\nauth_jwt_issuer: https://idp\nlog_hash_key: k1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig([]string{"--config", path}, []string{"TACT_RATE_BURST=7", "TACT_LOG_HASH_KEY=k2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CallTimeout != 3*time.Second || cfg.RateLimit != 9 || cfg.MaxInFlight != 77 || cfg.AuthJWTIssuer != "https://idp" || cfg.RateBurst != 7 || cfg.LogHashKey != "k2" || cfg.AuthJWTRolesClaim != "roles" {
		t.Errorf("loaded %+v", cfg)
	}
	if _, err := LoadConfig([]string{"--log-hash-key", "x"}, nil); err == nil {
		t.Error("log_hash_key accepted as a flag (it would show in ps)")
	}
}

// loadOrRefuse loads a config from args and checks it is refused with
// wantErr when that is set; ok says whether there is a config to check.
func loadOrRefuse(t *testing.T, args []string, wantErr string) (cfg Config, ok bool) {
	t.Helper()
	cfg, err := LoadConfig(args, nil)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%v: err = %v, want %q", args, err, wantErr)
		}
		return cfg, false
	}
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return cfg, true
}

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int64
		err  string
	}{
		{nil, 704 << 20, ""},
		{[]string{"--cache-bytes", "1073741824"}, 2<<30 + 192<<20, ""},
		{[]string{"--memory-limit", "-1"}, -1, ""},
		{[]string{"--memory-limit", "1073741824"}, 1 << 30, ""},
		{[]string{"--memory-limit", "300000000"}, 0, "memory_limit: 300000000 is below cache_bytes + 64 MiB"},
	} {
		cfg, ok := loadOrRefuse(t, tc.args, tc.err)
		if !ok {
			continue
		}
		if got := cfg.MemoryLimitBytes(); got != tc.want {
			t.Errorf("%v: limit %d, want %d", tc.args, got, tc.want)
		}
	}
	// ApplyMemoryLimit sets the runtime's limit unless GOMEMLIMIT is set.
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	t.Setenv("GOMEMLIMIT", "")
	ApplyMemoryLimit(Defaults(), slog.New(slog.DiscardHandler))
	if got := debug.SetMemoryLimit(-1); got != 704<<20 {
		t.Errorf("runtime limit %d, want %d", got, 704<<20)
	}
	debug.SetMemoryLimit(before)
	t.Setenv("GOMEMLIMIT", "900MiB")
	ApplyMemoryLimit(Defaults(), slog.New(slog.DiscardHandler))
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT set the runtime limit became %d", got)
	}
}

func TestGCPercent(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		limited bool
		want    int
		err     string
	}{
		{nil, true, 400, ""},
		{nil, false, 100, ""},
		{[]string{"--gc-percent", "150"}, true, 150, ""},
		{[]string{"--gc-percent", "-1"}, true, -1, ""},
		{[]string{"--gc-percent", "-1"}, false, 100, ""},
		{[]string{"--gc-percent", "-2"}, true, 0, "gc_percent: -2"},
		{[]string{"--gc-percent", "-1", "--memory-limit", "-1"}, false, 0, "gc_percent: -1"},
	} {
		cfg, ok := loadOrRefuse(t, tc.args, tc.err)
		if !ok {
			continue
		}
		if got := cfg.GCPercentFor(tc.limited); got != tc.want {
			t.Errorf("%v (limited %v): GOGC %d, want %d", tc.args, tc.limited, got, tc.want)
		}
	}
	// ApplyMemoryLimit sets the collector's percentage unless GOGC is set.
	beforeLimit := debug.SetMemoryLimit(-1)
	before := debug.SetGCPercent(100)
	defer func() { debug.SetGCPercent(before); debug.SetMemoryLimit(beforeLimit) }()
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	ApplyMemoryLimit(Defaults(), slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("runtime GOGC %d, want 400", got)
	}
	t.Setenv("GOGC", "250")
	ApplyMemoryLimit(Defaults(), slog.New(slog.DiscardHandler))
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set the runtime percentage became %d", got)
	}
}
