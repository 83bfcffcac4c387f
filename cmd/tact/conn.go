package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// connFlags say how to reach tactd: its address, and the caller's
// credentials (a bearer token; TLS with the server's CA and, for mTLS, a
// client certificate).
type connFlags struct {
	addr                      string
	token                     string
	tls                       bool
	caFile, certFile, keyFile string
}

func (c *connFlags) register(fs *pflag.FlagSet, defAddr string) {
	fs.StringVar(&c.addr, "addr", defAddr, "tactd gRPC address (env TACT_ADDR)")
	// The token's default is not shown in --help: it is read from the
	// environment when the flag is not given.
	fs.StringVar(&c.token, "token", "", "bearer token for tactd with authentication on: an API key or a JWT (env TACT_TOKEN)")
	fs.BoolVar(&c.tls, "tls", false, "connect over TLS, checking tactd's certificate against the system's CAs or --ca-file")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM CA that signed tactd's certificate (implies --tls)")
	fs.StringVar(&c.certFile, "cert-file", "", "PEM client certificate for mTLS, with --key-file (implies --tls)")
	fs.StringVar(&c.keyFile, "key-file", "", "PEM key of --cert-file")
}

// dial connects to tactd (lazily, as grpc-go does: a failure shows at the
// first call, worded by callError).
func (c *connFlags) dial() (*grpc.ClientConn, error) {
	if (c.certFile == "") != (c.keyFile == "") {
		return nil, &usageError{"--cert-file and --key-file go together"}
	}
	if c.token == "" {
		c.token = os.Getenv("TACT_TOKEN")
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if c.tls || c.caFile != "" || c.certFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.caFile != "" {
			pem, err := os.ReadFile(c.caFile)
			if err != nil {
				return nil, fmt.Errorf("--ca-file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--ca-file: no PEM certificate in %s", c.caFile)
			}
		}
		if c.certFile != "" {
			cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
			if err != nil {
				return nil, fmt.Errorf("--cert-file, --key-file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts[0] = grpc.WithTransportCredentials(credentials.NewTLS(tc))
	}
	if c.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(c.token)))
	}
	conn, err := grpc.NewClient(c.addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", c.addr, err)
	}
	return conn, nil
}

// bearer sends a token as "authorization: Bearer ..." on every call. It
// is sent over plain text too: tactd may sit behind a proxy that ends TLS.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// callError words a failed call as "what: Code: message", with a hint
// when the cause is likely the command line: no tactd at the address,
// TLS on one side only, or a missing or refused token.
func (c *connFlags) callError(what string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	msg := fmt.Sprintf("%s: %s: %s", what, st.Code(), st.Message())
	m := st.Message()
	// A TLS handshake refused shows as one of these, depending on which
	// side gave up first.
	broken := strings.Contains(m, "tls:") || strings.Contains(m, "x509") || strings.Contains(m, "EOF") ||
		strings.Contains(m, "server preface") || strings.Contains(m, "connection reset") || strings.Contains(m, "broken pipe")
	switch {
	case st.Code() == codes.Unavailable && strings.Contains(m, "connection refused"):
		msg += fmt.Sprintf(" (is tactd running on %s? set --addr or TACT_ADDR)", c.addr)
	case st.Code() == codes.Unavailable && broken && c.usesTLS():
		msg += " (check --ca-file, --cert-file and --key-file against tactd's tls_* settings)"
	case st.Code() == codes.Unavailable && broken:
		msg += " (does tactd use TLS? try --tls, with --ca-file)"
	case st.Code() == codes.Unauthenticated && c.token == "":
		msg += " (set --token or TACT_TOKEN)"
	case st.Code() == codes.Unauthenticated:
		msg += " (the token given was refused)"
	}
	return fmt.Errorf("%s", msg)
}

func (c *connFlags) usesTLS() bool { return c.tls || c.caFile != "" || c.certFile != "" }
