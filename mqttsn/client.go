package mqttsn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for ClientConfig fields left zero. Tretry and Nretry follow the
// specification's best practice (§7.2: 10-15 s and 3-5).
const (
	DefaultKeepAlive     = 60 * time.Second
	DefaultRetryInterval = 10 * time.Second
	DefaultMaxRetries    = 3
)

// Client errors. Failures of one request are wrapped in a *RequestError.
var (
	ErrNotConnected   = errors.New("mqttsn: not connected")
	ErrAsleep         = errors.New("mqttsn: client is asleep; Connect first")
	ErrConnectionLost = errors.New("mqttsn: connection to the gateway lost")
	ErrClosed         = errors.New("mqttsn: client closed")
	ErrNoAnswer       = errors.New("no answer from the gateway")
)

// Will is the message the gateway publishes for a client it loses.
type Will struct {
	Topic   string
	Message []byte
	QoS     QoS
	Retain  bool
}

// ClientConfig configures a Client. The zero value of every field but
// ClientID is usable.
type ClientConfig struct {
	ClientID     string
	KeepAlive    time.Duration // Duration sent in CONNECT; 0 uses DefaultKeepAlive, <0 sends 0 (no pings)
	CleanSession bool          // false keeps subscriptions and topic ids across connections
	Will         *Will         // nil: no will

	RetryInterval time.Duration // Tretry; 0 uses DefaultRetryInterval
	MaxRetries    int           // Nretry, resends before giving up; 0 uses DefaultMaxRetries, <0 none

	// PredefinedTopics names the predefined topic ids the client shares with
	// its gateway, so that incoming messages on them carry a topic name.
	PredefinedTopics map[uint16]string

	// OnMessage receives every application message from the gateway. It is
	// called on the client's receive goroutine, before the message is
	// acknowledged, so it must not call blocking Client methods.
	OnMessage func(Message)

	// OnConnectionLost is called once when the gateway stops answering or
	// disconnects the client unasked.
	OnConnectionLost func(error)

	Logger *slog.Logger // nil: discard
}

// Message is an application message received from the gateway.
type Message struct {
	Topic       string // the topic name; "" for a predefined id without a known name
	TopicIDType TopicIDType
	TopicID     uint16
	Payload     []byte
	QoS         QoS
	Retain      bool
	Duplicate   bool
}

type clientState int

const (
	stateDisconnected clientState = iota
	stateActive
	stateAsleep
	stateAwake
	stateLost
)

// Client is an MQTT-SN v1.2 client of one gateway. Its methods are safe for
// concurrent use; the specification's "one at a time" rules (one REGISTER,
// one SUBSCRIBE or UNSUBSCRIBE and one QoS 1/2 PUBLISH open at once) are kept
// by making concurrent callers of the same kind wait their turn.
type Client struct {
	cfg ClientConfig
	tr  Transport
	log *slog.Logger

	ctx    context.Context // the client's lifetime; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// One slot per kind of exchange that may be open at once.
	connSlot, regSlot, subSlot, pubSlot, pingSlot, willTopicSlot, willMsgSlot chan struct{}

	mu       sync.Mutex
	state    clientState
	session  context.Context // lives while connected (active, asleep or awake)
	endSess  context.CancelCauseFunc
	waiters  []*waiter
	usedIDs  map[uint16]bool
	nextID   uint16
	qos2In   map[uint16]bool // incoming QoS 2 message ids between PUBREC and PUBREL
	topics   topicTable
	writeErr error // last transport error, to explain a missing answer

	lastSent atomic.Int64 // unix nanos of the last message sent
	lastRecv atomic.Int64 // unix nanos of the last message received
}

// Dial connects a UDP transport to the gateway at addr and returns a client
// on it. Call Connect to open the MQTT-SN session.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	tr, err := DialUDP(ctx, addr)
	if err != nil {
		return nil, err
	}
	return NewClient(tr, cfg), nil
}

// NewClient returns a client that talks over tr, which it owns and closes on
// Close. It starts the receive goroutine at once, so that a client can take
// QoS -1 messages or answer a gateway before it connects.
func NewClient(tr Transport, cfg ClientConfig) *Client {
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultMaxRetries
	} else if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:     cfg,
		tr:      tr,
		log:     log.With("client", cfg.ClientID),
		usedIDs: make(map[uint16]bool),
		qos2In:  make(map[uint16]bool),
		topics:  newTopicTable(cfg.PredefinedTopics),
	}
	for _, s := range []*chan struct{}{&c.connSlot, &c.regSlot, &c.subSlot, &c.pubSlot, &c.pingSlot, &c.willTopicSlot, &c.willMsgSlot} {
		*s = make(chan struct{}, 1)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.session, c.endSess = context.WithCancelCause(c.ctx)
	c.endSess(ErrNotConnected)
	c.wg.Add(1)
	go c.receive()
	return c
}

// Close stops the client without telling the gateway (use Disconnect first
// for a clean end) and closes the transport.
func (c *Client) Close() error {
	c.cancel()
	err := c.tr.Close()
	c.wg.Wait()
	return err
}

// Connected reports whether the client has an active session.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateActive
}

// send encodes p and writes it as one message.
func (c *Client) send(p Packet) error {
	b, err := Marshal(p)
	if err != nil {
		return err
	}
	if _, err := c.tr.Write(b); err != nil {
		c.mu.Lock()
		c.writeErr = err
		c.mu.Unlock()
		return fmt.Errorf("mqttsn: send %v: %w", p.Type(), err)
	}
	c.lastSent.Store(time.Now().UnixNano())
	return nil
}

// acquire takes one of the client's exchange slots, waiting for the exchange
// of the same kind that is open.
func acquire(ctx context.Context, slot chan struct{}) error {
	select {
	case slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func release(slot chan struct{}) { <-slot }

// allocID returns a message id that no open exchange uses (1..65535).
func (c *Client) allocID() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if !c.usedIDs[c.nextID] {
			c.usedIDs[c.nextID] = true
			return c.nextID
		}
	}
}

func (c *Client) freeID(id uint16) {
	c.mu.Lock()
	delete(c.usedIDs, id)
	c.mu.Unlock()
}

// sessionContext returns the context of the current connection, or an error
// when the client is not in one of the given states.
func (c *Client) sessionContext(allowed ...clientState) (context.Context, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range allowed {
		if c.state == s {
			return c.session, nil
		}
	}
	switch c.state {
	case stateAsleep, stateAwake:
		return nil, ErrAsleep
	case stateLost:
		return nil, ErrConnectionLost
	}
	return nil, ErrNotConnected
}

// startSession moves to the active state with a fresh connection context.
func (c *Client) startSession() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endSess(nil)
	c.session, c.endSess = context.WithCancelCause(c.ctx)
	c.state = stateActive
	return c.session
}

func (c *Client) setState(s clientState) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

// endSession leaves the connected states; cause is what open exchanges and
// Connection methods will report.
func (c *Client) endSession(s clientState, cause error) {
	c.mu.Lock()
	was := c.state
	c.state = s
	c.endSess(cause)
	c.mu.Unlock()
	if s == stateLost && was != stateLost && was != stateDisconnected && c.cfg.OnConnectionLost != nil {
		c.cfg.OnConnectionLost(cause)
	}
}

// RemoteAddr returns the gateway's address when the transport knows it.
func (c *Client) RemoteAddr() net.Addr {
	if ra, ok := c.tr.(interface{ RemoteAddr() net.Addr }); ok {
		return ra.RemoteAddr()
	}
	return nil
}
