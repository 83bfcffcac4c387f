package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// Config is tactd's configuration. It is read, lowest precedence first,
// from the defaults, a YAML file (--config or TACT_CONFIG), environment
// variables (TACT_ and the key in upper case, e.g. TACT_GRPC_ADDR) and
// command-line flags (the key with dashes, e.g. --grpc-addr).
type Config struct {
	// ConfigFile is the YAML file read, if any.
	ConfigFile string `koanf:"config"`
	// GRPCAddr is the gRPC listen address.
	GRPCAddr string `koanf:"grpc_addr"`
	// HTTPAddr is the REST, health and OpenAPI listen address.
	HTTPAddr string `koanf:"http_addr"`
	// DataDir holds the embedded store (tact.db).
	DataDir string `koanf:"data_dir"`
	// Demo seeds the demo bank's clients into an empty store. (The demo
	// catalog and models are served either way until they can be loaded
	// from files.)
	Demo bool `koanf:"demo"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `koanf:"log_level"`
	// LogFormat is json or text.
	LogFormat string `koanf:"log_format"`
	// ShutdownTimeout bounds the drain after SIGTERM; calls still running
	// then are cut.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// FeatureBudget bounds a decision's feature read; past it the answer is
	// a degraded NO_OFFER.
	FeatureBudget time.Duration `koanf:"feature_budget"`
	// DecisionLogBuffer is how many decisions may wait to be logged; past
	// it decisions are answered but not logged (and counted).
	DecisionLogBuffer int `koanf:"decision_log_buffer"`
	// MaxBodyBytes is the largest REST request body; larger ones get 413.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// ModelDir holds the model bundle to serve in ModelDir/current; empty
	// means the embedded demo bundle.
	ModelDir string `koanf:"model_dir"`
	// ModelPoll is how often ModelDir/current, CatalogFile, PolicyFile and
	// ExperimentsFile are checked for a new version.
	ModelPoll time.Duration `koanf:"model_poll"`
	// CatalogFile is the YAML product catalog (see model/catalog); empty
	// means the embedded demo catalog.
	CatalogFile string `koanf:"catalog_file"`
	// PolicyFile is the YAML decision policy (see model/policy); empty
	// means the embedded default policy.
	PolicyFile string `koanf:"policy_file"`
	// ExperimentsFile is the A/B experiment config in GrowthBook's
	// features JSON format (see model/experiment); empty means none.
	ExperimentsFile string `koanf:"experiments_file"`
	// CacheBytes bounds the in-process feature cache.
	CacheBytes int64 `koanf:"cache_bytes"`
	// MemoryLimit is the Go runtime's soft memory limit (bytes): 0 means
	// twice CacheBytes plus 192 MiB, negative means none. GOMEMLIMIT in
	// the environment wins. See ApplyMemoryLimit.
	MemoryLimit int64 `koanf:"memory_limit"`
	// GCPercent is the Go collector's GOGC: 0 means 400 under a memory
	// limit and Go's 100 without one, -1 means off (only under a limit).
	// GOGC in the environment wins. See ApplyMemoryLimit.
	GCPercent int `koanf:"gc_percent"`
	// CacheTTL is how long cached features are served without the store.
	CacheTTL time.Duration `koanf:"cache_ttl"`
	// CacheStale is how long past CacheTTL features are still served,
	// marked degraded, when the store fails.
	CacheStale time.Duration `koanf:"cache_stale"`
	// CacheNegativeTTL is how long an unknown client is remembered.
	CacheNegativeTTL time.Duration `koanf:"cache_negative_ttl"`
	// StoreTimeout bounds one feature-store read (shared by the calls
	// waiting for it; each call also has feature_budget).
	StoreTimeout time.Duration `koanf:"store_timeout"`
	// FeatureSchema is the YAML feature schema that admin writes are
	// checked against; empty means the demo bank's.
	FeatureSchema string `koanf:"feature_schema"`
	// FeatureStore is where client features are read: "bolt" (the
	// embedded file in data_dir) or "redis".
	FeatureStore string `koanf:"feature_store"`
	// RedisAddr, RedisDB, RedisTLS and RedisPrefix say how to reach Redis
	// when feature_store is redis. The password is read only from the
	// environment variable TACT_REDIS_PASSWORD, never from a file.
	RedisAddr   string `koanf:"redis_addr"`
	RedisDB     int    `koanf:"redis_db"`
	RedisTLS    bool   `koanf:"redis_tls"`
	RedisPrefix string `koanf:"redis_prefix"`
	// AccessLog writes a log line per call.
	AccessLog bool `koanf:"access_log"`
	// AuthAPIKeysFile lists the static API keys (as SHA-256 hashes) and
	// their roles; AuthJWKSFile verifies JWTs. Either turns auth on.
	AuthAPIKeysFile   string `koanf:"auth_api_keys_file"`
	AuthJWKSFile      string `koanf:"auth_jwks_file"`
	AuthJWTIssuer     string `koanf:"auth_jwt_issuer"`
	AuthJWTAudience   string `koanf:"auth_jwt_audience"`
	AuthJWTRolesClaim string `koanf:"auth_jwt_roles_claim"`
	// TLS for both listeners; TLSClientCAFile requires client certificates
	// signed by that CA (mTLS).
	TLSCertFile     string `koanf:"tls_cert_file"`
	TLSKeyFile      string `koanf:"tls_key_file"`
	TLSClientCAFile string `koanf:"tls_client_ca_file"`
	// CallTimeout is the deadline of a call that comes without one.
	CallTimeout time.Duration `koanf:"call_timeout"`
	// MaxInFlight bounds the calls being served (0: 128 per CPU); past it
	// calls are refused at once with RESOURCE_EXHAUSTED / 429.
	MaxInFlight int `koanf:"max_in_flight"`
	// RateLimit is each caller's calls per second (0: none), with bursts
	// of RateBurst.
	RateLimit float64 `koanf:"rate_limit"`
	RateBurst int     `koanf:"rate_burst"`
	// Insecure allows listening beyond loopback with authentication off.
	Insecure bool `koanf:"insecure"`
	// LogHashKey keys the HMAC under which client ids appear in logs and
	// traces (from the config file or TACT_LOG_HASH_KEY, never a flag);
	// empty means a random key per process.
	LogHashKey string `koanf:"log_hash_key"`
	// RedisPassword comes from TACT_REDIS_PASSWORD.
	RedisPassword string `koanf:"-"`
}

// Defaults returns the configuration used when nothing is set: the demo
// bank on localhost.
func Defaults() Config {
	return Config{
		GRPCAddr:          "localhost:9090",
		HTTPAddr:          "localhost:8080",
		DataDir:           "tact-data",
		Demo:              true,
		LogLevel:          "info",
		LogFormat:         "json",
		ShutdownTimeout:   8 * time.Second,
		FeatureBudget:     50 * time.Millisecond,
		DecisionLogBuffer: 65536,
		MaxBodyBytes:      64 << 10,
		ModelPoll:         2 * time.Second,
		CacheBytes:        256 << 20,
		AccessLog:         true,
		AuthJWTRolesClaim: "roles",
		CallTimeout:       2 * time.Second,
		RateBurst:         50,
		CacheTTL:          10 * time.Minute,
		CacheStale:        15 * time.Minute,
		CacheNegativeTTL:  10 * time.Second,
		StoreTimeout:      time.Second,
		FeatureStore:      "bolt",
		RedisAddr:         "localhost:6379",
		RedisPrefix:       "tact:",
	}
}

// flagHelp documents each key once; it is used for the flags and the
// README's configuration table is kept in step with it by a test.
var flagHelp = map[string]string{
	"config":               "YAML configuration file",
	"grpc_addr":            "gRPC listen address",
	"http_addr":            "REST/health listen address",
	"data_dir":             "directory of the embedded store",
	"demo":                 "seed the demo clients into an empty store",
	"log_level":            "debug, info, warn or error",
	"log_format":           "json or text",
	"shutdown_timeout":     "longest drain on SIGTERM",
	"feature_budget":       "time budget of a decision's feature read",
	"decision_log_buffer":  "decisions that may wait to be logged",
	"max_body_bytes":       "largest REST request body (bytes)",
	"model_dir":            "directory whose current/ bundle is served (empty: the demo bundle)",
	"model_poll":           "how often model_dir/current, catalog_file and policy_file are checked for changes",
	"catalog_file":         "YAML product catalog (empty: the demo catalog)",
	"policy_file":          "YAML decision policy: tiers, caps, load, arbitration (empty: the default policy)",
	"experiments_file":     "A/B experiments, GrowthBook features JSON (empty: none)",
	"access_log":           "write a log line per call: method, code, latency, trace id",
	"auth_api_keys_file":   "YAML list of API keys (name, sha256, roles); turns authentication on",
	"auth_jwks_file":       "JWKS file that verifies bearer JWTs; turns authentication on",
	"auth_jwt_issuer":      "required iss of JWTs (empty: not checked)",
	"auth_jwt_audience":    "required aud of JWTs (empty: not checked)",
	"auth_jwt_roles_claim": "JWT claim holding the roles (agent, feed, admin)",
	"tls_cert_file":        "PEM certificate for gRPC and HTTPS (reloaded when it changes)",
	"tls_key_file":         "PEM private key of tls_cert_file",
	"tls_client_ca_file":   "PEM CA whose client certificates are required (mTLS)",
	"insecure":             "allow listening beyond loopback with authentication off",
	"call_timeout":         "deadline of a call that comes without one (REST included)",
	"max_in_flight":        "calls served at once before new ones are refused with RESOURCE_EXHAUSTED / 429 (0: 128 per CPU)",
	"rate_limit":           "calls per second per caller (API key or JWT subject, else client address); 0: no limit",
	"rate_burst":           "burst above rate_limit",
	"cache_bytes":          "memory bound of the feature cache (bytes)",
	"memory_limit":         "soft limit of the Go heap (bytes); 0: twice cache_bytes + 192 MiB; -1: none; GOMEMLIMIT wins",
	"gc_percent":           "the collector's GOGC; 0: 400 under memory_limit, 100 without; -1: off (needs memory_limit); GOGC wins",
	"cache_ttl":            "how long cached features are served without the store",
	"cache_stale":          "how long past cache_ttl features are served, degraded, when the store fails",
	"cache_negative_ttl":   "how long an unknown client is remembered",
	"store_timeout":        "longest feature-store read",
	"feature_store":        "where features are read: bolt or redis",
	"feature_schema":       "YAML feature schema for admin writes (empty: the demo bank's)",
	"redis_addr":           "Redis address (feature_store redis)",
	"redis_db":             "Redis database number",
	"redis_tls":            "connect to Redis over TLS",
	"redis_prefix":         "prefix of the Redis keys",
}

// LoadConfig reads the configuration from args (without the program name)
// and environ (os.Environ form). It returns every problem at once.
func LoadConfig(args, environ []string) (Config, error) {
	def := Defaults()
	fs := pflag.NewFlagSet("tactd", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.String("config", "", flagHelp["config"])
	fs.String("grpc-addr", def.GRPCAddr, flagHelp["grpc_addr"])
	fs.String("http-addr", def.HTTPAddr, flagHelp["http_addr"])
	fs.String("data-dir", def.DataDir, flagHelp["data_dir"])
	fs.Bool("demo", def.Demo, flagHelp["demo"])
	fs.String("log-level", def.LogLevel, flagHelp["log_level"])
	fs.String("log-format", def.LogFormat, flagHelp["log_format"])
	fs.Duration("shutdown-timeout", def.ShutdownTimeout, flagHelp["shutdown_timeout"])
	fs.Duration("feature-budget", def.FeatureBudget, flagHelp["feature_budget"])
	fs.Int("decision-log-buffer", def.DecisionLogBuffer, flagHelp["decision_log_buffer"])
	fs.Int64("max-body-bytes", def.MaxBodyBytes, flagHelp["max_body_bytes"])
	fs.String("model-dir", def.ModelDir, flagHelp["model_dir"])
	fs.Duration("model-poll", def.ModelPoll, flagHelp["model_poll"])
	fs.String("catalog-file", def.CatalogFile, flagHelp["catalog_file"])
	fs.String("policy-file", def.PolicyFile, flagHelp["policy_file"])
	fs.String("experiments-file", def.ExperimentsFile, flagHelp["experiments_file"])
	fs.Bool("access-log", def.AccessLog, flagHelp["access_log"])
	for k, v := range map[string]string{"auth_api_keys_file": def.AuthAPIKeysFile, "auth_jwks_file": def.AuthJWKSFile,
		"auth_jwt_issuer": def.AuthJWTIssuer, "auth_jwt_audience": def.AuthJWTAudience, "auth_jwt_roles_claim": def.AuthJWTRolesClaim,
		"tls_cert_file": def.TLSCertFile, "tls_key_file": def.TLSKeyFile, "tls_client_ca_file": def.TLSClientCAFile} {
		fs.String(strings.ReplaceAll(k, "_", "-"), v, flagHelp[k])
	}
	fs.Bool("insecure", def.Insecure, flagHelp["insecure"])
	fs.Duration("call-timeout", def.CallTimeout, flagHelp["call_timeout"])
	fs.Int("max-in-flight", def.MaxInFlight, flagHelp["max_in_flight"])
	fs.Float64("rate-limit", def.RateLimit, flagHelp["rate_limit"])
	fs.Int("rate-burst", def.RateBurst, flagHelp["rate_burst"])
	fs.Int64("cache-bytes", def.CacheBytes, flagHelp["cache_bytes"])
	fs.Int64("memory-limit", def.MemoryLimit, flagHelp["memory_limit"])
	fs.Int("gc-percent", def.GCPercent, flagHelp["gc_percent"])
	fs.Duration("cache-ttl", def.CacheTTL, flagHelp["cache_ttl"])
	fs.Duration("cache-stale", def.CacheStale, flagHelp["cache_stale"])
	fs.Duration("cache-negative-ttl", def.CacheNegativeTTL, flagHelp["cache_negative_ttl"])
	fs.Duration("store-timeout", def.StoreTimeout, flagHelp["store_timeout"])
	fs.String("feature-store", def.FeatureStore, flagHelp["feature_store"])
	fs.String("feature-schema", def.FeatureSchema, flagHelp["feature_schema"])
	fs.String("redis-addr", def.RedisAddr, flagHelp["redis_addr"])
	fs.Int("redis-db", def.RedisDB, flagHelp["redis_db"])
	fs.Bool("redis-tls", def.RedisTLS, flagHelp["redis_tls"])
	fs.String("redis-prefix", def.RedisPrefix, flagHelp["redis_prefix"])
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}

	k := koanf.New(".")
	if err := k.Load(confmap.Provider(map[string]any{
		"grpc_addr":            def.GRPCAddr,
		"http_addr":            def.HTTPAddr,
		"data_dir":             def.DataDir,
		"demo":                 def.Demo,
		"log_level":            def.LogLevel,
		"log_format":           def.LogFormat,
		"shutdown_timeout":     def.ShutdownTimeout,
		"feature_budget":       def.FeatureBudget,
		"decision_log_buffer":  def.DecisionLogBuffer,
		"max_body_bytes":       def.MaxBodyBytes,
		"model_dir":            def.ModelDir,
		"model_poll":           def.ModelPoll,
		"catalog_file":         def.CatalogFile,
		"policy_file":          def.PolicyFile,
		"experiments_file":     def.ExperimentsFile,
		"log_hash_key":         def.LogHashKey,
		"access_log":           def.AccessLog,
		"auth_api_keys_file":   def.AuthAPIKeysFile,
		"auth_jwks_file":       def.AuthJWKSFile,
		"auth_jwt_issuer":      def.AuthJWTIssuer,
		"auth_jwt_audience":    def.AuthJWTAudience,
		"auth_jwt_roles_claim": def.AuthJWTRolesClaim,
		"call_timeout":         def.CallTimeout,
		"max_in_flight":        def.MaxInFlight,
		"rate_limit":           def.RateLimit,
		"rate_burst":           def.RateBurst,
		"tls_cert_file":        def.TLSCertFile,
		"tls_key_file":         def.TLSKeyFile,
		"tls_client_ca_file":   def.TLSClientCAFile,
		"insecure":             def.Insecure,
		"cache_bytes":          def.CacheBytes,
		"memory_limit":         def.MemoryLimit,
		"gc_percent":           def.GCPercent,
		"cache_ttl":            def.CacheTTL,
		"cache_stale":          def.CacheStale,
		"cache_negative_ttl":   def.CacheNegativeTTL,
		"store_timeout":        def.StoreTimeout,
		"feature_store":        def.FeatureStore,
		"feature_schema":       def.FeatureSchema,
		"redis_addr":           def.RedisAddr,
		"redis_db":             def.RedisDB,
		"redis_tls":            def.RedisTLS,
		"redis_prefix":         def.RedisPrefix,
	}, "."), nil); err != nil {
		return Config{}, err
	}
	envp := env.Provider(".", env.Opt{
		Prefix:      "TACT_",
		EnvironFunc: func() []string { return environ },
		// Only tactd's own keys are read: other TACT_ variables belong to
		// the CLI and the tests (TACT_ADDR, TACT_REQUIRE_REDIS).
		TransformFunc: func(key, v string) (string, any) {
			key = strings.ToLower(strings.TrimPrefix(key, "TACT_"))
			if _, ok := flagHelp[key]; !ok && key != "log_hash_key" {
				return "", nil
			}
			return key, v
		},
	})
	// The file named by the flag or the environment is read first, then
	// the environment and flags override it.
	path, _ := fs.GetString("config")
	if path == "" {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, "TACT_CONFIG="); ok {
				path = v
			}
		}
	}
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := k.Load(envp, nil); err != nil {
		return Config{}, fmt.Errorf("environment: %w", err)
	}
	if err := k.Load(posflag.ProviderWithFlag(fs, ".", k, func(f *pflag.Flag) (string, any) {
		return strings.ReplaceAll(f.Name, "-", "_"), posflag.FlagVal(fs, f)
	}), nil); err != nil {
		return Config{}, fmt.Errorf("flags: %w", err)
	}
	var cfg Config
	err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc()),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		TagName:          "koanf",
		Result:           &cfg,
	}})
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg.ConfigFile = path
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "TACT_REDIS_PASSWORD="); ok {
			cfg.RedisPassword = v
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Validate reports every problem with the configuration, naming the key.
func (c *Config) Validate() error {
	var errs []error
	if c.CallTimeout < 0 || c.MaxInFlight < 0 || c.RateLimit < 0 || c.RateBurst < 1 {
		errs = append(errs, fmt.Errorf("call_timeout, max_in_flight, rate_limit: must not be negative; rate_burst: at least 1 (have %v, %d, %v, %d)", c.CallTimeout, c.MaxInFlight, c.RateLimit, c.RateBurst))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("tls_cert_file and tls_key_file: give both or neither"))
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		errs = append(errs, errors.New("tls_client_ca_file: mTLS needs tls_cert_file and tls_key_file too"))
	}
	if c.AuthAPIKeysFile == "" && c.AuthJWKSFile == "" && !c.Insecure {
		for key, addr := range map[string]string{"grpc_addr": c.GRPCAddr, "http_addr": c.HTTPAddr} {
			if !loopback(addr) {
				errs = append(errs, fmt.Errorf("%s: %s takes connections from other machines and authentication is off: set auth_api_keys_file or auth_jwks_file, or start with --insecure", key, addr))
			}
		}
	}
	for key, addr := range map[string]string{"grpc_addr": c.GRPCAddr, "http_addr": c.HTTPAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port: %w", key, addr, err))
		}
	}
	if c.GRPCAddr == c.HTTPAddr && !strings.HasSuffix(c.GRPCAddr, ":0") {
		errs = append(errs, fmt.Errorf("http_addr: same as grpc_addr (%s)", c.GRPCAddr))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data_dir: empty"))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("log_format: %q is not json or text", c.LogFormat))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %v must be positive", c.ShutdownTimeout))
	}
	if c.FeatureBudget <= 0 || c.FeatureBudget > 10*time.Second {
		errs = append(errs, fmt.Errorf("feature_budget: %v must be in (0, 10s]", c.FeatureBudget))
	}
	if c.DecisionLogBuffer < 1 {
		errs = append(errs, fmt.Errorf("decision_log_buffer: %d must be at least 1", c.DecisionLogBuffer))
	}
	switch c.FeatureStore {
	case "bolt":
	case "redis":
		if _, _, err := net.SplitHostPort(c.RedisAddr); err != nil {
			errs = append(errs, fmt.Errorf("redis_addr: %q is not host:port", c.RedisAddr))
		}
		if c.RedisDB < 0 || c.RedisDB > 15 {
			errs = append(errs, fmt.Errorf("redis_db: %d not in 0..15", c.RedisDB))
		}
	default:
		errs = append(errs, fmt.Errorf("feature_store: %q is not bolt or redis", c.FeatureStore))
	}
	if c.CacheBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("cache_bytes: %d must be at least 1 MiB", c.CacheBytes))
	}
	if c.MemoryLimit > 0 && c.MemoryLimit < c.CacheBytes+memoryHeadroom {
		errs = append(errs, fmt.Errorf("memory_limit: %d is below cache_bytes + 64 MiB (%d): the collector would run all the time", c.MemoryLimit, c.CacheBytes+memoryHeadroom))
	}
	if c.GCPercent < -1 || (c.GCPercent == -1 && c.MemoryLimit < 0) {
		errs = append(errs, fmt.Errorf("gc_percent: %d must be -1 (off, with a memory_limit), 0 (automatic) or a percentage", c.GCPercent))
	}
	for key, d := range map[string]time.Duration{"cache_ttl": c.CacheTTL, "cache_stale": c.CacheStale, "cache_negative_ttl": c.CacheNegativeTTL, "store_timeout": c.StoreTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %v must be positive", key, d))
		}
	}
	if c.ModelPoll < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("model_poll: %v must be at least 100ms", c.ModelPoll))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d must be at least 1024", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// Logger returns the logger the configuration asks for, writing to w.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel)) // checked by Validate
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
