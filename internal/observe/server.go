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

// Status is what the status page shows that Sources do not say, and how
// often it samples throughput for its sparklines.
type Status struct {
	Version string    // sngate's version, in the page's header
	Started time.Time // uptime counts from it; zero: when Handler is called
	// SampleEvery is the sparklines' interval (default 10s) and Samples
	// how many intervals they show (default 60).
	SampleEvery time.Duration
	Samples     int
}

// handler is what Handler returns: Listen finds its history through it.
type handler struct {
	mux  *http.ServeMux
	hist *history
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Handler serves /metrics, /healthz and the status page at /; any other
// path is 404. The page's sparklines fill while a Server from Listen
// serves the handler.
func Handler(src Sources, h Health, st Status) http.Handler {
	if st.Started.IsZero() {
		st.Started = time.Now()
	}
	hist := newHistory(src, st.SampleEvery, st.Samples)
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{src: src}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /{$}", statusPage(src, st, hist))
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
	return &handler{mux: mux, hist: hist}
}

// Server is the observe listener, and the owner of the status page's
// sampler.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	stop     context.CancelFunc
	sampling <-chan struct{} // closed when the sampler has stopped; nil without one
}

// Listen opens the listener of cfg and serves h on it; nil, nil when cfg
// has no listener. When h comes from Handler, the Server also samples
// throughput for the status page until Shutdown.
func Listen(cfg Config, h http.Handler, log *slog.Logger) (*Server, error) {
	if cfg.Listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", cfg.Listen, err)
	}
	s := &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if oh, ok := h.(*handler); ok {
		s.sampling = oh.hist.start(ctx)
	}
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

// Shutdown stops the listener and the sampler, waiting for them until ctx
// ends; a nil Server does nothing.
func (s *Server) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.stop()
	err := s.srv.Shutdown(ctx)
	if s.sampling != nil {
		select {
		case <-s.sampling:
		case <-ctx.Done():
			return errors.Join(err, fmt.Errorf("metrics: sampler not stopped: %w", ctx.Err()))
		}
	}
	if err != nil {
		return fmt.Errorf("metrics: shutdown: %w", err)
	}
	return nil
}
