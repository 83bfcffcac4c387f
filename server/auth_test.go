package server

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
	"github.com/tact-nba/tact/server/testpki"
)

// TestAuthorizationTableCoversEveryMethod: every RPC tactd serves has a
// role in the one table.
func TestAuthorizationTableCoversEveryMethod(t *testing.T) {
	ts := startServer(t, Deps{})
	n := 0
	for svc, info := range ts.grpc.GetServiceInfo() {
		for _, m := range info.Methods {
			n++
			if _, ok := methodRoles["/"+svc+"/"+m.Name]; !ok {
				t.Errorf("/%s/%s is not in methodRoles", svc, m.Name)
			}
		}
	}
	if n < 15 {
		t.Errorf("only %d methods served", n)
	}
}

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// TestAuthTokensAndRoles: API keys and JWTs, over gRPC and REST.
func TestAuthTokensAndRoles(t *testing.T) {
	dir := t.TempDir()
	keys := fmt.Sprintf("keys:\n  - {name: desk, sha256: %s, roles: [agent]}\n  - {name: phones, sha256: %s, roles: [feed]}\n  - {name: prometheus, sha256: %s, roles: [metrics]}\n",
		sha("agent-secret"), sha("feed-secret"), sha("scrape-secret"))
	keysFile := filepath.Join(dir, "keys.yaml")
	if err := os.WriteFile(keysFile, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(rsaKey.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(rsaKey.E)).Bytes()),
	}}})
	jwksFile := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwksFile, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	sign := func(key *rsa.PrivateKey, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = "k1"
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	exp := time.Now().Add(time.Hour).Unix()
	admin := sign(rsaKey, jwt.MapClaims{"sub": "ops", "iss": "https://idp.bank", "exp": exp, "roles": []string{"admin"}})
	expired := sign(rsaKey, jwt.MapClaims{"sub": "ops", "iss": "https://idp.bank", "exp": time.Now().Add(-time.Hour).Unix(), "roles": []string{"admin"}})
	forged := sign(otherKey, jwt.MapClaims{"sub": "ops", "iss": "https://idp.bank", "exp": exp, "roles": []string{"admin"}})
	wrongIss := sign(rsaKey, jwt.MapClaims{"sub": "ops", "iss": "https://evil", "exp": exp, "roles": []string{"admin"}})

	ts := startServer(t, Deps{}, func(c *Config, _ *io.Writer) {
		c.AuthAPIKeysFile, c.AuthJWKSFile, c.AuthJWTIssuer = keysFile, jwksFile, "https://idp.bank"
	})
	with := func(tok string) grpc.CallOption {
		return grpc.PerRPCCredsCallOption{Creds: bearer(tok)}
	}
	dec := tactv1.NewDecisionServiceClient(ts.conn)
	feat := tactv1.NewFeatureServiceClient(ts.conn)
	decide := &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_WEB}
	grpcCases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"no token", func() error { _, err := dec.Decide(t.Context(), decide); return err }, codes.Unauthenticated},
		{"unknown key", func() error { _, err := dec.Decide(t.Context(), decide, with("guess")); return err }, codes.Unauthenticated},
		{"feed key on Decide", func() error { _, err := dec.Decide(t.Context(), decide, with("feed-secret")); return err }, codes.PermissionDenied},
		{"agent key on Decide", func() error { _, err := dec.Decide(t.Context(), decide, with("agent-secret")); return err }, codes.OK},
		{"agent key on features", func() error {
			_, err := feat.GetClientFeatures(t.Context(), &tactv1.GetClientFeaturesRequest{ClientId: "C00003"}, with("agent-secret"))
			return err
		}, codes.PermissionDenied},
		{"agent key on an export stream", func() error {
			s, err := tactv1.NewExportServiceClient(ts.conn).ExportDecisions(t.Context(), &tactv1.ExportDecisionsRequest{Since: timestamppb.Now()}, with("agent-secret"))
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		}, codes.PermissionDenied},
		{"admin JWT on features", func() error {
			_, err := feat.GetClientFeatures(t.Context(), &tactv1.GetClientFeaturesRequest{ClientId: "C00003"}, with(admin))
			return err
		}, codes.OK},
		{"admin JWT on Decide (no agent role)", func() error { _, err := dec.Decide(t.Context(), decide, with(admin)); return err }, codes.PermissionDenied},
		{"expired JWT", func() error {
			_, err := feat.GetClientFeatures(t.Context(), &tactv1.GetClientFeaturesRequest{ClientId: "C00003"}, with(expired))
			return err
		}, codes.Unauthenticated},
		{"JWT from another key", func() error {
			_, err := feat.GetClientFeatures(t.Context(), &tactv1.GetClientFeaturesRequest{ClientId: "C00003"}, with(forged))
			return err
		}, codes.Unauthenticated},
		{"JWT from another issuer", func() error {
			_, err := feat.GetClientFeatures(t.Context(), &tactv1.GetClientFeaturesRequest{ClientId: "C00003"}, with(wrongIss))
			return err
		}, codes.Unauthenticated},
		{"health needs no token", func() error {
			_, err := healthpb.NewHealthClient(ts.conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
			return err
		}, codes.OK},
	}
	for _, c := range grpcCases {
		if got := status.Code(c.call()); got != c.want {
			t.Errorf("gRPC %s: %v, want %v", c.name, got, c.want)
		}
	}

	rest := func(method, path, body string, headers map[string]string) int {
		req, _ := http.NewRequestWithContext(t.Context(), method, ts.base+path, strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body := `{"client_id":"C00004","channel":"CHANNEL_WEB"}`
	for _, c := range []struct {
		name         string
		method, path string
		headers      map[string]string
		want         int
	}{
		{"no token", "POST", "/v1/decisions", nil, 401},
		{"feed key", "POST", "/v1/decisions", map[string]string{"Authorization": "Bearer feed-secret"}, 403},
		{"agent key", "POST", "/v1/decisions", map[string]string{"Authorization": "Bearer agent-secret"}, 200},
		{"agent key on features", "GET", "/v1/clients/C00003/features", map[string]string{"Authorization": "Bearer agent-secret"}, 403},
		{"admin JWT on features", "GET", "/v1/clients/C00003/features", map[string]string{"Authorization": "Bearer " + admin}, 200},
		{"spoofed Grpc-Metadata-Authorization", "POST", "/v1/decisions", map[string]string{"Grpc-Metadata-Authorization": "Bearer agent-secret"}, 401},
		{"spoofed metadata beside a feed key", "POST", "/v1/decisions", map[string]string{"Authorization": "Bearer feed-secret", "Grpc-Metadata-Authorization": "Bearer agent-secret"}, 403},
		{"health", "GET", "/healthz", nil, 200},
		{"metrics, no token", "GET", "/metrics", nil, 401},
		{"metrics, agent key", "GET", "/metrics", map[string]string{"Authorization": "Bearer agent-secret"}, 403},
		{"metrics, metrics key", "GET", "/metrics", map[string]string{"Authorization": "Bearer scrape-secret"}, 200},
	} {
		b := body
		if c.method == "GET" {
			b = ""
		}
		if got := rest(c.method, c.path, b, c.headers); got != c.want {
			t.Errorf("REST %s: %d, want %d", c.name, got, c.want)
		}
	}
	// An unauthenticated caller is refused before its body is read: it
	// learns nothing of validation or the size limit (was 400 and 413).
	big := `{"client_id":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, c := range []struct {
		name, body string
		headers    map[string]string
		want       int
	}{
		{"malformed JSON, no token", "{not json", nil, 401},
		{"70 KB body, no token", big, nil, 401},
		{"malformed JSON, unknown key", "{not json", map[string]string{"Authorization": "Bearer guess"}, 401},
		{"malformed JSON, agent key", "{not json", map[string]string{"Authorization": "Bearer agent-secret"}, 400},
		{"70 KB body, agent key", big, map[string]string{"Authorization": "Bearer agent-secret"}, 413},
	} {
		if got := rest("POST", "/v1/decisions", c.body, c.headers); got != c.want {
			t.Errorf("REST %s: %d, want %d", c.name, got, c.want)
		}
	}
	// gRPC metadata set by hand is the token itself: a spoofed header name
	// (grpc-metadata-authorization) is no token.
	ctx := metadata.AppendToOutgoingContext(t.Context(), "grpc-metadata-authorization", "Bearer agent-secret")
	if _, err := dec.Decide(ctx, decide); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC with grpc-metadata-authorization: %v, want Unauthenticated", err)
	}
}

// bearer is a per-call token over plain text (tests on loopback).
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// TestRefusesToListenBeyondLoopbackWithoutAuth.
func TestRefusesToListenBeyondLoopbackWithoutAuth(t *testing.T) {
	cfg := Defaults()
	cfg.Demo, cfg.DrainDelay = "true", 0 // the demo bank in a temporary data_dir; no balancer to wait for
	cfg.GRPCAddr = "0.0.0.0:9090"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "grpc_addr: 0.0.0.0:9090 takes connections from other machines and authentication is off") {
		t.Errorf("Validate: %v", err)
	}
	cfg.Insecure = true
	if err := cfg.Validate(); err != nil {
		t.Errorf("with --insecure: %v", err)
	}
	cfg.Insecure, cfg.AuthAPIKeysFile = false, "keys.yaml"
	if err := cfg.Validate(); err != nil {
		t.Errorf("with auth: %v", err)
	}
}

func clientTLS(t *testing.T, ca *testpki.CA, certPEM, keyPEM []byte) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.PEM)
	tc := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certPEM != nil {
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc
}

// TestMTLS: with tls_client_ca_file, a client certificate from that CA is
// let in over gRPC and HTTPS, one from another CA (or none) is refused; a
// renewed server certificate and a rotated client CA are used without a
// restart, and a broken CA file does not replace the one in use.
func TestMTLS(t *testing.T) {
	dir := t.TempDir()
	bank, other := testpki.NewCA(t, "bank CA"), testpki.NewCA(t, "other CA")
	write := func(name string, data []byte) string { return testpki.WriteFile(t, dir, name, data) }
	sc, sk := bank.Issue(t, "tactd", 10, true)
	certFile, keyFile, caFile := write("server.pem", sc), write("server.key", sk), write("ca.pem", bank.PEM)
	ts := startServerTLS(t, certFile, keyFile, caFile)
	good := clientTLS(t, bank, nil, nil)
	gc, gk := bank.Issue(t, "desk", 20, false)
	good.Certificates = clientTLS(t, bank, gc, gk).Certificates
	oc, ok := other.Issue(t, "intruder", 30, false)
	bad := clientTLS(t, bank, oc, ok)
	none := clientTLS(t, bank, nil, nil)

	grpcCall := func(tc *tls.Config) error {
		conn, err := grpc.NewClient(ts.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = tactv1.NewDecisionServiceClient(conn).Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_WEB})
		return err
	}
	httpsCall := func(tc *tls.Config) (*tls.ConnectionState, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := c.Get("https://" + ts.HTTPAddr() + "/healthz")
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp.TLS, nil
	}
	if err := grpcCall(good); err != nil {
		t.Errorf("gRPC with the bank's client certificate: %v", err)
	}
	if _, err := httpsCall(good); err != nil {
		t.Errorf("HTTPS with the bank's client certificate: %v", err)
	}
	for name, tc := range map[string]*tls.Config{"another CA's certificate": bad, "no certificate": none} {
		if err := grpcCall(tc); status.Code(err) != codes.Unavailable {
			t.Errorf("gRPC with %s: %v, want refused (Unavailable)", name, err)
		}
		if _, err := httpsCall(tc); err == nil {
			t.Errorf("HTTPS with %s: let in", name)
		}
	}
	// A plain-text client gets nowhere either.
	conn, err := grpc.NewClient(ts.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := tactv1.NewDecisionServiceClient(conn).Decide(t.Context(), &tactv1.DecideRequest{ClientId: "C00003", Channel: tactv1.Channel_CHANNEL_WEB}); err == nil {
		t.Error("plain text let in")
	}

	// Renewal: new files, and the next handshake after a second gets them.
	nc, nk := bank.Issue(t, "tactd", 11, true)
	write("server.key", nk)
	write("server.pem", nc)
	waitFor(t, func() bool {
		st, err := httpsCall(good)
		return err == nil && st.PeerCertificates[0].SerialNumber.Int64() == 11
	})

	// CA rotation: the client CA file now names the other CA; its
	// clients get in, the bank's old ones no longer do.
	write("ca.pem", other.PEM)
	waitFor(t, func() bool { return grpcCall(bad) == nil })
	if _, err := httpsCall(bad); err != nil {
		t.Errorf("HTTPS with the new CA's certificate: %v", err)
	}
	if err := grpcCall(good); status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC with the old CA's certificate after rotation: %v, want refused", err)
	}
	// A broken CA file keeps the CA in use.
	write("ca.pem", []byte("not a certificate"))
	time.Sleep(1100 * time.Millisecond)
	if err := grpcCall(bad); err != nil {
		t.Errorf("after a broken CA file: %v, want the CA in use kept", err)
	}
}

// startServerTLS is startServer with TLS and mTLS; it talks to the server
// through its addresses only.
func startServerTLS(t *testing.T, certFile, keyFile, caFile string) *Server {
	t.Helper()
	cfg := Defaults()
	cfg.Demo, cfg.DrainDelay = "true", 0 // the demo bank in a temporary data_dir; no balancer to wait for
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSClientCAFile = certFile, keyFile, caFile
	srv, err := New(t.Context(), cfg, discardLogger(), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	srv.WaitServing()
	return srv
}
