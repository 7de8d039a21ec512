package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sngate/sngate/internal/mqttload"
)

// idleFlags are the flags of the two idle-memory measurements, bench idle
// (MQTT clients of a broker) and bench sn-idle (MQTT-SN clients of a
// gateway).
type idleFlags struct {
	clients, pid, keepAlive, parallel int
	settle, hold, timeout             time.Duration
	asJSON                            bool
}

// register defines the flags; server names what the clients connect to.
func (f *idleFlags) register(fs *flagSet, server string, keepAlive int) {
	fs.intVar(&f.clients, "clients", "", 1000, "open `N` clients")
	fs.intVar(&f.pid, "pid", "", 0, "the "+server+"'s process `ID`, to read its memory from /proc")
	fs.intVar(&f.keepAlive, "keepalive", "", keepAlive, "keep-alive in `SECONDS` sent in CONNECT")
	fs.intVar(&f.parallel, "parallel", "", 64, "open `N` clients at a time")
	fs.durationVar(&f.settle, "settle", 2*time.Second, "wait `DURATION` after the last CONNACK before reading the memory")
	fs.durationVar(&f.hold, "hold", 0, "keep the clients open `DURATION` longer before closing them")
	fs.durationVar(&f.timeout, "timeout", time.Minute, "give up if opening the clients takes longer than `DURATION`")
	fs.boolVar(&f.asJSON, "json", "", "print the result as one JSON object")
}

func (f *idleFlags) check(maxClients int) error {
	switch {
	case f.clients < 1 || f.clients > maxClients:
		return fmt.Errorf("--clients %d is not 1..%d", f.clients, maxClients)
	case f.pid < 0:
		return fmt.Errorf("--pid %d is not a process id", f.pid)
	case f.keepAlive < 1 || f.keepAlive > 65535:
		return fmt.Errorf("--keepalive %d is not 1..65535 seconds", f.keepAlive)
	case f.parallel < 1:
		return fmt.Errorf("--parallel %d must be at least 1", f.parallel)
	case f.settle < 0 || f.hold < 0:
		return errors.New("--settle and --hold must not be negative")
	case f.timeout <= 0:
		return fmt.Errorf("--timeout %v must be positive", f.timeout)
	}
	return nil
}

// idleSet is a set of open idle clients.
type idleSet interface {
	Len() int
	Close()
}

// measureIdle opens f.clients idle clients with open and reports the
// memory of process f.pid before and after. opened says what Len counts,
// for the error when not all could be opened.
func measureIdle(ctx context.Context, s streams, fs *flagSet, f idleFlags, opened string, open func(context.Context) (idleSet, error)) int {
	res := idleResult{Clients: f.clients, PID: f.pid}
	var err error
	if f.pid > 0 {
		if res.RSSBefore, err = mqttload.RSS(f.pid); err != nil {
			return failure(fs.Name(), s, err)
		}
	}
	if _, err := mqttload.RaiseFileLimit(uint64(f.clients) + 64); err != nil {
		return failure(fs.Name(), s, err)
	}
	openCtx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	began := time.Now()
	set, err := open(openCtx)
	defer set.Close()
	res.Opened = set.Len()
	res.ConnectS = time.Since(began).Seconds()
	if err != nil {
		return failure(fs.Name(), s, fmt.Errorf("%d of %d %s: %w", res.Opened, f.clients, opened, err))
	}
	if !sleepCtx(ctx, f.settle) {
		return failure(fs.Name(), s, context.Cause(ctx))
	}
	if f.pid > 0 {
		if res.RSSAfter, err = mqttload.RSS(f.pid); err != nil {
			return failure(fs.Name(), s, err)
		}
		res.PerClient = float64(res.RSSAfter-res.RSSBefore) / float64(f.clients)
	}
	if f.asJSON {
		writeJSON(s.out, res)
	} else {
		line := fmt.Sprintf("clients=%d connect=%.2fs", res.Opened, res.ConnectS)
		if f.pid > 0 {
			line += fmt.Sprintf(" pid=%d rss_before=%.1fMiB rss_after=%.1fMiB rss_per_client=%.2fKiB",
				f.pid, float64(res.RSSBefore)/(1<<20), float64(res.RSSAfter)/(1<<20), res.PerClient/1024)
		}
		fmt.Fprintln(s.out, line)
	}
	if !sleepCtx(ctx, f.hold) {
		return failure(fs.Name(), s, context.Cause(ctx))
	}
	return exitOK
}
