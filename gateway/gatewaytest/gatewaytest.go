// Package gatewaytest runs an MQTT-SN gateway for tests of the packages
// built on it, in the spirit of net/http/httptest: a real gateway on a free
// loopback UDP port in front of a broker, stopped when the test ends.
package gatewaytest

import (
	"context"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/gateway"
)

// NewServer serves a gateway with cfg in front of b on 127.0.0.1 (or
// cfg.Listen) and returns it with its UDP "host:port".
func NewServer(t testing.TB, cfg gateway.Config, b *broker.Server) (*gateway.Gateway, string) {
	t.Helper()
	g, err := gateway.New(cfg, b, nil)
	if err != nil {
		t.Fatalf("gatewaytest: %v", err)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	tr, err := gateway.ListenUDP(context.Background(), gateway.UDPConfig{Address: listen, Broadcast: cfg.Broadcast})
	if err != nil {
		t.Fatalf("gatewaytest: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(tr) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("gatewaytest: shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("gatewaytest: serve: %v", err)
		}
	})
	return g, tr.LocalAddr().String()
}
