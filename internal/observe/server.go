package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is the "metrics" section: the HTTP listener, off unless Listen
// is set (127.0.0.1:9105, say: it is for the machine's own Prometheus
// agent, not the world).
type Config struct {
	Listen string `yaml:"listen"`
}

// FieldError is a configuration error about one key.
type FieldError struct{ Key, Msg string }

func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Field returns the key.
func (e *FieldError) Field() string { return e.Key }

// Validate checks the listen address.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return &FieldError{Key: "listen", Msg: fmt.Sprintf("%q is not host:port", c.Listen)}
	}
	return nil
}

// Check is one part's health: nil when it works. Degraded parts (a
// bridge whose upstream is away) report through Degraded instead.
type Check func(ctx context.Context) error

// Health says what /healthz reports.
type Health struct {
	// Checks must all pass for 200; any failure gives 503.
	Checks map[string]Check
	// Degraded lists what runs but is not well (bridge "cloud": not
	// connected); shown in the body, still 200.
	Degraded func() []string
}

// Handler serves /metrics and /healthz.
func Handler(src Sources, h Health) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		names := make([]string, 0, len(h.Checks))
		for name := range h.Checks {
			names = append(names, name)
		}
		sort.Strings(names)
		var body strings.Builder
		code := http.StatusOK
		for _, name := range names {
			if err := h.Checks[name](ctx); err != nil {
				code = http.StatusServiceUnavailable
				fmt.Fprintf(&body, "%s: failing: %v\n", name, err)
			} else {
				fmt.Fprintf(&body, "%s: ok\n", name)
			}
		}
		if h.Degraded != nil {
			for _, d := range h.Degraded() {
				fmt.Fprintf(&body, "degraded: %s\n", d)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		fmt.Fprint(w, body.String())
	})
	return mux
}

// Server is the observe listener.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Listen opens the listener of cfg and serves h on it; nil, nil when cfg
// has no listener.
func Listen(cfg Config, h http.Handler, log *slog.Logger) (*Server, error) {
	if cfg.Listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", cfg.Listen, err)
	}
	s := &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("listening", "type", "metrics", "address", ln.Addr().String())
	return s, nil
}

// Addr is the listener's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the listener; a nil Server does nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}
