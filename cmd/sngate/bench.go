package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/sngate/sngate/internal/mqttload"
)

// benchCommands are bench's subcommands, in the order usage lists them.
var benchCommands = []struct {
	name, summary string
	run           func(ctx context.Context, args []string, s streams) int
}{
	{"mqtt", "measure throughput, latency and loss between publishers and subscribers", cmdBenchMQTT},
	{"idle", "measure a broker's memory per idle client", cmdBenchIdle},
	{"sn", "measure throughput, latency and loss through an MQTT-SN gateway", cmdBenchSN},
	{"sn-idle", "measure an MQTT-SN gateway's memory per idle client", cmdBenchSNIdle},
}

func cmdBench(ctx context.Context, args []string, s streams) int {
	if len(args) > 0 {
		for _, c := range benchCommands {
			if args[0] == c.name {
				return c.run(ctx, args[1:], s)
			}
		}
	}
	usage := func(w io.Writer) {
		fmt.Fprint(w, "Usage: sngate bench COMMAND [flags]\n\nMeasure an MQTT broker or an MQTT-SN gateway (sngate's or any other) on\nthis machine.\n\nCommands:\n")
		for _, c := range benchCommands {
			fmt.Fprintf(w, "  %-7s  %s\n", c.name, c.summary)
		}
		fmt.Fprint(w, "\n'sngate bench COMMAND --help' shows a command's flags.\n")
	}
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		usage(s.out)
		return exitOK
	case len(args) == 0:
		fmt.Fprintln(s.err, "sngate bench: give a command: mqtt, idle, sn or sn-idle")
	default:
		fmt.Fprintf(s.err, "sngate bench: unknown command %q\n", args[0])
	}
	usage(s.err)
	return exitUsage
}

// brokerFlags say which broker to measure.
type brokerFlags struct {
	host string
	port int
	addr string
}

func (b *brokerFlags) register(fs *flagSet) {
	fs.stringVar(&b.host, "host", "", "127.0.0.1", "broker `HOST`")
	fs.intVar(&b.port, "port", "", 1883, "broker TCP `PORT`")
	fs.stringVar(&b.addr, "addr", "", "", "broker `HOST:PORT`, instead of --host and --port")
}

// address returns host:port, or a usage error.
func (b *brokerFlags) address(fs *flagSet) (string, error) {
	if b.addr != "" {
		if isSet(fs, "host") || isSet(fs, "port") {
			return "", errors.New("give --addr or --host/--port, not both")
		}
		if err := hostPort("addr", b.addr, "TCP port"); err != nil {
			return "", err
		}
		return b.addr, nil
	}
	if b.port < 1 || b.port > 65535 {
		return "", fmt.Errorf("--port %d is not a TCP port", b.port)
	}
	if b.host == "" {
		return "", errors.New("--host must not be empty")
	}
	return net.JoinHostPort(b.host, strconv.Itoa(b.port)), nil
}

func cmdBenchMQTT(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("bench mqtt", "[flags]",
		"Run publishers and subscribers against an MQTT 3.1.1 broker and print one\n"+
			"line: messages sent and received in the measured time, msgs/s received,\n"+
			"end-to-end latency (p50, p99, max) and loss. fan-in: every publisher to a\n"+
			"topic of its own, subscribers on one wildcard; fan-out: publishers to one\n"+
			"topic, subscribers on it. Expected deliveries are sent × subscribers. At\n"+
			"QoS 1 any loss is a failure (exit 1). The load generator shares the\n"+
			"machine's CPUs with a local broker.", s)
	var (
		b        brokerFlags
		mode     string
		pubs     int
		subs     int
		qos      int
		size     int
		duration time.Duration
		warmup   time.Duration
		rate     float64
		inflight int
		drain    time.Duration
		topic    string
		openLoop bool
		asJSON   bool
	)
	b.register(fs)
	fs.stringVar(&mode, "mode", "", string(mqttload.FanIn), "load `MODE`: fan-in (many publishers, 1 subscriber) or fan-out (1 publisher, many subscribers)")
	fs.intVar(&pubs, "publishers", "", 0, "`N` publishing connections (default 10 for fan-in, 1 for fan-out)")
	fs.intVar(&subs, "subscribers", "", 0, "`N` subscribing connections (default 1 for fan-in, 10 for fan-out)")
	fs.intVar(&qos, "qos", "", 0, "`QOS` 0 or 1, for publishing and subscribing")
	fs.intVar(&size, "size", "", 64, "payload `BYTES`, at least 16 (the send timestamp)")
	fs.durationVar(&duration, "duration", 10*time.Second, "measure for `DURATION`")
	fs.durationVar(&warmup, "warmup", time.Second, "run the load for `DURATION` before measuring")
	fs.Float64Var(&rate, "rate", 0, "publish `MSGS` per second per publisher; 0 = as fast as possible (at QoS 1, as the in-flight window allows)")
	fs.intVar(&inflight, "inflight", "", mqttload.DefaultInflight, "QoS 1: at most `N` messages per publisher in flight: not yet\nacknowledged or not yet delivered to every subscriber")
	fs.boolVar(&openLoop, "open-loop", "", "QoS 1: bound the window by PUBACKs only; publishers may then outrun\nthe subscribers until the broker's queues overflow and it drops messages")
	fs.durationVar(&drain, "drain", mqttload.DefaultDrain, "after the measured time, wait up to `DURATION` for messages in flight")
	fs.stringVar(&topic, "topic", "", mqttload.DefaultTopic, "first topic level of the benchmark's `TOPIC`s (a random level follows)")
	fs.boolVar(&asJSON, "json", "", "print the result as one JSON object")
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}
	addr, err := b.address(fs)
	if err != nil {
		return usageError(fs, s, err)
	}
	cfg := mqttload.Config{
		Addr: addr, Mode: mqttload.Mode(mode), Publishers: pubs, Subscribers: subs,
		Size: size, Duration: duration, Warmup: warmup, Rate: rate,
		Inflight: inflight, OpenLoop: openLoop, Drain: drain, Topic: topic,
	}
	if cfg.Publishers == 0 {
		cfg.Publishers = map[mqttload.Mode]int{mqttload.FanIn: 10, mqttload.FanOut: 1}[cfg.Mode]
	}
	if cfg.Subscribers == 0 {
		cfg.Subscribers = map[mqttload.Mode]int{mqttload.FanIn: 1, mqttload.FanOut: 10}[cfg.Mode]
	}
	switch {
	case qos != 0 && qos != 1:
		err = fmt.Errorf("--qos %d is not 0 or 1", qos)
	case inflight < 1:
		err = fmt.Errorf("--inflight %d must be at least 1", inflight)
	case drain < 0:
		err = fmt.Errorf("--drain %v must not be negative", drain)
	case topic == "":
		err = errors.New("--topic must not be empty")
	default:
		cfg.QoS = byte(qos)
		err = cfg.Validate()
	}
	if err != nil {
		return usageError(fs, s, flagError(err))
	}
	if _, err := mqttload.RaiseFileLimit(uint64(cfg.Publishers+cfg.Subscribers) + 64); err != nil {
		return failure(fs.Name(), s, err)
	}

	res, err := mqttload.Run(ctx, cfg)
	if err != nil {
		return failure(fs.Name(), s, err)
	}
	if asJSON {
		writeJSON(s.out, benchJSON(res))
	} else {
		fmt.Fprintln(s.out, benchLine(res))
	}
	switch {
	case res.QoS == 1 && res.Loss != 0:
		return failure(fs.Name(), s, fmt.Errorf("QoS 1: %d of %d messages lost (did the broker drop them? check its queue and in-flight limits)", res.Loss, res.Expected))
	case res.QoS == 1 && res.Unacked != 0:
		return failure(fs.Name(), s, fmt.Errorf("QoS 1: %d messages never acknowledged", res.Unacked))
	case res.Duplicates != 0:
		return failure(fs.Name(), s, fmt.Errorf("%d deliveries duplicated or out of order", res.Duplicates))
	}
	return exitOK
}

// flagError turns a Config.Validate message ("qos 2 is not ...") into one
// about the flag ("--qos 2 is not ...").
func flagError(err error) error {
	return errors.New("--" + err.Error())
}

// benchLine formats a result as one line of key=value fields.
func benchLine(r mqttload.Result) string {
	return fmt.Sprintf("mode=%s qos=%d publishers=%d subscribers=%d size=%d rate=%s duration=%v "+
		"sent=%d expected=%d received=%d msgs/s=%.0f p50=%s p99=%s max=%s loss=%d loss%%=%.3f dups=%d",
		r.Mode, r.QoS, r.Publishers, r.Subscribers, r.Size, fmtRate(r.Rate), r.Duration,
		r.Sent, r.Expected, r.Received, r.Throughput,
		fmtLatency(r.P50), fmtLatency(r.P99), fmtLatency(r.Max),
		r.Loss, 100*r.LossRatio(), r.Duplicates)
}

// fmtRate prints a rate limit: "max" for none.
func fmtRate(rate float64) string {
	if rate <= 0 {
		return "max"
	}
	return strconv.FormatFloat(rate, 'f', -1, 64) + "/s"
}

// fmtLatency prints a latency with three significant digits.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return strconv.FormatFloat(float64(d)/1e3, 'f', 1, 64) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "s"
}

// benchResult is the JSON form of a result: durations in microseconds.
type benchResult struct {
	mqttload.Result
	resultUnits
}

// resultUnits are the fields that a JSON result adds to a load generator's
// Result: its duration in seconds, loss in percent and latencies in
// microseconds.
type resultUnits struct {
	DurationS float64 `json:"duration_s"`
	LossPct   float64 `json:"loss_pct"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	MaxUs     float64 `json:"max_us"`
	MeanUs    float64 `json:"mean_us"`
}

func units(duration time.Duration, lossRatio float64, p50, p99, max, mean time.Duration) resultUnits {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return resultUnits{DurationS: duration.Seconds(), LossPct: 100 * lossRatio,
		P50us: us(p50), P99us: us(p99), MaxUs: us(max), MeanUs: us(mean)}
}

func benchJSON(r mqttload.Result) benchResult {
	return benchResult{r, units(r.Duration, r.LossRatio(), r.P50, r.P99, r.Max, r.Mean)}
}

func writeJSON(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain structs of numbers and strings
	}
	fmt.Fprintf(w, "%s\n", b)
}

func cmdBenchIdle(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("bench idle", "--clients N --pid PID [flags]",
		"Open N idle MQTT connections (CONNECT, keep-alive 300 s) to a broker and\n"+
			"report the broker process's resident memory (VmRSS) before and after, and\n"+
			"so its memory per idle client. Without --pid only the connections are made.", s)
	var b brokerFlags
	var f idleFlags
	b.register(fs)
	f.register(fs, "broker", 300)
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}
	addr, err := b.address(fs)
	if err == nil {
		err = f.check(1_000_000)
	}
	if err != nil {
		return usageError(fs, s, err)
	}
	return measureIdle(ctx, s, fs, f, "connections open", func(ctx context.Context) (idleSet, error) {
		set, err := mqttload.OpenIdle(ctx, addr, f.clients, mqttload.IdleOptions{
			KeepAlive: time.Duration(f.keepAlive) * time.Second, Parallel: f.parallel})
		return set, err
	})
}

type idleResult struct {
	Clients   int     `json:"clients"`
	Opened    int     `json:"opened"`
	ConnectS  float64 `json:"connect_s"`
	PID       int     `json:"pid,omitempty"`
	RSSBefore int64   `json:"rss_before_bytes,omitempty"`
	RSSAfter  int64   `json:"rss_after_bytes,omitempty"`
	PerClient float64 `json:"rss_per_client_bytes,omitempty"`
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
