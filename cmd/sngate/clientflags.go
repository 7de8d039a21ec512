package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/sngate/sngate/mqttsn"
)

// The MQTT-SN field tools (pub, sub, discover) share these flags, named after
// mosquitto_pub and mosquitto_sub where those have one.

// defaultSNPort is the UDP port the tools expect a gateway on.
const defaultSNPort = 1884

func (fs *flagSet) intVar(p *int, long, short string, value int, usage string) {
	fs.IntVar(p, long, value, usage)
	if short != "" {
		fs.IntVar(p, short, value, usage)
		fs.short[long] = short
	}
}

func (fs *flagSet) boolVar(p *bool, long, short string, usage string) {
	fs.BoolVar(p, long, false, usage)
	if short != "" {
		fs.BoolVar(p, short, false, usage)
		fs.short[long] = short
	}
}

func (fs *flagSet) durationVar(p *time.Duration, long string, value time.Duration, usage string) {
	fs.DurationVar(p, long, value, usage)
}

// gatewayFlags say which gateway to talk to and how.
type gatewayFlags struct {
	host      string
	port      int
	clientID  string
	keepAlive int
	persist   bool
	retry     time.Duration
	retries   int
	debug     bool

	willTopic   string
	willPayload string
	willQoS     int
	willRetain  bool
}

func (g *gatewayFlags) register(fs *flagSet, tool string) {
	fs.stringVar(&g.host, "host", "h", "localhost", "gateway `HOST`")
	fs.intVar(&g.port, "port", "p", defaultSNPort, "gateway UDP `PORT`")
	fs.stringVar(&g.clientID, "id", "i", "", "client `ID` (default sngate-"+tool+"-PID)")
	fs.intVar(&g.keepAlive, "keepalive", "k", 60, "keep-alive in `SECONDS`; 0 sends no pings")
	fs.boolVar(&g.persist, "disable-clean-session", "c", "keep the session (subscriptions, topic ids) after disconnecting")
	fs.durationVar(&g.retry, "retry", mqttsn.DefaultRetryInterval, "wait `DURATION` for an answer before resending (Tretry)")
	fs.intVar(&g.retries, "retries", "", mqttsn.DefaultMaxRetries, "resend `N` times before giving up (Nretry)")
	fs.boolVar(&g.debug, "debug", "d", "log protocol events to stderr")
	fs.stringVar(&g.willTopic, "will-topic", "", "", "publish a will on `TOPIC` if the gateway loses this client")
	fs.stringVar(&g.willPayload, "will-payload", "", "", "will message `TEXT`")
	fs.intVar(&g.willQoS, "will-qos", "", 0, "will `QOS` (0, 1 or 2)")
	fs.boolVar(&g.willRetain, "will-retain", "", "retain the will")
}

// check reports the first flag value that cannot work.
func (g *gatewayFlags) check(fs *flagSet) error {
	switch {
	case g.port < 1 || g.port > 65535:
		return fmt.Errorf("--port %d is not a UDP port", g.port)
	case g.keepAlive < 0 || g.keepAlive > 65535:
		return fmt.Errorf("--keepalive %d is not 0..65535 seconds", g.keepAlive)
	case g.retry <= 0:
		return fmt.Errorf("--retry %v must be positive", g.retry)
	case g.retries < 0:
		return fmt.Errorf("--retries %d must not be negative", g.retries)
	case g.willQoS < 0 || g.willQoS > 2:
		return fmt.Errorf("--will-qos %d is not 0, 1 or 2", g.willQoS)
	case g.willTopic == "" && (isSet(fs, "will-payload") || isSet(fs, "will-qos") || g.willRetain):
		return errors.New("--will-payload, --will-qos and --will-retain need --will-topic")
	case len(g.clientID) > 23:
		return fmt.Errorf("--id %q is longer than 23 characters", g.clientID)
	}
	return nil
}

// clientConfig turns the flags into a client configuration.
func (g *gatewayFlags) clientConfig(tool string, s streams) mqttsn.ClientConfig {
	id := g.clientID
	if id == "" {
		id = "sngate-" + tool + "-" + strconv.Itoa(os.Getpid())
		if len(id) > 23 {
			id = id[:23]
		}
	}
	cfg := mqttsn.ClientConfig{
		ClientID:      id,
		KeepAlive:     time.Duration(g.keepAlive) * time.Second,
		CleanSession:  !g.persist,
		RetryInterval: g.retry,
		MaxRetries:    g.retries,
	}
	if g.keepAlive == 0 {
		cfg.KeepAlive = -1
	}
	if g.retries == 0 {
		cfg.MaxRetries = -1
	}
	if g.willTopic != "" {
		cfg.Will = &mqttsn.Will{Topic: g.willTopic, Message: []byte(g.willPayload),
			QoS: mqttsn.QoS(g.willQoS), Retain: g.willRetain}
	}
	if g.debug {
		cfg.Logger = slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

func (g *gatewayFlags) addr() string {
	return net.JoinHostPort(g.host, strconv.Itoa(g.port))
}

// dial opens a client to the gateway.
func (g *gatewayFlags) dial(ctx context.Context, cfg mqttsn.ClientConfig) (*mqttsn.Client, error) {
	return mqttsn.Dial(ctx, g.addr(), cfg)
}

// topicFlags name one topic in one of MQTT-SN's three ways.
type topicFlags struct {
	name       string
	predefined string
	short      string
}

func (t *topicFlags) register(fs *flagSet, what string) {
	fs.stringVar(&t.name, "topic", "t", "", what+" topic `NAME`")
	fs.stringVar(&t.predefined, "predefined", "", "", "use predefined topic `ID` (1..65534) instead of a name")
	fs.stringVar(&t.short, "short", "", "", "use the two-character short topic name `XY` instead of a name")
}

// topic returns the topic the flags name, or a usage error.
func (t *topicFlags) topic() (mqttsn.Topic, error) {
	n := 0
	for _, set := range []bool{t.name != "", t.predefined != "", t.short != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return mqttsn.Topic{}, errors.New("give a topic: -t NAME, --predefined ID or --short XY")
	case n > 1:
		return mqttsn.Topic{}, errors.New("give only one of -t, --predefined and --short")
	case t.predefined != "":
		id, err := strconv.ParseUint(t.predefined, 10, 16)
		if err != nil || id == 0 || id == 0xFFFF {
			return mqttsn.Topic{}, fmt.Errorf("--predefined %q is not a topic id (1..65534)", t.predefined)
		}
		return mqttsn.PredefinedTopic(uint16(id)), nil
	case t.short != "":
		if len(t.short) != 2 {
			return mqttsn.Topic{}, fmt.Errorf("--short %q must be exactly two characters", t.short)
		}
		return mqttsn.ShortTopic(t.short), nil
	}
	return mqttsn.TopicName(t.name), nil
}

// usageError prints a one-line reason and the usage, and returns exit code 2.
func usageError(fs *flagSet, s streams, err error) int {
	fmt.Fprintf(s.err, "sngate %s: %v\n", fs.Name(), err)
	fs.printUsage(s.err)
	return exitUsage
}

// failure prints a one-line reason for a runtime failure and returns exit
// code 1.
func failure(tool string, s streams, err error) int {
	fmt.Fprintf(s.err, "sngate %s: %v\n", tool, err)
	return exitError
}
