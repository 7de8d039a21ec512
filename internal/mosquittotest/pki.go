package mosquittotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a test certificate authority with a server certificate for
// 127.0.0.1 and localhost, a client certificate it signed, and a second,
// unrelated CA with its own client certificate (for refusal tests). All are
// PEM files in a t.TempDir; keys are ECDSA P-256.
type PKI struct {
	CAFile                string
	ServerCert, ServerKey string // SANs: IP 127.0.0.1, DNS localhost
	ClientCert, ClientKey string // signed by CAFile
	OtherCAFile           string // a CA that signed nothing the broker trusts
	OtherCert, OtherKey   string // client certificate signed by OtherCAFile
}

// NewPKI generates a PKI for the test.
func NewPKI(t testing.TB) PKI {
	t.Helper()
	dir := t.TempDir()
	serial := int64(1)
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// issue makes a key and a certificate from tmpl, signed by parent (nil:
	// self-signed), and writes both.
	issue := func(name string, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore = time.Now().Add(-time.Hour)
		tmpl.NotAfter = time.Now().Add(24 * time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return cert, key, write(name+".crt", "CERTIFICATE", der), write(name+".key", "PRIVATE KEY", keyDER)
	}
	caTmpl := func(cn string) *x509.Certificate {
		return &x509.Certificate{
			Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
	}
	leaf := func(cn string, usage x509.ExtKeyUsage) *x509.Certificate {
		return &x509.Certificate{
			Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
	}

	var p PKI
	ca, caKey, caFile, _ := issue("ca", caTmpl("sngate test CA"), nil, nil)
	p.CAFile = caFile
	srv := leaf("127.0.0.1", x509.ExtKeyUsageServerAuth)
	srv.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	srv.DNSNames = []string{"localhost"}
	_, _, p.ServerCert, p.ServerKey = issue("server", srv, ca, caKey)
	_, _, p.ClientCert, p.ClientKey = issue("client", leaf("tls-client", x509.ExtKeyUsageClientAuth), ca, caKey)
	other, otherKey, otherCAFile, _ := issue("other-ca", caTmpl("another CA"), nil, nil)
	p.OtherCAFile = otherCAFile
	_, _, p.OtherCert, p.OtherKey = issue("other-client", leaf("stranger", x509.ExtKeyUsageClientAuth), other, otherKey)
	return p
}

// ServerTLS is a broker TLS config with the PKI's server certificate,
// trusting the PKI's CA for client certificates; the helper's own clients
// use the PKI's client certificate.
func (p PKI) ServerTLS(requireClientCert bool) *TLS {
	return &TLS{
		CertFile: p.ServerCert, KeyFile: p.ServerKey, CAFile: p.CAFile,
		RequireClientCert: requireClientCert,
		ClientCertFile:    p.ClientCert, ClientKeyFile: p.ClientKey,
	}
}

// ClientTLS builds a client tls.Config that trusts caFile and, if certFile
// is not empty, presents that certificate.
func ClientTLS(t testing.TB, caFile, certFile, keyFile string) *tls.Config {
	t.Helper()
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		t.Fatalf("no certificates in %s", caFile)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}
