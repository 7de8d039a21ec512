package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/sngate/sngate/broker"
)

// notify tells systemd (Type=notify) about sngate's state: READY=1 once
// every listener serves and the state is loaded, STOPPING=1 when shutdown
// begins. Outside systemd (no $NOTIFY_SOCKET) it does nothing.
func notify(log *slog.Logger, state string) {
	if ok, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("cannot notify systemd", "state", state, "err", err)
	} else if ok {
		log.Debug("notified systemd", "state", state)
	}
}

// probeTimeout bounds one health probe.
const probeTimeout = 5 * time.Second

// health checks that sngate's main loops work: a message goes round the
// broker (routing, sessions), and no transport's serve loop has died.
// The watchdog and /healthz check at the same time: mu lets one probe
// through at a time, so that neither takes the other's answer.
type health struct {
	probe    *broker.LocalClient
	got      chan uint64
	mu       sync.Mutex // held by check: n and the receiving end of got
	n        uint64
	loopDead atomic.Pointer[error]
}

const probeTopic = "$SYS/sngate/watchdog"

func newHealth(srv *broker.Server) (*health, error) {
	h := &health{got: make(chan uint64, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	lc, _, err := srv.Connect(broker.LocalConfig{ClientID: "sngate-watchdog", CleanSession: true, Trusted: true,
		OnMessage: func(d broker.Delivery) {
			n, _ := strconv.ParseUint(string(d.Message.Payload), 10, 64)
			select {
			case h.got <- n:
			default:
			}
		}})
	if err != nil {
		return nil, err
	}
	if _, err := lc.Subscribe(ctx, broker.Subscription{Filter: probeTopic}); err != nil {
		lc.Disconnect(false)
		return nil, err
	}
	h.probe = lc
	return h, nil
}

// loopEnded records that a serve loop stopped with err, which makes sngate
// unhealthy: systemd's watchdog then restarts it.
func (h *health) loopEnded(err error) { h.loopDead.Store(&err) }

// check runs one probe.
func (h *health) check(ctx context.Context) error {
	if err := h.loopDead.Load(); err != nil {
		return fmt.Errorf("a serve loop ended: %w", *err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := h.probe.Publish(ctx, broker.Message{Topic: probeTopic, Payload: []byte(strconv.FormatUint(h.n, 10))}); err != nil {
		return fmt.Errorf("probe publish: %w", err)
	}
	for {
		select {
		case n := <-h.got:
			if n == h.n {
				return nil
			}
		case <-ctx.Done():
			return errors.New("the broker did not route a probe message within " + probeTimeout.String())
		}
	}
}

func (h *health) close() { h.probe.Disconnect(false) }

// watchdog sends WATCHDOG=1 at half the interval systemd asks for
// (WatchdogSec=), but only while the health check passes: a wedged sngate
// stops sending and systemd restarts it. Without a watchdog it returns.
func watchdog(ctx context.Context, h *health, log *slog.Logger) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	failing := false
	for {
		if err := h.check(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				log.Error("health check failed: not feeding the systemd watchdog", "err", err)
			}
			failing = true
		} else {
			if failing {
				log.Info("health check passes again")
			}
			failing = false
			notify(log, daemon.SdNotifyWatchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
