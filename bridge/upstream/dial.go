package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// endpoint is a validated upstream address.
type endpoint struct {
	scheme string // mqtt, mqtts, ws or wss
	host   string // host:port
	url    *url.URL
}

// parseEndpoint normalizes u's scheme, adds the default port and rejects
// what cannot be dialled.
func parseEndpoint(u *url.URL) (endpoint, error) {
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "tcp":
		scheme = "mqtt"
	case "ssl", "tls":
		scheme = "mqtts"
	}
	defaultPort := map[string]string{"mqtt": "1883", "mqtts": "8883", "ws": "80", "wss": "443"}[scheme]
	if defaultPort == "" {
		return endpoint{}, fmt.Errorf("URL %q: scheme %q: want mqtt, mqtts, ws or wss (or tcp, ssl, tls)", u.Redacted(), u.Scheme)
	}
	if u.Hostname() == "" {
		return endpoint{}, fmt.Errorf("URL %q: no host", u.Redacted())
	}
	if u.User != nil {
		return endpoint{}, fmt.Errorf("URL %q: put credentials in the user name and password settings, not the URL", u.Redacted())
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	n := *u
	n.Scheme = scheme
	n.Host = net.JoinHostPort(u.Hostname(), port)
	if scheme == "mqtt" || scheme == "mqtts" {
		n.Path, n.RawPath, n.RawQuery, n.Fragment = "", "", "", ""
	}
	return endpoint{scheme: scheme, host: n.Host, url: &n}, nil
}

func (e endpoint) tls() bool { return e.scheme == "mqtts" || e.scheme == "wss" }

func (e endpoint) String() string { return e.url.String() }

// dial opens the network connection: TCP, TLS over TCP, or an MQTT
// WebSocket ("mqtt" subprotocol, binary messages) over HTTP or HTTPS.
// tlsCfg is cloned. ctx bounds the dial and handshakes only.
func (e endpoint) dial(ctx context.Context, tlsCfg *tls.Config) (net.Conn, error) {
	switch e.scheme {
	case "mqtt":
		var d net.Dialer
		return d.DialContext(ctx, "tcp", e.host)
	case "mqtts":
		// tls.Dialer takes the server name from the address when the
		// config has none.
		d := tls.Dialer{Config: cloneTLS(tlsCfg)}
		return d.DialContext(ctx, "tcp", e.host)
	}
	tr := &http.Transport{TLSClientConfig: cloneTLS(tlsCfg), ForceAttemptHTTP2: false}
	defer tr.CloseIdleConnections()
	ws, _, err := websocket.Dial(ctx, e.url.String(), &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		Subprotocols: []string{"mqtt"},
	})
	if err != nil {
		return nil, err
	}
	// The context bounds the connection's life, so not ctx (the dial's):
	// Close ends it.
	return websocket.NetConn(context.Background(), ws, websocket.MessageBinary), nil
}

func cloneTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return c.Clone()
}

// deadlineConn gives every write a deadline, so that a connection whose
// peer stopped reading ends instead of blocking its writers (and with
// them Publish, acknowledgements and pings) for good.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
