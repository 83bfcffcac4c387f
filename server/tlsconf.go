package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// tlsReloader serves the certificate in tls_cert_file/tls_key_file and
// the client CA in tls_client_ca_file, and loads them again when any of
// the files changes (checked at most once a second, at a handshake), so
// that a renewed certificate or a rotated CA is used without a restart.
// Files that fail to load are logged once and the configuration in use
// stays.
type tlsReloader struct {
	certFile, keyFile, caFile string
	logger                    *slog.Logger

	mu      sync.Mutex
	conf    *tls.Config
	stamp   []time.Time // the files' modification times of conf
	checked time.Time
}

func (r *tlsReloader) files() []string {
	if r.caFile == "" {
		return []string{r.certFile, r.keyFile}
	}
	return []string{r.certFile, r.keyFile, r.caFile}
}

func (r *tlsReloader) stamps() ([]time.Time, error) {
	var s []time.Time
	for _, f := range r.files() {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		s = append(s, fi.ModTime())
	}
	return s, nil
}

// load reads the files and builds the configuration of a handshake.
func (r *tlsReloader) load() error {
	st, err := r.stamps()
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("tls_cert_file/tls_key_file: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return fmt.Errorf("tls_client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls_client_ca_file: no PEM certificate in %s", r.caFile)
		}
		conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	r.conf, r.stamp, r.checked = conf, st, time.Now()
	return nil
}

// forClient is the listeners' GetConfigForClient.
func (r *tlsReloader) forClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) >= time.Second {
		r.checked = time.Now()
		if st, err := r.stamps(); err == nil && !slices.Equal(st, r.stamp) {
			if err := r.load(); err != nil {
				r.logger.Error("TLS files not reloaded; keeping the ones in use", "err", err)
				r.stamp = st // once per change
			} else {
				r.logger.Info("TLS files reloaded", "files", r.files())
			}
		}
	}
	return r.conf, nil
}

// serverTLS returns the TLS configuration of both listeners, nil when TLS
// is off. With tls_client_ca_file, clients must present a certificate that
// CA signed (mTLS).
func serverTLS(cfg *Config, logger *slog.Logger) (*tls.Config, error) {
	if cfg.TLSCertFile == "" {
		return nil, nil
	}
	r := &tlsReloader{certFile: cfg.TLSCertFile, keyFile: cfg.TLSKeyFile, caFile: cfg.TLSClientCAFile, logger: logger}
	if err := r.load(); err != nil {
		return nil, err
	}
	// The listeners need a certificate source of their own (gRPC and
	// net/http check for one); each handshake then takes the current
	// configuration from forClient.
	return &tls.Config{
		GetConfigForClient: r.forClient,
		GetCertificate: func(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
			c, _ := r.forClient(hi)
			return &c.Certificates[0], nil
		},
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}, nil
}
