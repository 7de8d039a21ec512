package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
)

// tlsConfig builds the client TLS of an mqtts:// or wss:// upstream: TLS
// 1.2 or later, the CA file or the system's roots, the client certificate
// for mutual TLS, SNI and ALPN.
func (t TLSConfig) tlsConfig(u *url.URL) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		NextProtos:         t.ALPN,
		InsecureSkipVerify: t.InsecureSkipVerify,
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
