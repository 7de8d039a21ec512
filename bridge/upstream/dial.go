package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// endpoint is a validated upstream address.
type endpoint struct {
	scheme string // mqtt, mqtts, ws or wss
	host   string // host:port
	url    *url.URL
}

// schemes maps each accepted URL scheme (lower case) to its canonical one.
var schemes = map[string]string{
	"mqtt": "mqtt", "tcp": "mqtt", "ws": "ws",
	"mqtts": "mqtts", "ssl": "mqtts", "tls": "mqtts", "wss": "wss",
}

// defaultPorts are the canonical schemes' ports.
var defaultPorts = map[string]string{"mqtt": "1883", "mqtts": "8883", "ws": "80", "wss": "443"}

// SchemeTLS reports whether a URL scheme (any case) is one Config.URL
// accepts, and whether it runs over TLS.
func SchemeTLS(scheme string) (useTLS, ok bool) {
	s, ok := schemes[strings.ToLower(scheme)]
	return s == "mqtts" || s == "wss", ok
}

// parseEndpoint normalizes u's scheme, adds the default port and rejects
// what cannot be dialled.
func parseEndpoint(u *url.URL) (endpoint, error) {
	scheme, ok := schemes[strings.ToLower(u.Scheme)]
	if !ok {
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
		port = defaultPorts[scheme]
	}
	n := *u
	n.Scheme = scheme
	n.Host = net.JoinHostPort(u.Hostname(), port)
	if scheme == "mqtt" || scheme == "mqtts" {
		n.Path, n.RawPath, n.RawQuery, n.Fragment = "", "", "", ""
	}
	return endpoint{scheme: scheme, host: n.Host, url: &n}, nil
}

func (e endpoint) tls() bool { useTLS, _ := SchemeTLS(e.scheme); return useTLS }

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

// packetConn is the connection paho.golang writes to. paho takes a
// sync.Locker connection as thread-safe: it writes each packet as several
// Writes (fixed header, variable header, properties, payload) between Lock
// and Unlock. packetConn gathers those and writes the packet at Unlock in
// one system call, instead of one per part: the drain of a backlog is
// bound by these calls. A failed write closes the connection, so that the
// reader ends it, since paho learns nothing from Unlock.
type packetConn struct {
	deadlineConn
	mu  sync.Mutex
	buf []byte
	// inLock is set between Lock and Unlock. Every paho write comes
	// through a packet's WriteTo, under the lock; a Write outside it (none
	// known) takes the lock itself.
	inLock atomic.Bool
}

func newPacketConn(c deadlineConn) *packetConn { return &packetConn{deadlineConn: c} }

// Lock starts a packet.
func (c *packetConn) Lock() {
	c.mu.Lock()
	c.inLock.Store(true)
}

// Unlock writes the packet gathered since Lock.
func (c *packetConn) Unlock() {
	if len(c.buf) > 0 {
		if _, err := c.deadlineConn.Write(c.buf); err != nil {
			c.deadlineConn.Close()
		}
	}
	if cap(c.buf) > maxKeptPacketBuffer {
		c.buf = nil
	}
	c.buf = c.buf[:0]
	c.inLock.Store(false)
	c.mu.Unlock()
}

// maxKeptPacketBuffer is the largest gathering buffer kept between packets.
const maxKeptPacketBuffer = 64 << 10

func (c *packetConn) Write(p []byte) (int, error) {
	if c.inLock.Load() { // by the goroutine holding the lock
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadlineConn.Write(p)
}
