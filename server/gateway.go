package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tact-nba/tact/features"
	"github.com/tact-nba/tact/proto/openapi"
)

// newGateway builds the HTTP handler: the REST API (grpc-gateway, calling
// the services in-process through the interceptor chain), /healthz,
// /readyz, /openapi.json and what pages registers (the console).
func newGateway(ctx context.Context, table []serviceEntry, ic grpc.UnaryServerInterceptor, schema *features.Schema, maxBody int64, ready *atomic.Bool, tel *telemetry, authn *auth, admit *admission, pages func(*http.ServeMux)) (http.Handler, error) {
	gw := runtime.NewServeMux(
		// No request header becomes gRPC metadata: identity comes from the
		// Authorization header through the auth middleware only, never
		// from Grpc-Metadata-* headers.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, gatewayMarshaler{schema: schema, JSONPb: &runtime.JSONPb{
			MarshalOptions: protojson.MarshalOptions{
				UseProtoNames:     true,
				EmitDefaultValues: true,
			},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
	)
	if err := registerGateway(ctx, gw, table, ic); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.JSON)
	})
	mux.Handle(metricsPath, authn.requireHTTP(metricsPath, tel.metricsHandler()))
	if pages != nil {
		pages(mux) // the console, with its own login
	}
	mux.Handle("/", admit.httpMiddleware(authn.httpMiddleware(limitBody(gw, maxBody))))
	// Each API call gets a span (its trace id reaches the access log);
	// health checks and scrapes do not.
	return otelhttp.NewHandler(closeWhenDraining(mux, ready), "tactd.http",
		otelhttp.WithTracerProvider(tel.tp), otelhttp.WithMeterProvider(tel.mp),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + redactPath(r.URL.Path) }),
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/healthz", "/readyz", "/metrics":
				return false
			}
			return true
		})), nil
}

// closeWhenDraining answers with "Connection: close" once the server is
// not ready (draining after SIGTERM): each client's next call opens a new
// connection, which the load balancer, told by /readyz, sends to another
// replica. Connections are not closed under a client's feet until the
// drain delay has passed and the server shuts down.
func closeWhenDraining(next http.Handler, ready *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody enforces the REST body rules before the gateway decodes: a body
// over max bytes is 413; an empty body or malformed JSON on POST/PUT/PATCH
// is 400 saying so (the decoder's own message would be "unexpected EOF"). Errors use
// the gateway's JSON error shape ({"code", "message", "details"}).
func limitBody(next http.Handler, max int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
		default:
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, 8, fmt.Sprintf("request body: %d bytes is over the limit of %d bytes", r.ContentLength, max))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, 3, "request body: "+err.Error())
			return
		}
		if int64(len(body)) > max {
			writeError(w, http.StatusRequestEntityTooLarge, 8, fmt.Sprintf("request body: over the limit of %d bytes", max))
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			writeError(w, http.StatusBadRequest, 3, "request body: empty; send a JSON object")
			return
		}
		if !json.Valid(body) {
			var v json.RawMessage
			writeError(w, http.StatusBadRequest, 3, "request body: malformed JSON: "+json.Unmarshal(body, &v).Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, httpCode, grpcCode int, msg string) {
	writeJSON(w, httpCode, map[string]any{"code": grpcCode, "message": msg, "details": []any{}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone; nothing to do
}

// redactPath replaces a client id in a REST path with its placeholder:
// paths reach span names and attributes, client ids must not.
func redactPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/v1/clients/")
	if !ok {
		return p
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return "/v1/clients/{client_id}" + rest[i:]
	}
	return "/v1/clients/{client_id}"
}
