// Package hw makes serial lines and XBee radios transports of the MQTT-SN
// gateway (gateway.Transport), on the serial ports of hw/serial and the
// framings of hw/frame and hw/xbee.
//
// A point-to-point line (raw or SLIP framing) is one peer; a line that
// carries 0xFE forwarder encapsulations is many, which the gateway tells
// apart by node id. On an XBee line each radio, by its 64-bit address, is
// one peer.
package hw

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/hw/frame"
	"github.com/sngate/sngate/hw/gpio"
	"github.com/sngate/sngate/hw/serial"
)

// frameReader is what the raw and SLIP readers have in common.
type frameReader interface {
	ReadFrame(buf []byte) (int, error)
	Stats() frame.Stats
}

// Line is a serial line carrying MQTT-SN messages in raw or SLIP framing,
// as a gateway transport. Its one peer is the device at the other end (or
// the forwarder there).
type Line struct {
	port    *serial.Port
	name    string
	framing string
	reader  frameReader
	addr    gateway.Addr

	wmu  sync.Mutex
	wbuf []byte

	sent, sendErrors atomic.Uint64
}

// Framings of a Line.
const (
	FramingRaw  = "raw"
	FramingSLIP = "slip"
	FramingXBee = "xbee"
)

// NewLine serves MQTT-SN over port in the given framing (raw or slip).
func NewLine(name string, port *serial.Port, framing string) (*Line, error) {
	l := &Line{port: port, name: name, framing: framing, addr: gateway.Addr("serial:" + name)}
	switch framing {
	case FramingRaw:
		l.reader = frame.NewRawReader(port, frame.RawOptions{})
	case FramingSLIP:
		l.reader = frame.NewSLIPReader(port)
	default:
		return nil, fmt.Errorf("serial %s: framing %q is not raw or slip", name, framing)
	}
	return l, nil
}

// Receive reads the next message from the line.
func (l *Line) Receive(buf []byte) (int, gateway.Addr, error) {
	for {
		n, err := l.reader.ReadFrame(buf)
		switch {
		case err == nil:
			if n == 0 {
				continue
			}
			return n, l.addr, nil
		case errors.Is(err, frame.ErrTooLong):
			return 0, l.addr, gateway.ErrTooLong
		case errors.Is(err, serial.ErrClosed):
			return 0, "", net.ErrClosed
		}
		// Anything else is the port's to recover from (it reopens itself);
		// the reader has resynchronised.
	}
}

// Send writes one message to the line. While the port is down it fails at
// once: the gateway's retries, or the sensor's, make up for it.
func (l *Line) Send(to gateway.Addr, msg []byte) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.framing == FramingSLIP {
		l.wbuf = frame.AppendSLIP(l.wbuf[:0], msg)
	} else {
		l.wbuf = frame.AppendRaw(l.wbuf[:0], msg)
	}
	if _, err := l.port.Write(l.wbuf); err != nil {
		l.sendErrors.Add(1)
		return fmt.Errorf("serial %s: %w", l.name, err)
	}
	l.sent.Add(1)
	return nil
}

// Paced: the line's baud rate bounds the sender, not the gateway's
// packets_per_second (gateway.Paced).
func (l *Line) Paced() bool { return true }

// Broadcast sends to the line: everything on it hears everything.
func (l *Line) Broadcast(msg []byte) error { return l.Send(l.addr, msg) }

// Close closes the port, which ends a blocked Receive.
func (l *Line) Close() error { return l.port.Close() }

func (l *Line) String() string { return fmt.Sprintf("serial %s (%s, %s)", l.name, l.port, l.framing) }

// Name is the port's configured name.
func (l *Line) Name() string { return l.name }

// Framing is raw or slip.
func (l *Line) Framing() string { return l.framing }

// LineStats are a line's counters, for metrics.
type LineStats struct {
	Frame      frame.Stats
	Port       serial.State
	Sent       uint64
	SendErrors uint64
}

// Stats returns the line's counters.
func (l *Line) Stats() LineStats {
	return LineStats{Frame: l.reader.Stats(), Port: l.port.State(), Sent: l.sent.Load(), SendErrors: l.sendErrors.Load()}
}

// Open opens the port of pc and returns its transport. The gateway closes
// it (Transport.Close) when it shuts down.
func Open(ctx context.Context, pc PortConfig, log *slog.Logger) (gateway.Transport, error) {
	port, err := serial.Open(ctx, pc.Config, log)
	if err != nil {
		return nil, fmt.Errorf("serial %s: %w", pc.Name, err)
	}
	var tr gateway.Transport
	switch pc.Framing {
	case FramingXBee:
		var opts XBeeOptions
		if pc.GPIO.Enabled() {
			g, err := gpio.Open(pc.GPIO, gpio.Options{Log: log})
			if err != nil {
				port.Close()
				return nil, fmt.Errorf("serial %s: %w", pc.Name, err)
			}
			opts.Reset, opts.Release = g.PulseReset, g.Close
		}
		tr, err = NewXBee(ctx, pc.Name, port, pc.XBee, opts, log)
	default:
		tr, err = NewLine(pc.Name, port, pc.Framing)
	}
	if err != nil {
		port.Close()
		return nil, err
	}
	return tr, nil
}
