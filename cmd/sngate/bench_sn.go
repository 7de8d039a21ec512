package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/sngate/sngate/internal/mqttload"
	"github.com/sngate/sngate/internal/snload"
)

// hostPort checks a --flag HOST:PORT value; what names the port in the
// error ("port", "TCP port").
func hostPort(flag, v, what string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return fmt.Errorf("--%s %q is not HOST:PORT", flag, v)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("--%s %q: %q is not a %s", flag, v, port, what)
	}
	return nil
}

const rateLimitHint = "a gateway's per-address limit (sngate: gateway.packets_per_second, default 100) drops what a client sends beyond it: set it to 0 for benchmarks"

func cmdBenchSN(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("bench sn", "[flags]",
		"Run MQTT-SN clients against an MQTT-SN gateway (UDP), with the MQTT side on\n"+
			"the broker behind it (TCP), and print one line: messages sent and received\n"+
			"in the measured time, msgs/s received, end-to-end latency (p50, p99, max)\n"+
			"and loss. up: every MQTT-SN client CONNECTs, REGISTERs TOPIC/<i> and\n"+
			"publishes (QoS -1: without connection, to the short topic \""+snload.ShortTopic+"\");\n"+
			"one MQTT subscriber on TOPIC/# receives. down: every MQTT-SN client\n"+
			"SUBSCRIBEs to TOPIC; one MQTT publisher publishes to it. Expected\n"+
			"deliveries are sent (up) or sent × clients (down). At QoS 1 and 2 any loss\n"+
			"is a failure (exit 1).\n\n"+
			"Note: a gateway's per-address limit (sngate: gateway.packets_per_second,\n"+
			"default 100) drops what a client sends beyond it: set it to 0 for\n"+
			"benchmarks.", s)
	var (
		gateway   string
		broker    string
		direction string
		clients   int
		qos       int
		size      int
		duration  time.Duration
		warmup    time.Duration
		rate      float64
		window    int
		retry     time.Duration
		drain     time.Duration
		topic     string
		asJSON    bool
	)
	fs.stringVar(&gateway, "gateway", "", "127.0.0.1:1884", "the MQTT-SN gateway's UDP `HOST:PORT`")
	fs.stringVar(&broker, "broker", "", "127.0.0.1:1883", "the broker's TCP `HOST:PORT`, for the MQTT side")
	fs.stringVar(&direction, "direction", "", string(snload.Up), "`DIR`: up (MQTT-SN clients publish) or down (they subscribe)")
	fs.intVar(&clients, "clients", "", 10, "`N` MQTT-SN clients, each on a UDP socket of its own")
	fs.intVar(&qos, "qos", "", 0, "`QOS` of the MQTT-SN side: -1, 0, 1 or 2 up; 0 or 1 down")
	fs.intVar(&size, "size", "", 64, "payload `BYTES`, at least 16 (the send timestamp)")
	fs.durationVar(&duration, "duration", 10*time.Second, "measure for `DURATION`")
	fs.durationVar(&warmup, "warmup", time.Second, "run the load for `DURATION` before measuring")
	fs.Float64Var(&rate, "rate", 0, "publish `MSGS` per second per client (up) or by the publisher (down);\n0 = as fast as the window and, at QoS 1/2, one message in flight allow")
	fs.intVar(&window, "window", "", snload.DefaultWindow, "at most `N` messages sent and not yet delivered: up shared by the\nclients (each max(1, N/clients)), down the publisher's; -1 = no bound")
	fs.durationVar(&retry, "retry", snload.DefaultRetry, "MQTT-SN clients resend an unanswered message after `DURATION`")
	fs.durationVar(&drain, "drain", snload.DefaultDrain, "after the measured time, wait up to `DURATION` for messages in flight")
	fs.stringVar(&topic, "topic", "", "", "up: first topic level (default \""+snload.DefaultUpTopic+"\"); down: the `TOPIC` (default \""+snload.DefaultDownTopic+"\")")
	fs.boolVar(&asJSON, "json", "", "print the result as one JSON object")
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}
	cfg := snload.Config{Gateway: gateway, Broker: broker, Direction: snload.Direction(direction),
		Clients: clients, QoS: qos, Size: size, Duration: duration, Warmup: warmup, Rate: rate,
		Window: window, Retry: retry, Drain: drain, Topic: topic}
	err := hostPort("gateway", gateway, "port")
	if err == nil {
		err = hostPort("broker", broker, "port")
	}
	switch {
	case err != nil:
	case window == 0:
		err = errors.New("--window 0 leaves no room for a message (-1 = no bound)")
	case retry <= 0:
		err = fmt.Errorf("--retry %v must be positive", retry)
	case drain < 0:
		err = fmt.Errorf("--drain %v must not be negative", drain)
	default:
		if err = cfg.Validate(); err != nil {
			err = flagError(err)
		}
	}
	if err != nil {
		return usageError(fs, s, err)
	}
	if _, err := mqttload.RaiseFileLimit(uint64(clients) + 64); err != nil {
		return failure(fs.Name(), s, err)
	}
	res, err := snload.Run(ctx, cfg)
	if err != nil {
		return failure(fs.Name(), s, err)
	}
	if asJSON {
		writeJSON(s.out, snJSON(res))
	} else {
		fmt.Fprintln(s.out, snLine(res))
	}
	switch {
	case res.Sent == 0:
		return failure(fs.Name(), s, errors.New("no message sent in the measured time: the senders waited for deliveries or acknowledgements all along (lost datagrams wait for the gateway's retry_interval)"))
	case res.QoS >= 1 && res.Loss != 0:
		return failure(fs.Name(), s, fmt.Errorf("QoS %d: %d of %d messages lost (%s)", res.QoS, res.Loss, res.Expected, rateLimitHint))
	case res.QoS >= 1 && res.Unacked != 0:
		return failure(fs.Name(), s, fmt.Errorf("QoS %d: %d messages never acknowledged", res.QoS, res.Unacked))
	case res.Rejected != 0:
		return failure(fs.Name(), s, fmt.Errorf("%d messages rejected by the gateway (PUBACK with a return code)", res.Rejected))
	case res.Duplicates != 0:
		return failure(fs.Name(), s, fmt.Errorf("%d deliveries duplicated or out of order", res.Duplicates))
	}
	return exitOK
}

// snLine formats a result as one line of key=value fields, as benchLine.
func snLine(r snload.Result) string {
	return fmt.Sprintf("direction=%s qos=%d clients=%d size=%d rate=%s window=%d duration=%v "+
		"sent=%d expected=%d received=%d msgs/s=%.0f p50=%s p99=%s max=%s loss=%d loss%%=%.3f dups=%d retransmits=%d redelivered=%d",
		r.Direction, r.QoS, r.Clients, r.Size, fmtRate(r.Rate), r.Window, r.Duration,
		r.Sent, r.Expected, r.Received, r.Throughput,
		fmtLatency(r.P50), fmtLatency(r.P99), fmtLatency(r.Max),
		r.Loss, 100*r.LossRatio(), r.Duplicates, r.Retransmits, r.Redelivered)
}

// snResult is the JSON form of a result: durations in microseconds.
type snResult struct {
	snload.Result
	resultUnits
}

func snJSON(r snload.Result) snResult {
	return snResult{r, units(r.Duration, r.LossRatio(), r.P50, r.P99, r.Max, r.Mean)}
}

func cmdBenchSNIdle(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("bench sn-idle", "--clients N --pid PID [flags]",
		"Connect N idle MQTT-SN clients (CONNECT, clean session, keep-alive 65535 s),\n"+
			"each from a UDP socket of its own, to a gateway and report the gateway\n"+
			"process's resident memory (VmRSS) before and after, and so its memory per\n"+
			"idle client. The clients send DISCONNECT when done. Without --pid only the\n"+
			"clients are connected. Note: a gateway's max_clients (sngate: 10000 by\n"+
			"default, also the broker's) bounds N.", s)
	var gateway string
	var f idleFlags
	fs.stringVar(&gateway, "gateway", "", "127.0.0.1:1884", "the MQTT-SN gateway's UDP `HOST:PORT`")
	f.register(fs, "gateway", 65535)
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}
	err := hostPort("gateway", gateway, "port")
	if err == nil {
		err = f.check(snload.MaxClients)
	}
	if err != nil {
		return usageError(fs, s, err)
	}
	return measureIdle(ctx, s, fs, f, "clients connected", func(ctx context.Context) (idleSet, error) {
		set, err := snload.OpenIdle(ctx, gateway, f.clients, snload.IdleOptions{
			KeepAlive: time.Duration(f.keepAlive) * time.Second, Parallel: f.parallel})
		return set, err
	})
}
