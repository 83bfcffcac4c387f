package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// The roles a caller may hold.
const (
	RoleAgent = "agent" // the agent desktop and web apps: decisions, outcomes, catalog, load reads
	RoleFeed  = "feed"  // the telephony platform's load feed
	RoleAdmin = "admin" // operators: features, experiments, exports
	// RoleMetrics may scrape /metrics (counts and latencies, never a
	// client's data); with authentication off anyone may.
	RoleMetrics = "metrics"
	// rolePublic marks a method anyone may call (health).
	rolePublic = "public"
)

// methodRoles is the one authorization table: the role each RPC needs.
// A method missing from it is refused (a test checks that every method
// served is here).
var methodRoles = map[string]string{
	tactv1.DecisionService_Decide_FullMethodName:                     RoleAgent,
	tactv1.DecisionService_RecordOutcome_FullMethodName:              RoleAgent,
	tactv1.CatalogService_ListProducts_FullMethodName:                RoleAgent,
	tactv1.LoadService_GetLoad_FullMethodName:                        RoleAgent,
	tactv1.LoadService_ReportLoad_FullMethodName:                     RoleFeed,
	tactv1.FeatureService_PutClientFeatures_FullMethodName:           RoleAdmin,
	tactv1.FeatureService_BatchPutClientFeatures_FullMethodName:      RoleAdmin,
	tactv1.FeatureService_GetClientFeatures_FullMethodName:           RoleAdmin,
	tactv1.ModelService_ListModels_FullMethodName:                    RoleAdmin,
	tactv1.ModelService_ExportLearning_FullMethodName:                RoleAdmin,
	tactv1.ExportService_ExportDecisions_FullMethodName:              RoleAdmin,
	tactv1.ExportService_ExportOutcomes_FullMethodName:               RoleAdmin,
	tactv1.ExportService_ExportExposures_FullMethodName:              RoleAdmin,
	tactv1.ExperimentService_ListExperiments_FullMethodName:          RoleAdmin,
	tactv1.ExperimentService_GetExperimentResults_FullMethodName:     RoleAdmin,
	"/grpc.health.v1.Health/Check":                                   rolePublic,
	"/grpc.health.v1.Health/Watch":                                   rolePublic,
	"/grpc.health.v1.Health/List":                                    rolePublic,
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      RoleAdmin,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": RoleAdmin,
	metricsPath: RoleMetrics,
}

// metricsPath is the Prometheus scrape, the one HTTP-only entry of
// methodRoles (health checks are open on HTTP as on gRPC).
const metricsPath = "GET /metrics"

// Principal is an authenticated caller.
type Principal struct {
	Name  string
	Roles []string
}

func (p *Principal) has(role string) bool { return slices.Contains(p.Roles, role) }

// auth checks bearer tokens: static API keys (stored as SHA-256 hashes)
// and JWTs verified against a JWKS file. Off when neither is configured.
type auth struct {
	keys        map[string]*Principal // by hex SHA-256 of the key
	jwks        keyfunc.Keyfunc
	issuer      string
	audience    string
	rolesClaim  string
	enabledFlag bool
	limits      *callerLimits // nil: none
}

type apiKeysFile struct {
	Keys []struct {
		Name   string   `yaml:"name"`
		SHA256 string   `yaml:"sha256"`
		Roles  []string `yaml:"roles"`
	} `yaml:"keys"`
}

func newAuth(cfg *Config) (*auth, error) {
	a := &auth{keys: map[string]*Principal{}, issuer: cfg.AuthJWTIssuer, audience: cfg.AuthJWTAudience, rolesClaim: cfg.AuthJWTRolesClaim}
	if cfg.AuthAPIKeysFile != "" {
		raw, err := os.ReadFile(cfg.AuthAPIKeysFile)
		if err != nil {
			return nil, fmt.Errorf("auth_api_keys_file: %w", err)
		}
		var f apiKeysFile
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("auth_api_keys_file: %w", err)
		}
		var errs []error
		for i, k := range f.Keys {
			at := fmt.Sprintf("auth_api_keys_file: keys[%d]", i)
			h := strings.ToLower(k.SHA256)
			if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
				errs = append(errs, fmt.Errorf("%s.sha256: want 64 hex digits (sha256sum of the key)", at))
			}
			if k.Name == "" {
				errs = append(errs, fmt.Errorf("%s.name: empty", at))
			}
			for _, r := range k.Roles {
				if r != RoleAgent && r != RoleFeed && r != RoleAdmin && r != RoleMetrics {
					errs = append(errs, fmt.Errorf("%s.roles: unknown role %q (agent, feed, admin or metrics)", at, r))
				}
			}
			if _, dup := a.keys[h]; dup {
				errs = append(errs, fmt.Errorf("%s.sha256: the same key twice", at))
			}
			a.keys[h] = &Principal{Name: k.Name, Roles: k.Roles}
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		a.enabledFlag = true
	}
	if cfg.AuthJWKSFile != "" {
		raw, err := os.ReadFile(cfg.AuthJWKSFile)
		if err != nil {
			return nil, fmt.Errorf("auth_jwks_file: %w", err)
		}
		if a.jwks, err = keyfunc.NewJWKSetJSON(raw); err != nil {
			return nil, fmt.Errorf("auth_jwks_file: %w", err)
		}
		a.enabledFlag = true
	}
	if a.rolesClaim == "" {
		a.rolesClaim = "roles"
	}
	return a, nil
}

func (a *auth) enabled() bool { return a.enabledFlag }

var errNoToken = errors.New("missing bearer token (Authorization: Bearer ...)")

// authenticate returns the caller of a bearer token.
func (a *auth) authenticate(header string) (*Principal, error) {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || tok == "" {
		if header == "" {
			return nil, errNoToken
		}
		return nil, errors.New("the Authorization header is not a bearer token")
	}
	sum := sha256.Sum256([]byte(tok))
	if p, ok := a.keys[hex.EncodeToString(sum[:])]; ok {
		return p, nil
	}
	if a.jwks != nil && strings.Count(tok, ".") == 2 {
		return a.verifyJWT(tok)
	}
	return nil, errors.New("unknown or invalid token")
}

func (a *auth) verifyJWT(tok string) (*Principal, error) {
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"}),
		jwt.WithExpirationRequired()}
	if a.issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.issuer))
	}
	if a.audience != "" {
		opts = append(opts, jwt.WithAudience(a.audience))
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, a.jwks.Keyfunc, opts...); err != nil {
		return nil, fmt.Errorf("invalid token: %w", err)
	}
	p := &Principal{}
	p.Name, _ = claims["sub"].(string)
	switch r := claims[a.rolesClaim].(type) {
	case []any:
		for _, x := range r {
			if s, ok := x.(string); ok {
				p.Roles = append(p.Roles, s)
			}
		}
	case string:
		p.Roles = strings.Fields(r)
	}
	return p, nil
}

// restCaller is what the HTTP layer established about a REST call; the
// in-process gRPC handlers trust it, and never the request's metadata
// (which a client could set with Grpc-Metadata-* headers).
type restCaller struct {
	p    *Principal
	err  error
	peer string // the client's address, for rate limits without auth
}

type restCallerKey struct{}

// authorize checks a call against the table and the caller's rate limit;
// it returns the error to answer with, or nil.
func (a *auth) authorize(ctx context.Context, method string) error {
	role, ok := methodRoles[method]
	if !ok {
		return status.Errorf(codes.PermissionDenied, "%s is not in the authorization table", method)
	}
	if role == rolePublic {
		return nil
	}
	var p *Principal
	var err error
	rc, rest := ctx.Value(restCallerKey{}).(*restCaller)
	caller := ""
	switch {
	case rest:
		p, err, caller = rc.p, rc.err, rc.peer
	default:
		if pr, ok := peer.FromContext(ctx); ok && a.limits != nil {
			caller = hostOf(pr.Addr.String())
		}
		if a.enabled() {
			md, _ := metadata.FromIncomingContext(ctx)
			h := ""
			if v := md.Get("authorization"); len(v) > 0 {
				h = v[0]
			}
			p, err = a.authenticate(h)
		}
	}
	if a.enabled() {
		if err != nil {
			return status.Error(codes.Unauthenticated, err.Error())
		}
		if !p.has(role) {
			return status.Errorf(codes.PermissionDenied, "%s needs the %s role; the caller %q has %v", method, role, p.Name, p.Roles)
		}
		caller = "principal:" + p.Name
	}
	if !a.limits.allow(caller) {
		return status.Errorf(codes.ResourceExhausted, "rate limit: over %v calls/s for this caller; retry later", float64(a.limits.rate))
	}
	return nil
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (a *auth) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.authorize(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (a *auth) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := a.authorize(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}

// httpMiddleware authenticates REST calls from their Authorization header
// and marks the request, so that the in-process handlers trust only this.
func (a *auth) httpMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := &restCaller{peer: hostOf(r.RemoteAddr)}
		if a.enabled() {
			rc.p, rc.err = a.authenticate(r.Header.Get("Authorization"))
			// Every REST route needs a role, so an unauthenticated caller
			// is refused here, before its body is read: it learns nothing
			// of the body's size limit or validation.
			if rc.err != nil {
				writeError(w, http.StatusUnauthorized, int(codes.Unauthenticated), rc.err.Error())
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), restCallerKey{}, rc)))
	})
}

// requireHTTP serves a plain HTTP endpoint (not one of the gateway's)
// only to callers the table lets call method: 401, 403 or 429 otherwise,
// in the gateway's error shape.
func (a *auth) requireHTTP(method string, next http.Handler) http.Handler {
	return a.httpMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.authorize(r.Context(), method); err != nil {
			st := status.Convert(err)
			writeError(w, runtime.HTTPStatusFromCode(st.Code()), int(st.Code()), st.Message())
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// loopback reports whether a listen address only takes local connections.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
