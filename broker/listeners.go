package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Start opens every configured listener and serves it in the background. It
// returns once all are listening and reported by Addrs, or the first error
// (after closing those already open).
func (s *Server) Start() error {
	var opened []net.Listener
	for i, lc := range s.cfg.Listeners {
		ln, err := s.listen(lc)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return fmt.Errorf("listener %d (%s %s): %w", i, lc.Type, lc.Address, err)
		}
		opened = append(opened, ln)
		s.log.Info("listening", "type", lc.Type, "address", ln.Addr().String(), "path", lc.Path)
	}
	// One at a time, each once serve has registered it, so that Addrs
	// knows them all when Start returns, in the configured order.
	for i, ln := range opened {
		lc := s.cfg.Listeners[i]
		sl := &startedListener{Listener: ln, started: make(chan struct{})}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.serve(sl, lc); err != nil && !errors.Is(err, ErrServerClosed) {
				s.log.Error("listener stopped", "address", ln.Addr().String(), "err", err)
			}
		}()
		select {
		case <-sl.started:
		case <-s.ctx.Done(): // Shutdown meanwhile: serve closes the listener
		}
	}
	return nil
}

// startedListener says when serve has registered it with the server: serve
// calls Accept only after, and Close instead when the server is closed.
type startedListener struct {
	net.Listener
	once    sync.Once
	started chan struct{}
}

func (l *startedListener) signal() { l.once.Do(func() { close(l.started) }) }

func (l *startedListener) Accept() (net.Conn, error) {
	l.signal()
	return l.Listener.Accept()
}

func (l *startedListener) Close() error {
	l.signal()
	return l.Listener.Close()
}

// Addrs returns the addresses the server listens on, for example the port
// chosen for ":0".
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]net.Addr, len(s.listeners))
	for i, ln := range s.listeners {
		addrs[i] = ln.Addr()
	}
	return addrs
}

func (s *Server) listen(lc ListenerConfig) (net.Listener, error) {
	var tlsConf *tls.Config
	if lc.CertFile != "" {
		var err error
		if tlsConf, err = serverTLS(lc); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", lc.Address)
	if err != nil {
		return nil, err
	}
	switch lc.Type {
	case "websocket":
		return newWSListener(ln, lc.Path, tlsConf), nil
	case "tls":
		return tls.NewListener(ln, tlsConf), nil
	}
	return ln, nil
}

// serverTLS builds the TLS settings of a listener: its certificate and,
// with a client CA, verification of client certificates.
func serverTLS(lc ListenerConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(lc.CertFile, lc.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", lc.CertFile, err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if lc.ClientCAFile != "" {
		pem, err := os.ReadFile(lc.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificate in it", lc.ClientCAFile)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if lc.RequireClientCert {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return conf, nil
}

// wsListener serves MQTT over WebSocket (subprotocol "mqtt", binary
// messages) on one path, and hands each connection to Accept as a net.Conn.
type wsListener struct {
	ln    net.Listener
	http  *http.Server
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newWSListener(ln net.Listener, path string, tlsConf *tls.Config) *wsListener {
	l := &wsListener{ln: ln, conns: make(chan net.Conn), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(path, l.handle)
	l.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConf}
	go func() {
		if tlsConf != nil {
			_ = l.http.ServeTLS(ln, "", "")
		} else {
			_ = l.http.Serve(ln)
		}
	}()
	return l
}

func (l *wsListener) handle(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"mqtt"}, InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered the request
	}
	ws.SetReadLimit(-1) // the MQTT reader applies max_packet_size
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc := &wsConn{Conn: websocket.NetConn(ctx, ws, websocket.MessageBinary), remote: r.RemoteAddr, closed: make(chan struct{})}
	select {
	case l.conns <- nc:
	case <-l.done:
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	select { // the handler's return would end the connection
	case <-nc.closed:
	case <-l.done:
	}
}

func (l *wsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *wsListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.http.Close()
}

func (l *wsListener) Addr() net.Addr { return l.ln.Addr() }

// wsConn is a WebSocket connection as a net.Conn that says when it closes.
type wsConn struct {
	net.Conn
	remote string
	closed chan struct{}
	once   sync.Once
}

func (c *wsConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

func (c *wsConn) RemoteAddr() net.Addr { return wsAddr(c.remote) }

type wsAddr string

func (a wsAddr) Network() string { return "websocket" }
func (a wsAddr) String() string  { return string(a) }
