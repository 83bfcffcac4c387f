package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	promexp "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tact-nba/tact/features"
)

// telemetry holds tactd's traces and metrics: an OpenTelemetry tracer
// provider whose exporter the standard OTEL_* variables choose (none
// unless OTEL_TRACES_EXPORTER says otlp), and a meter provider read by the
// Prometheus exporter at /metrics.
type telemetry struct {
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	registry *prometheus.Registry
	tracer   trace.Tracer
	meter    metric.Meter
	hashKey  []byte

	decideDuration metric.Float64Histogram
	// Counted on every call and read when /metrics is (an OTel counter's
	// Add cost about a microsecond, with its attribute lookup):
	// decisions by action and main reason, calls in flight by method.
	decisions     counts[[2]string]
	inFlight      counts[string]
	exposures     metric.Int64Counter
	rpcDuration   metric.Float64Histogram
	storeDuration metric.Float64Histogram
	storeErrors   metric.Int64Counter
	shed          metric.Int64Counter

	// sets caches the options of each label combination (a few hundred
	// at most), so that recording a measurement allocates nothing.
	setsMu sync.RWMutex
	sets   map[[4]string]*labels
}

// labels are the ready-made options of one label combination.
type labels struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// attrs returns the options of two attributes, made once per combination.
func (t *telemetry) attrs(k1, v1, k2, v2 string) *labels {
	key := [4]string{k1, v1, k2, v2}
	t.setsMu.RLock()
	l, ok := t.sets[key]
	t.setsMu.RUnlock()
	if ok {
		return l
	}
	kvs := []attribute.KeyValue{attribute.String(k1, v1)}
	if k2 != "" {
		kvs = append(kvs, attribute.String(k2, v2))
	}
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	l = &labels{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}}
	t.setsMu.Lock()
	if t.sets == nil {
		t.sets = map[[4]string]*labels{}
	}
	t.sets[key] = l
	t.setsMu.Unlock()
	return l
}

// counts holds a counter per key (a label combination, a few hundred at
// most), read by an observable instrument's callback.
type counts[K comparable] struct {
	mu sync.RWMutex
	m  map[K]*atomic.Int64
}

// of returns the counter of key, made on first use.
func (c *counts[K]) of(key K) *atomic.Int64 {
	c.mu.RLock()
	n, ok := c.m[key]
	c.mu.RUnlock()
	if ok {
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok = c.m[key]; !ok {
		if c.m == nil {
			c.m = map[K]*atomic.Int64{}
		}
		n = new(atomic.Int64)
		c.m[key] = n
	}
	return n
}

// observe reports every counter to o, with the attributes of its key.
func (c *counts[K]) observe(o metric.Observer, inst metric.Int64Observable, attrs func(K) metric.ObserveOption) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for k, n := range c.m {
		o.ObserveInt64(inst, n.Load(), attrs(k))
	}
}

// attr is attrs with one attribute.
func (t *telemetry) attr(k, v string) *labels { return t.attrs(k, v, "", "") }

// noneExporter is the span exporter when OTEL_TRACES_EXPORTER is unset:
// spans get trace ids (for the logs) but are not sent anywhere.
type noneExporter struct{}

func (noneExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (noneExporter) Shutdown(context.Context) error                             { return nil }

func newTelemetry(ctx context.Context, spans sdktrace.SpanExporter, hashKey string, logger *slog.Logger) (*telemetry, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName("tactd")))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	if spans == nil {
		spans, err = autoexport.NewSpanExporter(ctx, autoexport.WithFallbackSpanExporter(
			func(context.Context) (sdktrace.SpanExporter, error) { return noneExporter{}, nil }))
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER: %w", err)
		}
	}
	t := &telemetry{registry: prometheus.NewRegistry()}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if _, none := spans.(noneExporter); !none {
		opts = append(opts, sdktrace.WithSpanProcessor(redactor{}), sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(spans)))
	} else {
		// Nothing exported: spans carry ids for the logs, nothing else.
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	t.tp = sdktrace.NewTracerProvider(opts...)
	exp, err := promexp.New(promexp.WithRegisterer(t.registry))
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus: %w", err)
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	t.tracer = t.tp.Tracer("github.com/tact-nba/tact")
	t.meter = t.mp.Meter("github.com/tact-nba/tact")

	if hashKey == "" {
		k := make([]byte, 32)
		_, _ = rand.Read(k)
		hashKey = hex.EncodeToString(k)
		logger.Warn("log_hash_key is not set: client ids in logs and traces are hashed with a random key, so hashes do not match across restarts or replicas")
	}
	t.hashKey = []byte(hashKey)

	m := t.meter
	t.decideDuration, err = m.Float64Histogram("tact.decide.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to make a decision in the engine, by channel and action."),
		// Fine below 2 ms, where a decision should be, so that a p99
		// read from the buckets (tactload does) is close to the truth.
		metric.WithExplicitBucketBoundaries(0.000025, 0.00005, 0.000075, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005,
			0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
	errs := []error{err}
	decisions, err1 := m.Int64ObservableCounter("tact.decisions", metric.WithDescription("Decisions made, by action and main reason code."))
	inFlight, err2 := m.Int64ObservableUpDownCounter("tact.rpc.in_flight", metric.WithDescription("Calls being served, by method."))
	errs = append(errs, err1, err2)
	if err1 == nil && err2 == nil {
		_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			t.decisions.observe(o, decisions, func(k [2]string) metric.ObserveOption {
				return metric.WithAttributes(attribute.String("action", k[0]), attribute.String("reason", k[1]))
			})
			t.inFlight.observe(o, inFlight, func(method string) metric.ObserveOption {
				return metric.WithAttributes(attribute.String("method", method))
			})
			return nil
		}, decisions, inFlight)
		errs = append(errs, err)
	}
	t.exposures, err = m.Int64Counter("tact.experiment.exposures", metric.WithDescription("Clients exposed to an experiment variation, per decision."))
	errs = append(errs, err)
	// Every call's time, by method and code, recorded where the access
	// log times it. otelgrpc's own rpc.server.call.duration is not kept:
	// it builds its attribute set on every call (a few per cent of a
	// decision's CPU, see BENCHMARKS.md) for the same figure.
	t.rpcDuration, err = m.Float64Histogram("tact.rpc.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to serve a call (gRPC, and REST through the gateway), by method and code."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	errs = append(errs, err)
	t.storeDuration, err = m.Float64Histogram("tact.store.duration", metric.WithUnit("s"),
		metric.WithDescription("Feature store reads (cache misses), by store."),
		metric.WithExplicitBucketBoundaries(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
	errs = append(errs, err)
	t.storeErrors, err = m.Int64Counter("tact.store.errors", metric.WithDescription("Feature store reads that failed (not found excepted), by store."))
	errs = append(errs, err)
	t.shed, err = m.Int64Counter("tact.requests.shed", metric.WithDescription("Calls refused at once: too many in flight, or over a caller's rate limit."))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return t, nil
}

// observe registers the gauges and counters read from the server's parts
// when /metrics is scraped.
func (t *telemetry) observe(s *Server) error {
	m := t.meter
	cacheHits, err1 := m.Int64ObservableCounter("tact.cache.hits", metric.WithDescription("Feature cache hits (negative hits included)."))
	cacheMisses, err2 := m.Int64ObservableCounter("tact.cache.misses", metric.WithDescription("Feature cache misses."))
	stale, err3 := m.Int64ObservableCounter("tact.cache.stale_serves", metric.WithDescription("Records served stale because the store failed or was slow."))
	depth, err4 := m.Int64ObservableGauge("tact.decision_log.queue_depth", metric.WithDescription("Decisions waiting to be written to the log."))
	dropped, err5 := m.Int64ObservableCounter("tact.decision_log.dropped", metric.WithDescription("Decisions answered but not logged: the log's buffer was full."))
	failed, err6 := m.Int64ObservableCounter("tact.decision_log.failed", metric.WithDescription("Decisions whose log write failed."))
	modelInfo, err7 := m.Int64ObservableGauge("tact.model.info", metric.WithDescription("The model bundle version in use (value 1)."))
	configInfo, err8 := m.Int64ObservableGauge("tact.config.info", metric.WithDescription("The catalog/policy and experiments versions in use (value 1)."))
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		cs := s.cache.Stats()
		o.ObserveInt64(cacheHits, int64(cs.Hits+cs.NegativeHits))
		o.ObserveInt64(cacheMisses, int64(cs.Misses))
		o.ObserveInt64(stale, int64(cs.StaleServes))
		o.ObserveInt64(depth, int64(s.dlog.Pending()))
		o.ObserveInt64(dropped, int64(s.dlog.Dropped()))
		o.ObserveInt64(failed, int64(s.dlog.Failed()))
		o.ObserveInt64(modelInfo, 1, metric.WithAttributes(attribute.String("version", s.engine.Bundle().Version())))
		exps := "none"
		if e := s.engine.Experiments(); e != nil {
			exps = e.Version()
		}
		o.ObserveInt64(configInfo, 1, metric.WithAttributes(attribute.String("policy", s.policyVersion()), attribute.String("experiments", exps)))
		return nil
	}, cacheHits, cacheMisses, stale, depth, dropped, failed, modelInfo, configInfo)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	if s.learner != nil {
		return t.observeLearning(s)
	}
	return nil
}

// observeLearning publishes each adaptive model's health: the outcomes
// learned, and the ROC AUC over its last outcomes, each scored before it
// was learned.
func (t *telemetry) observeLearning(s *Server) error {
	m := t.meter
	outcomes, err1 := m.Float64ObservableCounter("tact.learning.outcomes", metric.WithDescription("Outcomes the adaptive models learned, by product and answer."))
	auc, err2 := m.Float64ObservableGauge("tact.learning.recent_auc", metric.WithDescription("ROC AUC of each adaptive model over its last 1,000 outcomes, each scored before it was learned."))
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for product, h := range s.learner.Health() {
			o.ObserveFloat64(outcomes, h.Accepted, metric.WithAttributes(attribute.String("product", product), attribute.String("answer", "accepted")))
			o.ObserveFloat64(outcomes, h.Refused, metric.WithAttributes(attribute.String("product", product), attribute.String("answer", "declined")))
			if h.AUC > 0 {
				o.ObserveFloat64(auc, h.AUC, metric.WithAttributes(attribute.String("product", product)))
			}
		}
		return nil
	}, outcomes, auc)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}

// redactor removes client ids from the URL paths otelhttp records.
type redactor struct{}

func (redactor) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case "url.path", "http.target", "url.full":
			s.SetAttributes(attribute.String(string(kv.Key), redactPath(kv.Value.AsString())))
		}
	}
}
func (redactor) OnEnd(sdktrace.ReadOnlySpan)      {}
func (redactor) Shutdown(context.Context) error   { return nil }
func (redactor) ForceFlush(context.Context) error { return nil }

// metricsHandler serves /metrics.
func (t *telemetry) metricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// clientHash is the keyed hash under which a client appears in logs and
// traces: HMAC-SHA256 with log_hash_key, 16 hex digits.
func (t *telemetry) clientHash(clientID string) string {
	h := hmac.New(sha256.New, t.hashKey)
	h.Write([]byte(clientID))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// shutdown flushes the spans and stops the providers.
func (t *telemetry) shutdown(ctx context.Context) error {
	return errors.Join(t.tp.Shutdown(ctx), t.mp.Shutdown(ctx))
}

// timedSource records the store reads the cache makes.
type timedSource struct {
	features.Source
	t     *telemetry
	store attribute.KeyValue
}

func (s *timedSource) Get(ctx context.Context, id string) (features.Record, error) {
	start := time.Now()
	rec, err := s.Source.Get(ctx, id)
	l := s.t.attr(string(s.store.Key), s.store.Value.AsString())
	s.t.storeDuration.Record(ctx, time.Since(start).Seconds(), l.rec...)
	if err != nil && !errors.Is(err, features.ErrNotFound) {
		s.t.storeErrors.Add(ctx, 1, l.add...)
	}
	return rec, err
}
