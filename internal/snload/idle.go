package snload

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sngate/sngate/internal/mqttload"
)

// IdleSet is a set of connected, idle MQTT-SN clients, one UDP socket each.
// Nothing reads from them after CONNACK and no goroutine serves them.
type IdleSet struct {
	mu    sync.Mutex
	conns []*conn
}

// Len returns the number of connected clients.
func (s *IdleSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close sends DISCONNECT from every client, so that the gateway ends their
// sessions now rather than at the end of their keep-alive, and closes the
// sockets.
func (s *IdleSet) Close() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.close(true)
	}
}

// IdleOptions configure OpenIdle.
type IdleOptions struct {
	KeepAlive time.Duration // sent in CONNECT; default and at most 65535 s (18 h)
	Parallel  int           // clients connecting at once; default 64
	Retry     time.Duration // resend CONNECT after; default 1s
	Timeout   time.Duration // per client; default 10s
	IDPrefix  string        // client ids are IDPrefix + index; default "snidle-<pid>-"
}

// OpenIdle connects n MQTT-SN clients to the gateway at addr (UDP), each
// from a socket of its own, sending CONNECT (clean session) and waiting for
// CONNACK. On error the set holds the clients connected so far; the caller
// closes it in any case.
func OpenIdle(ctx context.Context, addr string, n int, opts IdleOptions) (*IdleSet, error) {
	set := &IdleSet{}
	gw, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return set, fmt.Errorf("gateway address: %w", err)
	}
	if opts.KeepAlive <= 0 || opts.KeepAlive > 65535*time.Second {
		opts.KeepAlive = 65535 * time.Second
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 64
	}
	if opts.Retry <= 0 {
		opts.Retry = DefaultRetry
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.IDPrefix == "" {
		opts.IDPrefix = "snidle-" + strconv.Itoa(os.Getpid()) + "-"
	}
	set.conns = make([]*conn, 0, n)
	ka := uint16(opts.KeepAlive / time.Second)
	err = mqttload.DialAll(ctx, n, opts.Parallel, func(i int) error {
		c, err := dialConn(gw, 64)
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		if err := c.connect(ctx, opts.IDPrefix+strconv.Itoa(i), ka, opts.Retry, opts.Timeout); err != nil {
			c.close(false)
			return fmt.Errorf("client %d: %w", i, err)
		}
		c.rbuf = nil
		set.mu.Lock()
		set.conns = append(set.conns, c)
		set.mu.Unlock()
		return nil
	})
	return set, err
}
