package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/tact-nba/tact/features"
)

// KeepsDetail reports whether decisions are logged with their detail.
func (c *Config) KeepsDetail() bool {
	return c.DecisionDetail == "full" || (c.DecisionDetail == "auto" && (c.Learning == "adaptive" || c.Exploring()))
}

// Exploring reports whether the policy explores (see decision.Config).
func (c *Config) Exploring() bool {
	return c.Exploration == "on" || (c.Exploration == "auto" && c.Learning == "adaptive")
}

// Config is tactd's configuration. It is read, lowest precedence first,
// from the defaults, a YAML file (--config or TACT_CONFIG), environment
// variables (TACT_ and the key in upper case, e.g. TACT_GRPC_ADDR) and
// command-line flags (the key with dashes, e.g. --grpc-addr).
//
// Each key is declared once, here, by its field's tags: koanf (the key),
// default, help and, for keys that some sources must not set, from (a
// list of file, env and flag). The flags, the environment variables, the
// defaults and the help all come from these tags (see configkeys.go);
// Cache and Redis are the features package's own configs, their keys
// declared there.
type Config struct {
	// ConfigFile is the YAML file read, if any.
	ConfigFile string `koanf:"config" from:"flag,env" help:"YAML configuration file"`
	GRPCAddr   string `koanf:"grpc_addr" default:"localhost:9090" help:"gRPC listen address"`
	// HTTPAddr serves REST, health and the OpenAPI document.
	HTTPAddr string `koanf:"http_addr" default:"localhost:8080" help:"REST/health listen address"`
	// DataDir holds the embedded store (tact.db).
	DataDir string `koanf:"data_dir" default:"tact-data" help:"directory of the embedded store"`
	// Demo says whether the demo bank's clients are seeded into an empty
	// embedded store: "auto" seeds them only into the default data_dir,
	// so that a production data_dir never gets them unasked; "true" and
	// "false" always and never. See SeedDemo. With feature_store redis,
	// "true" seeds them into Redis when it holds none of them.
	Demo      string `koanf:"demo" default:"auto" help:"seed the demo clients into an empty store: auto (only into the default data_dir), true (into any data_dir, or into Redis with feature_store redis) or false"`
	LogLevel  string `koanf:"log_level" default:"info" help:"debug, info, warn or error"`
	LogFormat string `koanf:"log_format" default:"json" help:"json or text"`
	// AccessLog writes a log line per call.
	AccessLog bool `koanf:"access_log" default:"true" help:"write a log line per call: method, code, latency, trace id"`
	// AuthAPIKeysFile lists the static API keys (as SHA-256 hashes) and
	// their roles; AuthJWKSFile verifies JWTs. Either turns auth on.
	AuthAPIKeysFile   string `koanf:"auth_api_keys_file" help:"YAML list of API keys (name, sha256, roles); turns authentication on"`
	AuthJWKSFile      string `koanf:"auth_jwks_file" help:"JWKS file that verifies bearer JWTs; turns authentication on"`
	AuthJWTIssuer     string `koanf:"auth_jwt_issuer" help:"required iss of JWTs (empty: not checked)"`
	AuthJWTAudience   string `koanf:"auth_jwt_audience" help:"required aud of JWTs (empty: not checked)"`
	AuthJWTRolesClaim string `koanf:"auth_jwt_roles_claim" default:"roles" help:"JWT claim holding the roles (agent, feed, admin)"`
	// TLS for both listeners; TLSClientCAFile requires client certificates
	// signed by that CA (mTLS).
	TLSCertFile     string `koanf:"tls_cert_file" help:"PEM certificate for gRPC and HTTPS (reloaded when it changes)"`
	TLSKeyFile      string `koanf:"tls_key_file" help:"PEM private key of tls_cert_file"`
	TLSClientCAFile string `koanf:"tls_client_ca_file" help:"PEM CA whose client certificates are required (mTLS)"`
	// Insecure allows listening beyond loopback with authentication off.
	Insecure bool `koanf:"insecure" default:"false" help:"allow listening beyond loopback with authentication off"`
	// CallTimeout is the deadline of a call that comes without one.
	CallTimeout time.Duration `koanf:"call_timeout" default:"2s" help:"deadline of a call that comes without one (REST included)"`
	// MaxInFlight bounds the calls being served (0: 128 per CPU); past it
	// calls are refused at once with RESOURCE_EXHAUSTED / 429.
	MaxInFlight int `koanf:"max_in_flight" default:"0" help:"calls served at once before new ones are refused with RESOURCE_EXHAUSTED / 429 (0: 128 per CPU)"`
	// RateLimit is each caller's calls per second (0: none), with bursts
	// of RateBurst.
	RateLimit float64 `koanf:"rate_limit" default:"0" help:"calls per second per caller (API key or JWT subject, else client address); 0: no limit"`
	RateBurst int     `koanf:"rate_burst" default:"50" help:"burst above rate_limit"`
	// DrainDelay is how long tactd keeps serving after SIGTERM with
	// readiness already failed (/readyz 503, gRPC health NOT_SERVING), so
	// that load balancers stop sending before the listeners close.
	DrainDelay time.Duration `koanf:"drain_delay" default:"3s" help:"on SIGTERM, how long to keep serving with readiness failed before draining (0: none)"`
	// MaxConnectionAge closes a gRPC connection (GOAWAY: the client
	// reconnects, its calls in flight finish) after this long, so that a
	// replica started later gets a share of long-lived clients.
	MaxConnectionAge time.Duration `koanf:"max_connection_age" default:"5m" help:"close a gRPC connection after this long (the client reconnects, perhaps to another replica); 0: never"`
	// ShutdownTimeout bounds the drain that follows DrainDelay; calls
	// still running then are cut.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout" default:"8s" help:"longest drain of the calls in flight, after drain_delay"`
	// FeatureBudget bounds a decision's feature read; past it the answer is
	// a degraded NO_OFFER.
	FeatureBudget time.Duration `koanf:"feature_budget" default:"50ms" help:"time budget of a decision's feature read"`
	// DecisionLogBuffer is how many decisions may wait to be logged; past
	// it decisions are answered but not logged (and counted).
	DecisionLogBuffer int `koanf:"decision_log_buffer" default:"65536" help:"decisions that may wait to be logged"`
	// MaxBodyBytes is the largest REST request body; larger ones get 413.
	MaxBodyBytes int64 `koanf:"max_body_bytes" default:"65536" help:"largest REST request body (bytes)"`
	// ModelDir holds the model bundle to serve in ModelDir/current; empty
	// means the embedded demo bundle.
	ModelDir string `koanf:"model_dir" help:"directory whose current/ bundle is served (empty: the demo bundle)"`
	// ModelPoll is how often ModelDir/current, CatalogFile, PolicyFile and
	// ExperimentsFile are checked for a new version.
	ModelPoll time.Duration `koanf:"model_poll" default:"2s" help:"how often model_dir/current, catalog_file, policy_file and experiments_file are checked for changes"`
	// CatalogFile is the YAML product catalog (see model/catalog); empty
	// means the embedded demo catalog.
	CatalogFile string `koanf:"catalog_file" help:"YAML product catalog (empty: the demo catalog)"`
	// PolicyFile is the YAML decision policy (see model/policy); empty
	// means the embedded default policy.
	PolicyFile string `koanf:"policy_file" help:"YAML decision policy: tiers, caps, load, arbitration (empty: the default policy)"`
	// ExperimentsFile is the A/B experiment config in GrowthBook's
	// features JSON format (see model/experiment); empty means none.
	ExperimentsFile string `koanf:"experiments_file" help:"A/B experiments, GrowthBook features JSON (empty: none)"`
	// Cache is the in-process feature cache: cache_bytes, cache_ttl,
	// cache_stale, cache_negative_ttl, store_timeout.
	Cache features.CacheConfig `koanf:""`
	// MemoryLimit is the Go runtime's soft memory limit (bytes): 0 means
	// twice cache_bytes plus 192 MiB, negative means none. GOMEMLIMIT in
	// the environment wins. See ApplyMemoryLimit.
	MemoryLimit int64 `koanf:"memory_limit" default:"0" help:"soft limit of the Go heap (bytes); 0: twice cache_bytes + 192 MiB; -1: none; GOMEMLIMIT wins"`
	// GCPercent is the Go collector's GOGC: 0 means 400 under a memory
	// limit and Go's 100 without one, -1 means off (only under a limit).
	// GOGC in the environment wins. See ApplyMemoryLimit.
	GCPercent int `koanf:"gc_percent" default:"0" help:"the collector's GOGC; 0: 400 under memory_limit, 100 without; -1: off (needs memory_limit); GOGC wins"`
	// FeatureSchema is the YAML feature schema that admin writes are
	// checked against; empty means the demo bank's.
	FeatureSchema string `koanf:"feature_schema" help:"YAML feature schema for admin writes (empty: the demo bank's)"`
	// FeatureStore is where client features are read: "bolt" (the
	// embedded file in data_dir) or "redis".
	FeatureStore string `koanf:"feature_store" default:"bolt" help:"where features are read: bolt, redis, or feast (Feast's Redis online store, in the Redis of redis_*)"`
	// Learning is "adaptive" to make each product's propensity learn from
	// every accepted or declined offer (model/adaptive), or "off".
	Learning string `koanf:"learning" default:"off" help:"off, or adaptive: each product's propensity learns online from every accepted or declined offer (state in the embedded store, or in Redis shared by the replicas)"`
	// LearningPrior is the propensity a product without a model in the
	// bundle starts from when learning.
	LearningPrior float64 `koanf:"learning_prior" default:"0.05" help:"with learning adaptive, the propensity a product without a model in the bundle starts from"`
	// DecisionDetail says whether each decision's record keeps what the
	// decision weighed, for tact train --from-log and tact evaluate.
	DecisionDetail string `koanf:"decision_detail" default:"auto" help:"full: each logged decision keeps the contact, every product's propensity, gate and choice probability, and the features as scored (about 1 KB), for tact train --from-log and tact evaluate; off: not kept; auto: full with learning adaptive or exploration on"`
	// DecisionDetailShare keeps the detail of that share of decisions.
	DecisionDetailShare float64 `koanf:"decision_detail_share" default:"1" help:"with decision_detail, the share of decisions (chosen by id, so independently of what was decided) that keep their detail; less saves space and CPU"`
	// Exploration makes the policy try, now and then, another product
	// that passed every gate than the best (auto: on with learning
	// adaptive).
	Exploration string `koanf:"exploration" default:"auto" help:"auto (on with learning adaptive), on or off: now and then offer first another product that passed every gate than the best, so that new and little-known products are tried; every choice's probability is logged"`
	// ExplorationRate is the share of decisions that explore at least.
	ExplorationRate float64 `koanf:"exploration_rate" default:"0.05" help:"with exploration, the share of decisions (with two or more products to offer now) whose first offer is drawn at random among those that passed every gate"`
	// ExplorationRamp is the share added for a product with no evidence.
	ExplorationRamp float64 `koanf:"exploration_ramp" default:"0.5" help:"with exploration and learning, the share added for a product with no evidence, falling to none at exploration_maturity outcomes"`
	// ExplorationMaturity is the evidence after which a product is only
	// explored at the floor rate.
	ExplorationMaturity int `koanf:"exploration_maturity" default:"500" help:"with exploration and learning, how many outcomes make a product's model mature (explored at exploration_rate only)"`
	// JournalSync is when the embedded store's journal of offer decisions
	// is synced to the disk: "always" (before the offer is answered) or
	// "everysec" (written before the answer, synced once a second).
	JournalSync string `koanf:"journal_sync" default:"always" help:"with feature_store bolt, when an offer's decision is synced to the disk: always (before the answer) or everysec (written before the answer, synced each second)"`
	// Retention is how long the decision log and the outcomes are kept:
	// decision_retention, outcome_window, outcome_retention.
	Retention features.Retention `koanf:""`
	// Feast says where Feast's online store keeps the features when
	// feature_store is feast: feast_project, feast_feature_views,
	// feast_join_key, feast_key_type.
	Feast features.FeastConfig `koanf:""`
	// Redis says how to reach Redis when feature_store is redis:
	// redis_addr, redis_db, redis_tls, redis_prefix, and the password
	// from TACT_REDIS_PASSWORD only.
	Redis features.RedisConfig `koanf:""`
	// LogHashKey keys the HMAC under which client ids appear in logs and
	// traces (from the config file or TACT_LOG_HASH_KEY, never a flag,
	// which would show in ps); empty means a random key per process.
	LogHashKey string `koanf:"log_hash_key" from:"file,env" help:"key of the HMAC that hashes client ids in logs and traces"`
}

// defaultDataDir is data_dir's default, the only directory demo: auto
// seeds.
const defaultDataDir = "tact-data"

// Defaults returns the configuration used when nothing is set: the demo
// bank on localhost.
func Defaults() Config {
	var c Config
	for i := range configKeys {
		k := &configKeys[i]
		if err := k.set(&c, k.def); err != nil {
			panic(fmt.Sprintf("server: default of %s: %v", k.name, err)) // a bad tag; TestConfigDeclarations catches it
		}
	}
	return c
}

// SeedDemo reports whether the demo clients should be seeded into an empty
// embedded store.
func (c *Config) SeedDemo() bool {
	switch c.Demo {
	case "true":
		return true
	case "auto":
		return c.DataDir == defaultDataDir
	default:
		return false
	}
}

// ConfigError lists every problem of a configuration, one a line, each
// naming its key and the value given.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return "config: " + e.Problems[0]
	}
	return fmt.Sprintf("config: %d problems:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// LoadConfig reads the configuration from args (without the program name)
// and environ (os.Environ form). It returns every problem at once, as a
// *ConfigError, or pflag.ErrHelp after printing the help for --help.
func LoadConfig(args, environ []string) (Config, error) {
	fs, err := parseFlags(args)
	if err != nil {
		return Config{}, err
	}
	var given []setting
	var probs problems

	// The file named by the flag or the environment is read first, then
	// the environment and flags override it.
	path := envValue(environ, "TACT_CONFIG")
	if f := fs.Lookup("config"); f.Changed {
		path = f.Value.String()
	}
	if path != "" {
		k := koanf.New(".")
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			probs.add("config", "file %s: %v", path, err)
		}
		for _, key := range k.Keys() {
			given = append(given, setting{key: key, raw: k.Get(key), from: fromFile, where: "in " + path})
		}
	}
	for i := range configKeys {
		k := &configKeys[i]
		if v, ok := envLookup(environ, k.env()); ok && k.name != "config" {
			given = append(given, setting{key: k.name, raw: v, from: fromEnv, where: "from " + k.env()})
		}
	}
	fs.Visit(func(f *pflag.Flag) {
		if f.Name != "config" {
			given = append(given, setting{key: strings.ReplaceAll(f.Name, "-", "_"), raw: f.Value.String(), from: fromFlag, where: "flag --" + f.Name})
		}
	})

	cfg := Defaults()
	cfg.ConfigFile = path
	bad := map[string]bool{}
	for _, g := range given {
		k := keyNamed(g.key)
		switch {
		case k == nil:
			probs.add(g.key, "unknown key %s", g.where)
		case k.from&g.from == 0:
			probs.add(g.key, "cannot be set %s: %s", g.where, k.sources())
		default:
			if err := k.set(&cfg, g.raw); err != nil {
				probs.add(g.key, "%v (%s)", err, g.where)
				bad[g.key] = true
				continue
			}
			delete(bad, g.key) // a later source set it right
		}
	}
	for _, p := range cfg.problems() {
		if !bad[p.key] {
			probs = append(probs, p)
		}
	}
	if len(probs) > 0 {
		return Config{}, probs.err()
	}
	return cfg, nil
}

// setting is one key's value as a source gave it.
type setting struct {
	key   string
	raw   any // a string from the environment and flags; YAML's types from a file
	from  source
	where string // "in tact.yaml", "from TACT_X", "flag --x"
}

func envValue(environ []string, name string) string {
	v, _ := envLookup(environ, name)
	return v
}

// envLookup returns the last value of name in environ, as the process's
// environment would.
func envLookup(environ []string, name string) (string, bool) {
	var v string
	var ok bool
	for _, kv := range environ {
		if rest, found := strings.CutPrefix(kv, name+"="); found {
			v, ok = rest, true
		}
	}
	return v, ok
}

// problem is one configuration problem, about one key.
type problem struct{ key, msg string }

type problems []problem

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, problem{key: key, msg: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	e := &ConfigError{}
	for _, q := range p {
		e.Problems = append(e.Problems, q.key+": "+q.msg)
	}
	return e
}

// Validate reports every problem with the configuration, one per key,
// each naming its key and value, as a *ConfigError.
func (c *Config) Validate() error { return c.problems().err() }

func (c *Config) problems() problems {
	var p problems
	if c.CallTimeout < 0 {
		p.add("call_timeout", "%v must not be negative", c.CallTimeout)
	}
	if c.MaxInFlight < 0 {
		p.add("max_in_flight", "%d must not be negative", c.MaxInFlight)
	}
	if c.RateLimit < 0 {
		p.add("rate_limit", "%v must not be negative", c.RateLimit)
	}
	if c.RateBurst < 1 {
		p.add("rate_burst", "%d must be at least 1", c.RateBurst)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		p.add("tls_cert_file", "give both tls_cert_file and tls_key_file, or neither")
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		p.add("tls_client_ca_file", "mTLS needs tls_cert_file and tls_key_file too")
	}
	for _, a := range []struct{ key, addr string }{{"grpc_addr", c.GRPCAddr}, {"http_addr", c.HTTPAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			p.add(a.key, "%q is not host:port: %v", a.addr, err)
		} else if c.AuthAPIKeysFile == "" && c.AuthJWKSFile == "" && !c.Insecure && !loopback(a.addr) {
			p.add(a.key, "%s takes connections from other machines and authentication is off: set auth_api_keys_file or auth_jwks_file, or start with --insecure", a.addr)
		}
	}
	if c.GRPCAddr == c.HTTPAddr && !strings.HasSuffix(c.GRPCAddr, ":0") {
		p.add("http_addr", "%s is grpc_addr too", c.HTTPAddr)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		p.add("data_dir", "empty")
	}
	if c.Demo != "auto" && c.Demo != "true" && c.Demo != "false" {
		p.add("demo", "%q is not auto, true or false", c.Demo)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.LogLevel)); err != nil {
		p.add("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		p.add("log_format", "%q is not json or text", c.LogFormat)
	}
	if c.DrainDelay < 0 || c.DrainDelay > 5*time.Minute {
		p.add("drain_delay", "%v must be in [0, 5m]", c.DrainDelay)
	}
	if c.MaxConnectionAge < 0 {
		p.add("max_connection_age", "%v must not be negative (0: never)", c.MaxConnectionAge)
	}
	if c.ShutdownTimeout <= 0 {
		p.add("shutdown_timeout", "%v must be positive", c.ShutdownTimeout)
	}
	if c.FeatureBudget <= 0 || c.FeatureBudget > 10*time.Second {
		p.add("feature_budget", "%v must be in (0, 10s]", c.FeatureBudget)
	}
	if c.DecisionLogBuffer < 1 {
		p.add("decision_log_buffer", "%d must be at least 1", c.DecisionLogBuffer)
	}
	switch c.FeatureStore {
	case "bolt":
	case "redis", "feast":
		if c.FeatureStore == "feast" {
			f := &c.Feast
			if f.Project == "" {
				p.add("feast_project", "empty: feature_store feast needs the Feast project")
			}
			if len(f.ViewList()) == 0 {
				p.add("feast_feature_views", "empty: feature_store feast needs the feature views to read")
			}
			if f.JoinKey == "" {
				p.add("feast_join_key", "empty: feature_store feast needs the entity's join key")
			}
			if f.KeyType != "string" && f.KeyType != "int64" {
				p.add("feast_key_type", "%q is not string or int64", f.KeyType)
			}
		}
		r := &c.Redis
		switch r.Mode {
		case "single":
			if _, _, err := net.SplitHostPort(r.Addr); err != nil && r.Addrs == "" {
				p.add("redis_addr", "%q is not host:port", r.Addr)
			}
		case "cluster", "sentinel":
			if r.Addrs == "" {
				p.add("redis_addrs", "empty: redis_mode %s needs the addresses of its nodes", r.Mode)
			}
			if r.Mode == "sentinel" && r.MasterName == "" {
				p.add("redis_master", "empty: redis_mode sentinel needs the master's name")
			}
			if r.Mode == "cluster" && r.DB != 0 {
				p.add("redis_db", "%d: Redis Cluster has database 0 only", r.DB)
			}
		default:
			p.add("redis_mode", "%q is not single, cluster or sentinel", r.Mode)
		}
		if r.Addrs != "" {
			for _, a := range r.AddrList() {
				if _, _, err := net.SplitHostPort(a); err != nil {
					p.add("redis_addrs", "%q is not host:port", a)
					break
				}
			}
		}
		if r.DB < 0 || r.DB > 15 {
			p.add("redis_db", "%d not in 0..15", r.DB)
		}
	default:
		p.add("feature_store", "%q is not bolt, redis or feast", c.FeatureStore)
	}
	switch c.Learning {
	case "off":
	case "adaptive":
	default:
		p.add("learning", "%q is not off or adaptive", c.Learning)
	}
	if c.LearningPrior <= 0 || c.LearningPrior >= 1 {
		p.add("learning_prior", "%v must be between 0 and 1", c.LearningPrior)
	}
	if c.DecisionDetail != "auto" && c.DecisionDetail != "full" && c.DecisionDetail != "off" {
		p.add("decision_detail", "%q is not auto, full or off", c.DecisionDetail)
	}
	if c.DecisionDetailShare <= 0 || c.DecisionDetailShare > 1 {
		p.add("decision_detail_share", "%v must be above 0 and at most 1", c.DecisionDetailShare)
	}
	switch c.Exploration {
	case "auto", "on", "off":
	default:
		p.add("exploration", "%q is not auto, on or off", c.Exploration)
	}
	if c.ExplorationRate < 0 || c.ExplorationRate > 1 {
		p.add("exploration_rate", "%v must be between 0 and 1", c.ExplorationRate)
	}
	if c.ExplorationRamp < 0 || c.ExplorationRamp > 1 || (c.Learning == "adaptive" && c.ExplorationRamp+c.ExplorationRate > 1) {
		p.add("exploration_ramp", "%v must be between 0 and 1, and with exploration_rate (%v) at most 1 when learning", c.ExplorationRamp, c.ExplorationRate)
	}
	if c.ExplorationMaturity < 1 {
		p.add("exploration_maturity", "%d must be at least 1", c.ExplorationMaturity)
	}
	if c.JournalSync != "always" && c.JournalSync != "everysec" {
		p.add("journal_sync", "%q is not always or everysec", c.JournalSync)
	}
	if c.Cache.MaxBytes < 1<<20 {
		p.add("cache_bytes", "%d must be at least 1 MiB (1048576)", c.Cache.MaxBytes)
	}
	if c.MemoryLimit > 0 && c.MemoryLimit < c.Cache.MaxBytes+memoryHeadroom {
		p.add("memory_limit", "%d is below cache_bytes + 64 MiB (%d): the collector would run all the time", c.MemoryLimit, c.Cache.MaxBytes+memoryHeadroom)
	}
	if c.GCPercent < -1 || (c.GCPercent == -1 && c.MemoryLimit < 0) {
		p.add("gc_percent", "%d must be -1 (off, with a memory_limit), 0 (automatic) or a percentage", c.GCPercent)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"cache_ttl", c.Cache.TTL}, {"cache_stale", c.Cache.StaleFor}, {"cache_negative_ttl", c.Cache.NegativeTTL}, {"store_timeout", c.Cache.StoreTimeout}} {
		if d.v <= 0 {
			p.add(d.key, "%v must be positive", d.v)
		}
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"decision_retention", c.Retention.Decisions}, {"outcome_window", c.Retention.OfferDecisions}, {"outcome_retention", c.Retention.Outcomes}} {
		if d.v < time.Minute {
			p.add(d.key, "%v must be at least 1m", d.v)
		}
	}
	if c.ModelPoll < 100*time.Millisecond {
		p.add("model_poll", "%v must be at least 100ms", c.ModelPoll)
	}
	if c.MaxBodyBytes < 1024 {
		p.add("max_body_bytes", "%d must be at least 1024", c.MaxBodyBytes)
	}
	return p
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

// errNoUnit is a duration given as a bare number.
var errNoUnit = errors.New("has no unit")
