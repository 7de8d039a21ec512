package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sngate/sngate/mqttsn"
)

// maxLineLen bounds one line of -l input.
const maxLineLen = 64 * 1024

func cmdPub(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("pub", "[flags] {-t TOPIC | --predefined ID | --short XY} {-m TEXT | -f FILE | -l | -s | -n}",
		"Publish to an MQTT-SN gateway, as mosquitto_pub does to an MQTT broker.\nQoS -1 sends without connecting and needs --predefined or --short.", s)
	var g gatewayFlags
	g.register(fs, "pub")
	var t topicFlags
	t.register(fs, "publish to")
	var (
		qos       int
		retain    bool
		message   string
		file      string
		lines     bool
		wholeIn   bool
		nullMsg   bool
		sourceSet int
	)
	fs.intVar(&qos, "qos", "q", 0, "quality of service `QOS`: -1, 0, 1 or 2")
	fs.boolVar(&retain, "retain", "r", "ask the broker to retain the message")
	fs.stringVar(&message, "message", "m", "", "send `TEXT` as the message")
	fs.stringVar(&file, "file", "f", "", "send the contents of `FILE` as the message")
	fs.boolVar(&lines, "stdin-line", "l", "send each line of standard input as a message")
	fs.boolVar(&wholeIn, "stdin-file", "s", "send all of standard input as one message")
	fs.boolVar(&nullMsg, "null-message", "n", "send an empty message")
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}
	for _, name := range []string{"message", "file", "stdin-line", "stdin-file", "null-message"} {
		if isSet(fs, name) {
			sourceSet++
		}
	}
	topic, err := t.topic()
	switch {
	case err != nil:
	case sourceSet != 1:
		err = errors.New("give exactly one message source: -m, -f, -l, -s or -n")
	case qos < -1 || qos > 2:
		err = fmt.Errorf("--qos %d is not -1, 0, 1 or 2", qos)
	case qos == -1 && topic.Type == mqttsn.TopicNormal:
		err = errors.New("QoS -1 needs --predefined or --short: there is no connection to register a name on")
	default:
		err = g.check(fs)
	}
	if err != nil {
		return usageError(fs, s, err)
	}

	// Read a one-shot message before touching the network, so that a
	// missing file is reported as such.
	var payload []byte
	switch {
	case isSet(fs, "message"):
		payload = []byte(message)
	case file != "":
		if payload, err = os.ReadFile(file); err != nil {
			return failure("pub", s, err)
		}
	case wholeIn:
		if payload, err = io.ReadAll(s.in); err != nil {
			return failure("pub", s, fmt.Errorf("read standard input: %w", err))
		}
	}

	c, err := g.dial(ctx, g.clientConfig("pub", s))
	if err != nil {
		return failure("pub", s, err)
	}
	defer c.Close()
	q := mqttsn.QoS(qos)
	if q != mqttsn.QoSMinus1 {
		if err := c.Connect(ctx); err != nil {
			return failure("pub", s, fmt.Errorf("connect to %s: %w", g.addr(), err))
		}
	}

	if lines {
		err = publishLines(ctx, c, s.in, topic, q, retain)
	} else {
		err = c.Publish(ctx, topic, payload, q, retain)
	}
	if err != nil {
		return failure("pub", s, fmt.Errorf("publish to %v: %w", topic, err))
	}
	if q != mqttsn.QoSMinus1 {
		if err := c.Disconnect(ctx); err != nil {
			return failure("pub", s, fmt.Errorf("disconnect: %w", err))
		}
	}
	return exitOK
}

// publishLines publishes each line of in, without its line ending, until
// end of input.
func publishLines(ctx context.Context, c *mqttsn.Client, in io.Reader, topic mqttsn.Topic, qos mqttsn.QoS, retain bool) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 4096), maxLineLen)
	for sc.Scan() {
		if err := c.Publish(ctx, topic, sc.Bytes(), qos, retain); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read standard input: %w", err)
	}
	return nil
}
