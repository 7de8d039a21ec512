// Package bridge relays topics between the local broker and upstream
// (cloud) brokers, store-and-forward: what goes out is first appended to a
// disk queue (bridge/queue) and leaves it only once the upstream has
// acknowledged it, so an outage, a restart, a kill -9 or a power cut loses
// nothing the local broker acknowledged.
//
// Each configured connection has its own queue file, its own in-process
// client of the broker (broker.LocalConfig with Accept: the publisher's
// acknowledgement waits for the queue's fsync) and its own upstream client
// (bridge/upstream: MQTT 5 through paho.golang, MQTT 3.1.1 through
// paho.mqtt.golang), driven by one goroutine that reconnects with
// exponential backoff and drains the queue through a window of in-flight
// messages.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/sngate/sngate/broker"
)

// Options are what a Bridge needs besides its Config.
type Options struct {
	// DataDir holds the queues, in DataDir/bridge/NAME.db.
	DataDir string
	Logger  *slog.Logger
	// StatusInterval is how often the $SYS/bridge/NAME/... topics are
	// published; 0 means 10s, negative turns them off.
	StatusInterval time.Duration
}

// DefaultStatusInterval is how often the status topics are published.
const DefaultStatusInterval = 10 * time.Second

// Bridge is every configured bridge connection.
type Bridge struct {
	conns  []*connection
	log    *slog.Logger
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New opens the queues and attaches each connection to the broker, so
// that no message is missed once the broker's listeners open. It does not
// dial the upstreams: Start does.
func New(cfg Config, srv *broker.Server, opts Options) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StatusInterval == 0 {
		opts.StatusInterval = DefaultStatusInterval
	}
	b := &Bridge{log: opts.Logger, opts: opts}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	for _, cc := range cfg.Connections {
		cc = cc.withDefaults()
		c, err := newConnection(b.ctx, cc, srv, filepath.Join(opts.DataDir, "bridge", cc.Name+".db"), opts.Logger.With("bridge", cc.Name))
		if err != nil {
			b.cancel()
			b.closeAll()
			return nil, fmt.Errorf("bridge %s: %w", cc.Name, err)
		}
		b.conns = append(b.conns, c)
	}
	return b, nil
}

// Start dials the upstreams and starts relaying.
func (b *Bridge) Start() {
	for _, c := range b.conns {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			c.run(b.ctx)
		}()
		if b.opts.StatusInterval > 0 {
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				c.publishStatus(b.ctx, b.opts.StatusInterval)
			}()
		}
	}
}

// Shutdown stops taking messages from the broker, disconnects from the
// upstreams and closes the queues once every accepted message is on disk.
// What was not yet acknowledged upstream is sent after the next start.
func (b *Bridge) Shutdown(ctx context.Context) error {
	for _, c := range b.conns {
		c.detach()
	}
	b.cancel()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("bridge: shutdown: %w", ctx.Err())
	}
	return errors.Join(err, b.closeAll())
}

func (b *Bridge) closeAll() error {
	var errs []error
	for _, c := range b.conns {
		errs = append(errs, c.close())
	}
	return errors.Join(errs...)
}

// Stats reports every connection.
func (b *Bridge) Stats() []ConnectionStats {
	out := make([]ConnectionStats, len(b.conns))
	for i, c := range b.conns {
		out[i] = c.stats()
	}
	return out
}
