package hw

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/hw/serial"
	"github.com/sngate/sngate/hw/xbee"
)

// atTimeout bounds the wait for the radio's answer to one AT command.
const atTimeout = 2 * time.Second

// atTries is how often the start-up check asks before giving up.
const atTries = 3

// rxBuffer bounds the radio's messages waiting for the gateway.
const rxBuffer = 256

// DefaultWatchInterval is how often the radio's answers are checked: a
// radio that confirms none of the frames sent to it for two intervals in a
// row has stopped answering.
const DefaultWatchInterval = 5 * time.Second

// XBeeOptions are the radio's optional parts.
type XBeeOptions struct {
	// Reset pulses the radio's reset line (hw/gpio), at start and when
	// the radio stops answering; nil: no reset line.
	Reset func(context.Context) error
	// WatchInterval: see DefaultWatchInterval (tests shorten it).
	WatchInterval time.Duration
	// Release, if set, is called by Close to free what Reset uses (the
	// GPIO line).
	Release func() error
}

// XBee is a Digi XBee radio (Zigbee firmware, API mode) on a serial port,
// as a gateway transport: each remote radio, by its 64-bit address, is one
// MQTT-SN peer. Messages go out in Transmit Request frames (0x10) whose
// frame ids cycle 1..255, so that the radio answers each with a Transmit
// Status (0x8B), which is counted; they come in as Receive Packet (0x90)
// or Explicit Rx Indicator (0x91) frames.
type XBee struct {
	port    *serial.Port
	name    string
	escaped bool
	log     *slog.Logger
	reader  *xbee.Reader

	rx  chan xbee.Receive     // data frames for Receive
	at  chan xbee.ATResponse  // answers to AT commands
	end chan struct{}         // closed when the reader goroutine ends
	err atomic.Pointer[error] // why it ended

	wmu  sync.Mutex
	wbuf []byte
	ids  xbee.FrameIDs

	mu     sync.Mutex
	shorts map[uint64]uint16 // each radio's last known 16-bit network address

	sent, sendErrors, delivered, undelivered, dropped, resets atomic.Uint64

	opts      XBeeOptions
	closeOnce sync.Once
	stop      chan struct{} // closed by Close: ends the watchdog
	watched   chan struct{} // closed when the watchdog has ended
}

// NewXBee checks the radio on port (AT AP and AO must match cfg) and
// serves it. The check failing is an error: a radio in the wrong mode
// would otherwise look like a dead line.
func NewXBee(ctx context.Context, name string, port *serial.Port, cfg XBeeConfig, opts XBeeOptions, log *slog.Logger) (*XBee, error) {
	mode := cfg.APIMode
	if mode == 0 {
		mode = DefaultAPIMode
	}
	x := &XBee{
		port:    port,
		name:    name,
		escaped: mode == 2,
		log:     log,
		rx:      make(chan xbee.Receive, rxBuffer),
		at:      make(chan xbee.ATResponse, 4),
		end:     make(chan struct{}),
		shorts:  make(map[uint64]uint16),
		opts:    opts,
		stop:    make(chan struct{}),
		watched: make(chan struct{}),
	}
	if x.opts.WatchInterval <= 0 {
		x.opts.WatchInterval = DefaultWatchInterval
	}
	x.reader = xbee.NewReader(port, x.escaped)
	go x.read()
	err := x.reset(ctx, "start")
	if err == nil {
		err = x.check(ctx, mode, cfg.APIOptions)
	}
	if err != nil {
		port.Close()
		<-x.end
		if opts.Release != nil {
			opts.Release()
		}
		return nil, fmt.Errorf("xbee %s: %w", name, err)
	}
	go x.watch()
	return x, nil
}

// reset pulses the reset line, if there is one, and gives the radio a
// moment to start again.
func (x *XBee) reset(ctx context.Context, why string) error {
	if x.opts.Reset == nil {
		return nil
	}
	x.resets.Add(1)
	x.log.Info("resetting the xbee radio", "why", why)
	if err := x.opts.Reset(ctx); err != nil {
		return fmt.Errorf("reset the radio: %w", err)
	}
	return nil
}

// watch resets a radio that has stopped confirming what is sent to it
// (no Transmit Status for two intervals while frames went out).
func (x *XBee) watch() {
	defer close(x.watched)
	t := time.NewTicker(x.opts.WatchInterval)
	defer t.Stop()
	lastSent, lastAnswered := x.sent.Load(), x.delivered.Load()+x.undelivered.Load()
	silent := 0
	for {
		select {
		case <-x.stop:
			return
		case <-t.C:
		}
		sent, answered := x.sent.Load(), x.delivered.Load()+x.undelivered.Load()
		switch {
		case answered != lastAnswered:
			silent = 0
		case sent != lastSent:
			silent++
		}
		lastSent, lastAnswered = sent, answered
		if silent >= 2 {
			silent = 0
			x.log.Warn("xbee radio stopped answering", "sent", sent, "answered", answered)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := x.reset(ctx, "not answering"); err != nil {
				x.log.Error("xbee reset failed", "err", err)
			}
			cancel()
		}
	}
}

// read runs the port: data frames to rx, AT answers to at, transmit
// status counted. It ends when the port is closed.
func (x *XBee) read() {
	defer close(x.end)
	for {
		f, err := x.reader.ReadFrame()
		if err != nil {
			if errors.Is(err, serial.ErrClosed) {
				x.err.Store(&err)
				return
			}
			continue // the reader has counted it and resynchronised
		}
		switch f := f.(type) {
		case *xbee.Receive:
			x.deliver(*f)
		case *xbee.ExplicitReceive:
			x.deliver(xbee.Receive{Src: f.Src, Options: f.Options, Data: f.Data})
		case *xbee.TransmitStatus:
			if f.Delivery == 0 {
				x.delivered.Add(1)
			} else {
				x.undelivered.Add(1)
				x.log.Debug("xbee transmit failed", "frame_id", f.FrameID, "delivery_status", fmt.Sprintf("0x%02x", f.Delivery))
			}
		case *xbee.ATResponse:
			select {
			case x.at <- *f:
			default:
			}
		case *xbee.ModemStatus:
			x.log.Info("xbee modem status", "status", fmt.Sprintf("0x%02x", f.Status))
		}
	}
}

// deliver queues a received message (its frame is the caller's own) for the gateway, dropping (and
// counting) it when the gateway is that far behind.
func (x *XBee) deliver(r xbee.Receive) {
	x.mu.Lock()
	x.shorts[r.Src.Long] = r.Src.Short
	x.mu.Unlock()
	select {
	case x.rx <- r:
	default:
		x.dropped.Add(1)
	}
}

// check asks the radio for AP and AO and compares them with the config.
func (x *XBee) check(ctx context.Context, mode, options int) error {
	ap, err := x.atQuery(ctx, "AP")
	if err != nil {
		return err
	}
	if len(ap) != 1 || int(ap[0]) != mode {
		return fmt.Errorf("the radio is in API mode AP=%v, the configuration says api_mode: %d: set the radio (XCTU, ATAP) or the configuration", ap, mode)
	}
	ao, err := x.atQuery(ctx, "AO")
	if err != nil {
		return err
	}
	if len(ao) != 1 || int(ao[0]) != options {
		return fmt.Errorf("the radio has API options AO=%v, the configuration says api_options: %d", ao, options)
	}
	x.log.Info("xbee radio checked", "api_mode", mode, "api_options", options)
	return nil
}

// atQuery sends a local AT command (0x08) and waits for its answer (0x88).
func (x *XBee) atQuery(ctx context.Context, cmd string) ([]byte, error) {
	for try := 0; try < atTries; try++ {
		id := x.ids.Next()
		if err := x.write(&xbee.ATCommand{FrameID: id, Command: [2]byte{cmd[0], cmd[1]}}); err != nil {
			return nil, err
		}
		timeout := time.NewTimer(atTimeout)
		for waiting := true; waiting; {
			select {
			case r := <-x.at:
				if r.FrameID != id || r.Command != [2]byte{cmd[0], cmd[1]} {
					continue
				}
				timeout.Stop()
				if r.Status != 0 {
					return nil, fmt.Errorf("AT%s answered status %d", cmd, r.Status)
				}
				return r.Data, nil
			case <-timeout.C:
				waiting = false
			case <-ctx.Done():
				timeout.Stop()
				return nil, ctx.Err()
			case <-x.end:
				timeout.Stop()
				return nil, net.ErrClosed
			}
		}
	}
	return nil, fmt.Errorf("the radio does not answer AT%s (tried %d times): is it in API mode, at %s?", cmd, atTries, x.port)
}

// write sends one API frame.
func (x *XBee) write(f xbee.Frame) error {
	x.wmu.Lock()
	defer x.wmu.Unlock()
	b, err := xbee.Append(x.wbuf[:0], f, x.escaped)
	if err != nil {
		return err
	}
	x.wbuf = b
	_, err = x.port.Write(b)
	return err
}

// Receive returns the next message from a remote radio.
func (x *XBee) Receive(buf []byte) (int, gateway.Addr, error) {
	select {
	case r := <-x.rx:
		from := addrOf(r.Src.Long)
		if len(r.Data) > len(buf) {
			return 0, from, gateway.ErrTooLong
		}
		return copy(buf, r.Data), from, nil
	case <-x.end:
		return 0, "", net.ErrClosed
	}
}

// addrOf is the gateway address of a radio: its 64-bit address, which
// stays when the network gives it a new 16-bit one.
func addrOf(long uint64) gateway.Addr {
	const prefix = "xbee:"
	var b [len(prefix) + 16]byte
	copy(b[:], prefix)
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], long)
	hex.Encode(b[len(prefix):], be[:]) // "%016x", without fmt
	return gateway.Addr(b[:])
}

// Send transmits msg to one radio, at its last known 16-bit address.
func (x *XBee) Send(to gateway.Addr, msg []byte) error {
	s := string(to)
	if len(s) != len("xbee:")+16 {
		return fmt.Errorf("xbee %s: %q is not a radio address", x.name, s)
	}
	long, err := strconv.ParseUint(s[len("xbee:"):], 16, 64)
	if err != nil {
		return fmt.Errorf("xbee %s: %q is not a radio address", x.name, s)
	}
	x.mu.Lock()
	short, ok := x.shorts[long]
	x.mu.Unlock()
	if !ok {
		short = xbee.UnknownShort // the radio looks it up
	}
	return x.transmit(xbee.Address{Long: long, Short: short}, msg)
}

// Paced: the radios share the port's baud rate, which bounds them
// (gateway.Paced).
func (x *XBee) Paced() bool { return true }

// Broadcast transmits msg to every radio (ADVERTISE, GWINFO).
func (x *XBee) Broadcast(msg []byte) error { return x.transmit(xbee.Broadcast(), msg) }

func (x *XBee) transmit(to xbee.Address, msg []byte) error {
	// Counted before the write: the radio's status may come back before
	// the write returns.
	x.sent.Add(1)
	err := x.write(&xbee.TransmitRequest{FrameID: x.ids.Next(), Dest: to, Data: msg})
	if err != nil {
		x.sent.Add(^uint64(0))
		x.sendErrors.Add(1)
		return fmt.Errorf("xbee %s: %w", x.name, err)
	}
	return nil
}

// Close closes the port, which ends the reader and a blocked Receive.
func (x *XBee) Close() error {
	x.closeOnce.Do(func() { close(x.stop) })
	err := x.port.Close()
	<-x.end
	<-x.watched
	if x.opts.Release != nil {
		err = errors.Join(err, x.opts.Release())
	}
	return err
}

func (x *XBee) String() string {
	mode := 1
	if x.escaped {
		mode = 2
	}
	return fmt.Sprintf("xbee %s (%s, API mode %d)", x.name, x.port, mode)
}

// Name is the port's configured name.
func (x *XBee) Name() string { return x.name }

// XBeeStats are a radio's counters, for metrics.
type XBeeStats struct {
	Frames      xbee.Stats
	Port        serial.State
	Sent        uint64 // transmit requests written
	SendErrors  uint64 // not written (port down)
	Delivered   uint64 // transmit status 0x00
	Undelivered uint64 // transmit status other than 0x00
	Dropped     uint64 // received while the gateway was behind
	Resets      uint64 // reset pulses (at start, and when the radio stopped answering)
}

// Stats returns the radio's counters.
func (x *XBee) Stats() XBeeStats {
	return XBeeStats{
		Frames: x.reader.Stats(), Port: x.port.State(),
		Sent: x.sent.Load(), SendErrors: x.sendErrors.Load(),
		Delivered: x.delivered.Load(), Undelivered: x.undelivered.Load(), Dropped: x.dropped.Load(),
		Resets: x.resets.Load(),
	}
}
