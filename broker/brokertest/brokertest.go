// Package brokertest runs a broker for tests of the packages built on it
// (the MQTT-SN gateway, the bridge, the load generator), in the spirit of
// net/http/httptest: a real broker on a free loopback port, stopped when
// the test ends.
package brokertest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
)

// shutdownTimeout bounds the broker's stop at the end of a test.
const shutdownTimeout = 5 * time.Second

// NewServer starts a broker with cfg on 127.0.0.1 and a free port and
// returns it with its "host:port". $SYS topics are off unless
// cfg.SysInterval asks for them; opts.DataDir "" keeps nothing on disk.
func NewServer(t testing.TB, cfg broker.Config, opts broker.Options) (*broker.Server, string) {
	t.Helper()
	if cfg.SysInterval == 0 {
		cfg.SysInterval = -1
	}
	s, err := broker.New(cfg, opts)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("brokertest: listen: %v", err)
	}
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("brokertest: shutdown: %v", err)
		}
	})
	return s, ln.Addr().String()
}
