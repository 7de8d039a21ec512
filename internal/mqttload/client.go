// Package mqttload is a load generator for MQTT 3.1.1 brokers: a small, fast
// client on broker/packets and the benchmarks sngate bench runs with it.
//
// A Client writes through a buffer that is flushed when it fills, when the
// publisher is about to wait (for its in-flight window or its rate) and, for
// the acknowledgements its reader queues, just before the reader blocks for
// more input. One reader goroutine per connection handles everything the
// broker sends. Run measures throughput and end-to-end latency (publishers
// put a timestamp in each payload) between publishers and subscribers;
// OpenIdle opens idle connections to measure a broker's memory per client.
package mqttload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// Options configure Dial.
type Options struct {
	ClientID string
	// KeepAlive is sent in CONNECT; when positive the client sends a
	// PINGREQ every KeepAlive/2 once Start has been called.
	KeepAlive time.Duration
	// Timeout bounds the TCP connect and every handshake (CONNACK,
	// SUBACK). Default 10s.
	Timeout time.Duration
	// ReadBuffer is the packet reader's buffer. Default 64 KiB.
	ReadBuffer int
	// FlushSize is how many buffered bytes make Publish write them out.
	// Default 16 KiB.
	FlushSize int
}

// Defaults for zero Options fields.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultReadBuffer = 64 << 10
	DefaultFlushSize  = 16 << 10
)

// Client is one MQTT 3.1.1 connection with a clean session. Publish,
// Flush and Disconnect may be called from any goroutine; the handlers given
// to Start run on the reader goroutine.
type Client struct {
	nc        net.Conn
	r         *packets.Reader
	flushSize int
	keepAlive time.Duration
	timeout   time.Duration

	wmu  sync.Mutex
	wbuf []byte
	werr error // sticky write error

	// Reader goroutine only.
	ackQueued bool // an acknowledgement waits in wbuf
	pub       packets.PublishPacket

	onPublish func(p *packets.PublishPacket)
	onPuback  func(id uint16)
	started   bool
	done      chan struct{} // closed when the reader ends
	rerr      error         // why it ended; read after done
}

// ConnackError is a CONNACK refusing the connection.
type ConnackError struct{ Code byte }

func (e *ConnackError) Error() string {
	reason := "reserved code"
	switch e.Code {
	case packets.ConnRefusedProtocolLevel:
		reason = "unacceptable protocol version"
	case packets.ConnRefusedIdentifierRejected:
		reason = "identifier rejected"
	case packets.ConnRefusedServerUnavailable:
		reason = "server unavailable"
	case packets.ConnRefusedBadUsernamePassword:
		reason = "bad user name or password"
	case packets.ConnRefusedNotAuthorized:
		reason = "not authorized"
	}
	return fmt.Sprintf("connection refused: CONNACK code %d (%s)", e.Code, reason)
}

// Dial connects to the broker at addr and completes CONNECT/CONNACK.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ReadBuffer <= 0 {
		opts.ReadBuffer = DefaultReadBuffer
	}
	if opts.FlushSize <= 0 {
		opts.FlushSize = DefaultFlushSize
	}
	d := net.Dialer{Timeout: opts.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Client{
		nc:        nc,
		flushSize: opts.FlushSize,
		keepAlive: opts.KeepAlive,
		timeout:   opts.Timeout,
		wbuf:      make([]byte, 0, opts.FlushSize+4096),
		done:      make(chan struct{}),
	}
	c.r = packets.NewReaderSize(flushReader{c}, 0, opts.ReadBuffer)
	ka := opts.KeepAlive / time.Second
	if ka > 65535 {
		ka = 65535
	}
	connect := packets.ConnectPacket{CleanSession: true, KeepAlive: uint16(ka), ClientID: opts.ClientID}
	if err := c.handshake(ctx, connect.Append(nil), func(fh packets.FixedHeader, body []byte) (bool, error) {
		if fh.Type != packets.TypeConnack {
			return false, fmt.Errorf("expected CONNACK, got %v", fh.Type)
		}
		var ca packets.ConnackPacket
		if err := ca.Decode(fh, body); err != nil {
			return false, err
		}
		if ca.ReturnCode != packets.ConnAccepted {
			return false, &ConnackError{ca.ReturnCode}
		}
		return true, nil
	}); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// handshake writes req and reads packets, giving each to answer, until
// answer reports done, all within the timeout. It is for the time before
// Start, when no reader goroutine runs.
func (c *Client) handshake(ctx context.Context, req []byte, answer func(packets.FixedHeader, []byte) (bool, error)) error {
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetDeadline(deadline)
	defer func() { _ = c.nc.SetDeadline(time.Time{}) }()
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.nc.Write(req); err != nil {
		return err
	}
	for range 1000 { // packets ahead of the answer: retained messages at most
		fh, body, err := c.r.ReadPacket()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		done, err := answer(fh, body)
		if err != nil || done {
			return err
		}
	}
	return errors.New("no answer among the first 1000 packets")
}

// Subscribe subscribes to filter at qos and waits for the SUBACK. Call it
// before Start. A retained message arriving first is dropped (and
// acknowledged at QoS 1).
func (c *Client) Subscribe(ctx context.Context, filter string, qos byte) error {
	if c.started {
		return errors.New("mqttload: Subscribe after Start")
	}
	const pid = 1
	sub := packets.SubscribePacket{PacketID: pid, Filters: []packets.Subscription{{Filter: filter, QoS: qos}}}
	return c.handshake(ctx, sub.Append(nil), func(fh packets.FixedHeader, body []byte) (bool, error) {
		switch fh.Type {
		case packets.TypePublish:
			var p packets.PublishPacket
			if err := p.Decode(fh, body); err != nil {
				return false, err
			}
			if p.QoS == 1 {
				_, err := c.nc.Write(packets.AppendAck(nil, packets.TypePuback, p.PacketID))
				return false, err
			}
			return false, nil
		case packets.TypeSuback:
			var sa packets.SubackPacket
			if err := sa.Decode(fh, body); err != nil {
				return false, err
			}
			switch {
			case sa.PacketID != pid:
				return false, fmt.Errorf("SUBACK for packet id %d, want %d", sa.PacketID, pid)
			case len(sa.ReturnCodes) != 1:
				return false, fmt.Errorf("SUBACK with %d return codes, want 1", len(sa.ReturnCodes))
			case sa.ReturnCodes[0] == packets.SubackFailure:
				return false, fmt.Errorf("subscription to %q refused", filter)
			case sa.ReturnCodes[0] < qos:
				return false, fmt.Errorf("subscription to %q granted QoS %d, asked for %d", filter, sa.ReturnCodes[0], qos)
			}
			return true, nil
		}
		return false, fmt.Errorf("expected SUBACK, got %v", fh.Type)
	})
}

// Start starts the reader goroutine (and the keep-alive pinger). onPublish
// gets every PUBLISH, valid only during the call; QoS 1 messages are
// acknowledged after it returns. onPuback gets the packet id of every
// PUBACK. Either may be nil.
func (c *Client) Start(onPublish func(*packets.PublishPacket), onPuback func(id uint16)) {
	c.onPublish, c.onPuback = onPublish, onPuback
	c.started = true
	go c.readLoop()
	if c.keepAlive > 0 {
		go c.pinger()
	}
}

// Done is closed when the reader goroutine has ended: the connection
// closed or the broker sent something unexpected (see Err).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the reader ended, after Done is closed; nil after Close
// or a clean end of stream.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.rerr
	default:
		return nil
	}
}

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		fh, body, err := c.r.ReadPacket()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.rerr = err
			}
			c.nc.Close()
			return
		}
		if err := c.handle(fh, body); err != nil {
			c.rerr = err
			c.nc.Close()
			return
		}
	}
}

func (c *Client) handle(fh packets.FixedHeader, body []byte) error {
	switch fh.Type {
	case packets.TypePublish:
		if err := c.pub.Decode(fh, body); err != nil {
			return err
		}
		if c.onPublish != nil {
			c.onPublish(&c.pub)
		}
		switch c.pub.QoS {
		case 1:
			c.queueAck(packets.TypePuback, c.pub.PacketID)
		case 2:
			return errors.New("mqttload: QoS 2 PUBLISH received; only QoS 0 and 1 are supported")
		}
		return nil
	case packets.TypePuback:
		var a packets.PubackPacket
		if err := a.Decode(fh, body); err != nil {
			return err
		}
		if c.onPuback != nil {
			c.onPuback(a.PacketID)
		}
		return nil
	case packets.TypePingresp:
		return nil
	}
	return fmt.Errorf("mqttload: unexpected %v from the broker", fh.Type)
}

// queueAck buffers an acknowledgement; flushReader writes it before the
// reader next waits for input, so that a burst of messages is answered with
// one write.
func (c *Client) queueAck(t packets.Type, id uint16) {
	c.wmu.Lock()
	c.wbuf = packets.AppendAck(c.wbuf, t, id)
	if len(c.wbuf) >= c.flushSize {
		c.flushLocked()
	}
	c.wmu.Unlock()
	c.ackQueued = true
}

// flushReader is the packet reader's source: it flushes queued
// acknowledgements before reading from the connection.
type flushReader struct{ c *Client }

func (f flushReader) Read(p []byte) (int, error) {
	if c := f.c; c.ackQueued {
		c.ackQueued = false
		_ = c.Flush()
	}
	return f.c.nc.Read(p)
}

func (c *Client) pinger() {
	t := time.NewTicker(c.keepAlive / 2)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			c.wmu.Lock()
			c.wbuf = (&packets.PingreqPacket{}).Append(c.wbuf)
			c.flushLocked()
			c.wmu.Unlock()
		}
	}
}

// Publish buffers a PUBLISH and writes the buffer out once it holds
// FlushSize bytes. For QoS 1 the caller chooses the packet id (NextID) and
// keeps count of the window. It returns the first write error of the
// connection.
func (c *Client) Publish(topic string, qos byte, pid uint16, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	c.wbuf = packets.AppendPublish(c.wbuf, false, qos, false, topic, pid, payload)
	if len(c.wbuf) >= c.flushSize {
		c.flushLocked()
	}
	return c.werr
}

// Flush writes out whatever is buffered.
func (c *Client) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.flushLocked()
	return c.werr
}

func (c *Client) flushLocked() {
	if len(c.wbuf) == 0 || c.werr != nil {
		c.wbuf = c.wbuf[:0]
		return
	}
	_, err := c.nc.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if err != nil {
		c.werr = err
	}
}

// Disconnect sends what is buffered and DISCONNECT, then closes the
// connection and waits (within the timeout) for the reader to end.
func (c *Client) Disconnect() error {
	c.wmu.Lock()
	if c.werr == nil {
		c.wbuf = (&packets.DisconnectPacket{}).Append(c.wbuf)
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
		c.flushLocked()
	}
	err := c.werr
	c.wmu.Unlock()
	c.Close()
	return err
}

// Close closes the connection and waits for the reader goroutine to end.
func (c *Client) Close() {
	c.nc.Close()
	if c.started {
		<-c.done
	}
}
