package features

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the feature store for many tactd replicas: one Redis string per
// client holding the record in the binary encoding of codec.go.
//
// Key layout (for the batch pipeline that writes it):
//
//	<prefix>{<client_id>}:features   the record, codec.go's encoding
//
// The client id in braces is a Redis Cluster hash tag, so that every key of
// one client (features now, contact counters later) lives in one slot. The
// prefix defaults to "tact:". A key that is absent is an unknown client.
//
// It is safe for concurrent use; go-redis keeps a connection pool.
type Redis struct {
	client redis.UniversalClient
	prefix string
	// ret trims the shared logs (defaults filled).
	ret    Retention
	where  string // "redis host:port", for errors
	logger *slog.Logger
	// cluster: a Redis Cluster, where one transaction spans one slot only.
	cluster bool
	// prefetch: a features read also reads the client's contacts (see
	// redis_prefetch.go); stash keeps them.
	prefetch atomic.Bool
	stash    prefetchStash
}

var _ Source = (*Redis)(nil)

// RedisConfig says how to reach Redis. The koanf, default and help tags
// declare tactd's configuration keys (see server.Config); fields tagged
// koanf:"-" are set only by code.
type RedisConfig struct {
	// Mode is single (one Redis or Valkey, Addr), cluster (Redis Cluster:
	// Addrs are seed nodes) or sentinel (Addrs are sentinels, MasterName
	// the master they watch).
	Mode string `koanf:"redis_mode" default:"single" help:"single, cluster or sentinel"`
	Addr string `koanf:"redis_addr" default:"localhost:6379" help:"Redis address (feature_store redis, redis_mode single)"`
	// Addrs is a comma-separated list (a YAML list in a file).
	Addrs      string `koanf:"redis_addrs" help:"Redis Cluster seed nodes or sentinels, comma-separated (redis_mode cluster or sentinel)"`
	MasterName string `koanf:"redis_master" help:"the master's name the sentinels watch (redis_mode sentinel)"`
	// Password is read only from the environment (TACT_REDIS_PASSWORD),
	// never from a file or a flag.
	Password string `koanf:"redis_password" from:"env" help:"Redis password"`
	DB       int    `koanf:"redis_db" default:"0" help:"Redis database number"`
	TLS      bool   `koanf:"redis_tls" default:"false" help:"connect to Redis over TLS"`
	// TLSCAFile holds the CAs Redis's certificate is checked against (a
	// bank's own); empty: the system's. Setting it implies TLS.
	TLSCAFile string `koanf:"redis_tls_ca_file" help:"PEM file of the CAs that sign Redis's certificate (implies redis_tls); empty: the system's CAs"`
	Prefix    string `koanf:"redis_prefix" default:"tact:" help:"prefix of the Redis keys"`
	// Retention is how long the shared logs keep what they keep (set by
	// code from tactd's own retention keys).
	Retention Retention `koanf:"-"`
	// PoolSize is the connection pool size (default 10 per CPU).
	PoolSize int `koanf:"-"`
	// DialTimeout, ReadTimeout and WriteTimeout bound each operation
	// (default 1s, 2s, 2s): a ceiling for calls without a deadline of
	// their own. The caller's context is the real bound: a decision's
	// reads and reservation stop at feature_budget, an outcome or a load
	// report at the call's deadline (call_timeout). A lower ceiling
	// refused outcomes that a Redis with appendfsync always acknowledged
	// late, while its disk was busy.
	DialTimeout, ReadTimeout, WriteTimeout time.Duration `koanf:"-"`
}

// OpenRedis connects and pings Redis. With a logger, go-redis's own log
// lines go to it (at debug level; see redisLogger), and one warning is
// logged when Redis stops answering and one when it is back (see
// reachability); nil logs nothing.
func OpenRedis(ctx context.Context, cfg RedisConfig, logger *slog.Logger) (*Redis, error) {
	addrs := cfg.AddrList()
	if len(addrs) == 0 {
		return nil, errors.New("features: redis: no address")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "tact:"
	}
	opt := &redis.UniversalOptions{
		Addrs:      addrs,
		MasterName: cfg.MasterName,
		Password:   cfg.Password,
		DB:         cfg.DB,
		PoolSize:   cfg.PoolSize,
		// Deadlines come from the caller's context as well.
		DialTimeout:           orDefault(cfg.DialTimeout, time.Second),
		ReadTimeout:           orDefault(cfg.ReadTimeout, 2*time.Second),
		WriteTimeout:          orDefault(cfg.WriteTimeout, 2*time.Second),
		ContextTimeoutEnabled: true,
	}
	if cfg.TLS || cfg.TLSCAFile != "" {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLSCAFile != "" {
			pem, err := os.ReadFile(cfg.TLSCAFile)
			if err != nil {
				return nil, fmt.Errorf("features: redis_tls_ca_file: %w", err)
			}
			opt.TLSConfig.RootCAs = x509.NewCertPool()
			if !opt.TLSConfig.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("features: redis_tls_ca_file: %s holds no PEM certificate", cfg.TLSCAFile)
			}
		}
	}
	var c redis.UniversalClient
	reload := func() {}
	switch cfg.Mode {
	case "", "single":
		c = redis.NewClient(opt.Simple())
	case "cluster":
		copt := opt.Cluster()
		// The slot map is read again every 10 s, and at once when a call
		// fails (see reachability): after a master's failover the
		// client must find the promoted replica in seconds, not minutes.
		copt.ClusterStateReloadInterval = 10 * time.Second
		cc := redis.NewClusterClient(copt)
		reload = func() { cc.ReloadState(context.Background()) }
		c = cc
	case "sentinel":
		if cfg.MasterName == "" {
			return nil, errors.New("features: redis: sentinel mode needs the master's name")
		}
		c = redis.NewFailoverClient(opt.Failover())
	default:
		return nil, fmt.Errorf("features: redis: mode %q is not single, cluster or sentinel", cfg.Mode)
	}
	where := strings.Join(addrs, ",")
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	} else {
		redis.SetLogger(redisLogger{logger})
	}
	c.AddHook(&reachability{logger: logger, where: where, downAfter: time.Second, now: time.Now, onFailure: reload})
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close() // the ping error is the one to report
		if opt.TLSConfig == nil && errors.Is(err, io.EOF) {
			// A TLS port closes a connection that does not start TLS.
			return nil, fmt.Errorf("features: redis %s: %w (if Redis serves TLS there, set redis_tls)", where, err)
		}
		return nil, fmt.Errorf("features: redis %s: %w", where, err)
	}
	return &Redis{client: c, prefix: cfg.Prefix, where: "redis " + where, logger: logger,
		cluster: cfg.Mode == "cluster", ret: cfg.Retention.withDefaults()}, nil
}

// AddrList returns the addresses to reach Redis by: Addrs when set
// (comma-separated), else Addr.
func (cfg *RedisConfig) AddrList() []string {
	if strings.TrimSpace(cfg.Addrs) == "" {
		if cfg.Addr == "" {
			return nil
		}
		return []string{cfg.Addr}
	}
	var out []string
	for _, a := range strings.Split(cfg.Addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// unavailable wraps an error of the Redis client (the server out of reach,
// a timeout, an error reply) as a *StorageError.
func (r *Redis) unavailable(op string, err error) error {
	return &StorageError{Op: op, Where: r.where, Err: err}
}

// Key returns the Redis key of a client's features.
func (r *Redis) Key(clientID string) string { return r.prefix + "{" + clientID + "}:features" }

// Close closes the connection pool.
func (r *Redis) Close() error { return r.client.Close() }

// Get returns one client's features, or ErrNotFound.
func (r *Redis) Get(ctx context.Context, clientID string) (Record, error) {
	if r.prefetch.Load() {
		return r.getWithContacts(ctx, clientID)
	}
	raw, err := r.client.Get(ctx, r.Key(clientID)).Bytes()
	return r.decodeGet(clientID, raw, err)
}

// getWithContacts reads the client's features and contacts in one
// pipelined round trip, and keeps the contacts for the Contacts call that
// follows.
func (r *Redis) getWithContacts(ctx context.Context, clientID string) (Record, error) {
	start := time.Now()
	pipe := r.client.Pipeline()
	get := pipe.Get(ctx, r.Key(clientID))
	zs := pipe.ZRangeByScoreWithScores(ctx, r.ContactsKey(clientID), &redis.ZRangeBy{Min: "-inf", Max: "+inf"})
	_, _ = pipe.Exec(ctx) // each command's own error is read below
	if zz, err := zs.Result(); err == nil {
		if cs, err := parseContacts(clientID, zz); err == nil {
			r.stash.put(clientID, &prefetched{at: start, contacts: cs})
		}
	}
	raw, err := get.Bytes()
	return r.decodeGet(clientID, raw, err)
}

// decodeGet turns a features read's reply into a record.
func (r *Redis) decodeGet(clientID string, raw []byte, err error) (Record, error) {
	if errors.Is(err, redis.Nil) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, r.unavailable("get features", err)
	}
	rec := Record{ClientID: clientID}
	if err := decodeRecord(raw, &rec, nil); err != nil {
		return Record{}, err
	}
	return rec, nil
}

// GetMany returns the features of several clients in one pipelined round
// trip, in the order asked; an unknown client's record has nil Values.
func (r *Redis) GetMany(ctx context.Context, clientIDs []string) ([]Record, error) {
	pipe := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(clientIDs))
	for i, id := range clientIDs {
		cmds[i] = pipe.Get(ctx, r.Key(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, r.unavailable("get features", err)
	}
	out := make([]Record, len(clientIDs))
	for i, cmd := range cmds {
		out[i].ClientID = clientIDs[i]
		raw, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, r.unavailable("get features", err)
		}
		if err := decodeRecord(raw, &out[i], nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PutBatch upserts the records in one pipelined MULTI/EXEC transaction, so
// that a batch is stored whole or not at all. On a Redis Cluster, where a
// transaction cannot span clients' slots, the batch is one pipeline: each
// record is stored whole, and a failed batch may have stored some (writing
// it again is harmless).
func (r *Redis) PutBatch(ctx context.Context, recs []Record) error {
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	run := r.client.TxPipelined
	if r.cluster {
		run = r.client.Pipelined
	}
	_, err := run(ctx, func(p redis.Pipeliner) error {
		for i := range recs {
			p.Set(ctx, r.Key(recs[i].ClientID), encodeRecord(&recs[i], nil), 0)
		}
		return nil
	})
	if err != nil {
		return r.unavailable("put features", err)
	}
	return nil
}
