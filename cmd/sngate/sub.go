package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/sngate/sngate/mqttsn"
)

func cmdSub(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("sub", "[flags] {-t TOPIC | --predefined ID | --short XY}",
		"Subscribe at an MQTT-SN gateway and print the messages, as mosquitto_sub does.\n"+
			"With --sleep the client sleeps between wakes, as a battery sensor does,\n"+
			"and the gateway buffers its messages meanwhile.", s)
	var g gatewayFlags
	g.register(fs, "sub")
	var t topicFlags
	t.register(fs, "subscribe to")
	var (
		qos     int
		verbose bool
		count   int
		sleep   time.Duration
		timeout time.Duration
	)
	fs.intVar(&qos, "qos", "q", 0, "highest `QOS` wanted: 0, 1 or 2")
	fs.boolVar(&verbose, "verbose", "v", "print \"topic payload\" instead of the payload alone")
	fs.intVar(&count, "count", "C", 0, "exit after `N` messages (0: never)")
	fs.durationVar(&sleep, "sleep", 0, "sleep `DURATION` between wakes instead of staying active")
	fs.durationVar(&timeout, "timeout", 0, "exit after `DURATION` even if fewer messages came (0: never)")
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}
	topic, err := t.topic()
	switch {
	case err != nil:
	case qos < 0 || qos > 2:
		err = fmt.Errorf("--qos %d is not 0, 1 or 2", qos)
	case count < 0:
		err = fmt.Errorf("--count %d must not be negative", count)
	case sleep < 0 || sleep > 65535*time.Second:
		err = fmt.Errorf("--sleep %v is not between 0 and 18h12m15s", sleep)
	case sleep > 0 && sleep < time.Second:
		err = fmt.Errorf("--sleep %v is shorter than the protocol's 1 s resolution", sleep)
	case timeout < 0:
		err = fmt.Errorf("--timeout %v must not be negative", timeout)
	default:
		err = g.check(fs)
	}
	if err != nil {
		return usageError(fs, s, err)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}

	p := &printer{out: s.out, verbose: verbose, limit: count, done: make(chan struct{})}
	lost := make(chan error, 1)
	cfg := g.clientConfig("sub", s)
	cfg.OnMessage = p.print
	cfg.OnConnectionLost = func(err error) {
		select {
		case lost <- err:
		default:
		}
	}
	c, err := g.dial(ctx, cfg)
	if err != nil {
		return failure("sub", s, err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		return failure("sub", s, fmt.Errorf("connect to %s: %w", g.addr(), err))
	}
	if _, err := c.Subscribe(ctx, topic, mqttsn.QoS(qos)); err != nil {
		return failure("sub", s, fmt.Errorf("subscribe to %v: %w", topic, err))
	}

	if sleep > 0 {
		err = sleepAndWake(ctx, c, sleep, p.done)
	} else {
		select {
		case <-ctx.Done():
		case <-p.done:
		case err = <-lost:
		}
	}
	if err != nil && ctx.Err() == nil {
		return failure("sub", s, err)
	}
	// Leave cleanly, also after Ctrl-C or --timeout.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.retry*time.Duration(g.retries+1))
	defer cancel()
	if err := c.Disconnect(dctx); err != nil && !errors.Is(err, mqttsn.ErrConnectionLost) {
		return failure("sub", s, fmt.Errorf("disconnect: %w", err))
	}
	return exitOK
}

// sleepAndWake sleeps for d, wakes to collect the buffered messages, and goes
// back to sleep, until ctx ends or done closes.
func sleepAndWake(ctx context.Context, c *mqttsn.Client, d time.Duration, done <-chan struct{}) error {
	if err := c.Sleep(ctx, d); err != nil {
		return fmt.Errorf("go to sleep: %w", err)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case <-timer.C:
		}
		if err := c.Wake(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("wake: %w", err)
		}
		timer.Reset(d)
	}
}

// printer writes received messages, one a line, and closes done after limit
// messages (when limit > 0).
type printer struct {
	out     io.Writer
	verbose bool
	limit   int
	done    chan struct{}

	mu sync.Mutex
	n  int
}

func (p *printer) print(m mqttsn.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.limit > 0 && p.n >= p.limit {
		return
	}
	p.n++
	if p.verbose {
		fmt.Fprintf(p.out, "%s %s\n", topicLabel(m), m.Payload)
	} else {
		fmt.Fprintf(p.out, "%s\n", m.Payload)
	}
	if p.limit > 0 && p.n == p.limit {
		close(p.done)
	}
}

// topicLabel names a message's topic for printing; a predefined id whose name
// the tool does not know prints as "predefined:ID".
func topicLabel(m mqttsn.Message) string {
	if m.Topic != "" {
		return m.Topic
	}
	return "predefined:" + strconv.Itoa(int(m.TopicID))
}
