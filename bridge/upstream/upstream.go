// Package upstream connects a bridge to its upstream (cloud) MQTT broker:
// one Client interface with two implementations, MQTT 5 on
// github.com/eclipse/paho.golang and MQTT 3.1.1 on
// github.com/eclipse/paho.mqtt.golang.
//
// Durability is not kept here. The caller holds a durable queue, and this
// package tells it, per message, whether the upstream acknowledged it
// (onDone(nil)), refused it (an error matching ErrRefused: drop it), or may
// not have got it (ErrNotAcknowledged: send it again). Session state (packet
// identifiers, in-flight messages) lives in memory for the run; neither
// library's file store is used since they do not fsync.
//
// The caller owns reconnecting: Connect makes one attempt, Lost tells when
// the connection ends, and Connect is called again on the same Client
// (neither library's automatic reconnect is enabled), so that the session
// state, and with it retransmission on a resumed session, spans the run.
//
// # Sessions
//
// A Client's first connection always starts a new upstream session: the
// packet identifier state of a previous run is gone, and the upstream may
// still hold a QoS 2 packet identifier awaiting PUBREL from it, which would
// make it swallow a new QoS 2 PUBLISH reusing that identifier (MQTT 4.3.3).
// MQTT 5 connects with Clean Start and the configured Session Expiry;
// MQTT 3.1.1 with CleanStart false first connects with a clean session and
// disconnects, to discard the old session, and then connects with a
// persistent one. Either way, what the upstream had queued for the previous
// run's subscriptions is discarded. Later connections use Config.CleanStart.
//
// # Acknowledgements across connection loss
//
// MQTT 5: a QoS 1 or 2 message not yet acknowledged when the connection
// ends stays pending while the session can be resumed (Session Expiry > 0).
// If the next CONNACK has Session Present, paho.golang retransmits it (or
// its PUBREL) first, before Connect returns, and its onDone follows the
// acknowledgement; otherwise its onDone gets ErrNotAcknowledged before
// Connect returns. With Session Expiry 0 it gets ErrNotAcknowledged before
// Lost is closed.
//
// MQTT 3.1.1 with CleanStart false: pending messages stay in the library's
// in-memory store and it sends them again (DUP) on the next successful
// Connect whether or not the upstream kept the session, before Connect
// returns; onDone follows their acknowledgement. With CleanStart true they
// get ErrNotAcknowledged before Lost is closed.
//
// MQTT 3.1.1 keeps no PUBREL in its store: a QoS 2 message whose PUBREC
// arrived is sent again as a DUP PUBLISH, which the upstream (still holding
// its packet identifier) answers with PUBREC without delivering it twice.
//
// Both: Close gives every pending message ErrNotAcknowledged.
//
// # Received messages
//
// Subscriptions deliver to Config.OnMessage. A QoS 1 or 2 message is
// acknowledged upstream only when the caller calls its ack, and
// acknowledgements go out in receive order. A message not acknowledged
// when the connection ends comes again on a resumed session: the caller
// sees duplicates, never a loss.
//
// # Logs
//
// The adapters and paho.golang log to Config.Logger at debug level.
// paho.mqtt.golang has process-wide loggers only: SetMQTT311LibraryLogger.
package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"time"
)

// Protocol selects the MQTT version, and with it the library.
type Protocol string

const (
	MQTT5   Protocol = "mqtt5"   // github.com/eclipse/paho.golang
	MQTT311 Protocol = "mqtt311" // github.com/eclipse/paho.mqtt.golang
)

// Defaults for zero Config fields.
const (
	DefaultKeepAlive      = 60 * time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultMaxInflight    = 20
)

// Config configures a Client.
type Config struct {
	Protocol Protocol
	// URL is the upstream: mqtt://, mqtts://, ws:// or wss:// (tcp:// is an
	// alias of mqtt://, ssl:// and tls:// of mqtts://). Default ports are
	// 1883, 8883, 80 and 443. A ws(s) URL's path is used as given (most
	// brokers want "/mqtt").
	URL *url.URL
	// TLS is used for mqtts:// and wss:// (nil: system roots, server name
	// from the URL). It is cloned, never modified. Setting it for a
	// plain-text URL is an error, so that a configuration mistake cannot
	// silently send credentials in the clear.
	TLS *tls.Config

	ClientID string // required: sessions are keyed by it
	Username string
	Password string // never logged

	// KeepAlive is the MQTT keep alive (0: DefaultKeepAlive), whole
	// seconds, at most 65535s. A write blocked for 1.5 times this long ends
	// the connection: the upstream considers the client gone by then.
	KeepAlive time.Duration
	// CleanStart is used for every connection but the first (see the
	// package documentation).
	CleanStart bool
	// SessionExpiry is the MQTT 5 Session Expiry Interval (whole seconds;
	// math.MaxUint32 seconds means never). Must be 0 for MQTT 3.1.1, whose
	// persistent sessions do not expire.
	SessionExpiry time.Duration
	// MaxInflight bounds the QoS 1 and 2 messages sent and not yet
	// acknowledged, for MQTT 3.1.1 (0: DefaultMaxInflight); Publish waits
	// for room. MQTT 3.1.1 has no Receive Maximum, but brokers have limits:
	// mosquitto drops a client with more than max_inflight_messages (20 by
	// default) QoS 2 messages awaiting PUBREL, AWS IoT allows 100
	// unacknowledged messages. MQTT 5 uses the upstream's Receive Maximum
	// instead; setting this for MQTT 5 is an error.
	MaxInflight int
	// ConnectTimeout bounds one Connect: dial, TLS, WebSocket upgrade,
	// CONNECT/CONNACK and SUBSCRIBE/SUBACK (0: DefaultConnectTimeout).
	ConnectTimeout time.Duration

	// Logger receives the adapter's and paho.golang's logs, at debug level
	// (nil: slog.Default()). paho.mqtt.golang only has process-wide
	// loggers: see SetMQTT311LibraryLogger.
	Logger *slog.Logger

	// OnMessage receives each message of the subscriptions, in the order
	// received, from the library's goroutine; it should hand the message
	// off quickly (it holds up the reading of later messages). ack must be
	// called exactly once, from any goroutine, when the caller has the
	// message durably; only then is it acknowledged upstream. Calls out of
	// order are fine: acknowledgements go upstream in receive order (ack
	// may block briefly while one is written). An ack for a message of a
	// connection that has ended is dropped, and the upstream sends the
	// message again on a resumed session. Without OnMessage, messages are
	// acknowledged and dropped.
	OnMessage func(m Message, ack func())
}

// Message is one application message.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// Subscription is one topic filter to subscribe to on each Connect.
type Subscription struct {
	Filter string
	QoS    byte
}

var (
	// ErrNotAcknowledged is given (wrapped) to onDone when the message may
	// not have reached the upstream, and the caller must send it again.
	ErrNotAcknowledged = errors.New("upstream: message not acknowledged")
	// ErrRefused is matched by the errors given to onDone when the upstream
	// refused the message (MQTT 5 reason code >= 0x80) or it can never be
	// sent to this upstream; sending it again would not help. See
	// RefusedError.
	ErrRefused = errors.New("upstream: message refused")
	// ErrNotConnected is returned (wrapped) by Publish when there is no
	// connection, and by Err before the first Connect.
	ErrNotConnected = errors.New("upstream: not connected")
	// ErrClosed is returned (wrapped) after Close.
	ErrClosed = errors.New("upstream: client closed")
)

// RefusedError is an upstream's refusal of a message or subscription.
type RefusedError struct {
	// Reason is the MQTT 5 reason code; for MQTT 3.1.1, the CONNACK return
	// code or 0x80 (SUBACK failure); 0x80 also for messages refused
	// locally.
	Reason byte
	Text   string // reason string or description
}

func (e *RefusedError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("refused: reason code 0x%02x", e.Reason)
	}
	return fmt.Sprintf("refused: reason code 0x%02x: %s", e.Reason, e.Text)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Client is one bridge connection's upstream client. It lives for the whole
// run of sngate and is reconnected by the caller (who owns the backoff).
// All methods may be called from any goroutine.
type Client interface {
	// Connect makes one connection attempt: dial (TCP, TLS, WebSocket) and
	// CONNECT/CONNACK, within ctx and Config.ConnectTimeout, and reports
	// whether the upstream had a session. It then subscribes to subs (every
	// time, which is idempotent), failing and closing the connection if any
	// is refused. It fails if a connection is up (wait for Lost first) or
	// after Close. When it returns, onDone has been called for every
	// message the new session made final (see the package documentation).
	Connect(ctx context.Context, subs []Subscription) (sessionPresent bool, err error)

	// Subscribe and Unsubscribe change the subscriptions of the current
	// connection, for rules reloaded while it is up (the caller passes
	// the new list to the next Connect). They fail with ErrNotConnected
	// when there is none, and with a RefusedError for a refused filter.
	Subscribe(ctx context.Context, subs []Subscription) error
	Unsubscribe(ctx context.Context, filters []string) error

	// Publish sends m on the current connection. Calls go on the wire in
	// call order (calls from several goroutines are serialized). It returns
	// once the packet is written, or is in the library's session from
	// which it will be written or retransmitted. It may block for flow
	// control, bounded by ctx: MQTT 5 waits for a slot of the upstream's
	// Receive Maximum, MQTT 3.1.1 for room under Config.MaxInflight; and
	// while a write is blocked, bounded by the write timeout (1.5 times
	// KeepAlive; for MQTT 3.1.1, whose library takes no context, this
	// bounds handing the packet to its writer too). m.Payload is not
	// retained after Publish returns.
	//
	// It does not wait for the acknowledgement: onDone is called exactly
	// once, later, with nil when the upstream acknowledged m (QoS 0: once
	// written; QoS 1: PUBACK with reason < 0x80; QoS 2: PUBCOMP), with an
	// error matching ErrRefused when it refused m or m can never be sent
	// (invalid, or over the upstream's limits), or with an error matching
	// ErrNotAcknowledged when m may not have arrived and must be sent
	// again. onDone calls for one Client are made one at a time, from one
	// goroutine, in the order the outcomes became known (for one QoS level
	// that is publish order: upstreams acknowledge in order); onDone must
	// not block for long nor call Connect or Close.
	//
	// MQTT 5: m is sent at the upstream's Maximum QoS if that is lower, and
	// without the retain flag if it does not support retain. MQTT 3.1.1 has
	// no way to learn such limits (AWS IoT and Azure IoT Hub close the
	// connection on a QoS 2 PUBLISH): configure the QoS to suit the
	// upstream.
	//
	// If Publish returns an error, onDone is not called and m must be
	// treated as not sent (if ctx ended while a QoS 0 message was being
	// handed over, it may have been sent after all).
	Publish(ctx context.Context, m Message, onDone func(error)) error

	// Lost is closed when the current connection ends (network error,
	// server DISCONNECT, keep-alive timeout, Close). Each successful
	// Connect makes a new channel; before the first one, Lost is closed.
	Lost() <-chan struct{}

	// Err reports why the last connection ended (nil while it is up).
	Err() error

	// Close sends DISCONNECT if connected and releases everything, within
	// ctx; pending onDone get ErrNotAcknowledged before it returns.
	Close(ctx context.Context) error
}

// New validates cfg and returns a Client for cfg.Protocol. It does no I/O.
func New(cfg Config) (Client, error) {
	ep, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	switch cfg.Protocol {
	case MQTT5:
		return newMQTT5(cfg, ep), nil
	default:
		return newMQTT311(cfg, ep), nil
	}
}

// validate checks cfg, fills in defaults and parses the URL.
func (cfg *Config) validate() (endpoint, error) {
	fail := func(format string, args ...any) (endpoint, error) {
		return endpoint{}, fmt.Errorf("upstream: config: "+format, args...)
	}
	if cfg.Protocol != MQTT5 && cfg.Protocol != MQTT311 {
		return fail("protocol %q: want %q or %q", cfg.Protocol, MQTT5, MQTT311)
	}
	if cfg.URL == nil {
		return fail("no URL")
	}
	ep, err := parseEndpoint(cfg.URL)
	if err != nil {
		return fail("%v", err)
	}
	if cfg.TLS != nil && !ep.tls() {
		return fail("TLS settings given for the plain-text URL %s", ep)
	}
	if cfg.ClientID == "" {
		return fail("no client ID")
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.KeepAlive < time.Second || cfg.KeepAlive > math.MaxUint16*time.Second {
		return fail("keep alive %v: want 1s to 65535s", cfg.KeepAlive)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ConnectTimeout < 0 {
		return fail("negative connect timeout %v", cfg.ConnectTimeout)
	}
	if cfg.SessionExpiry < 0 || cfg.SessionExpiry > math.MaxUint32*time.Second {
		return fail("session expiry %v out of range", cfg.SessionExpiry)
	}
	if cfg.MaxInflight < 0 || cfg.MaxInflight > math.MaxUint16 {
		return fail("max inflight %d out of range", cfg.MaxInflight)
	}
	if cfg.Protocol == MQTT5 && cfg.MaxInflight != 0 {
		return fail("max inflight is for MQTT 3.1.1 (MQTT 5 uses the upstream's Receive Maximum)")
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.Protocol == MQTT311 {
		if cfg.SessionExpiry != 0 {
			return fail("session expiry is MQTT 5 only")
		}
		if cfg.Password != "" && cfg.Username == "" {
			return fail("MQTT 3.1.1 does not allow a password without a user name")
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("upstream", ep.String(), "client_id", cfg.ClientID, "protocol", string(cfg.Protocol))
	return ep, nil
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// writeTimeout is how long one write may block: past 1.5 keep-alive
// intervals the upstream has given up on us (MQTT 3.1.2.10) anyway.
func (cfg *Config) writeTimeout() time.Duration { return cfg.KeepAlive * 3 / 2 }

// checkMessage returns a refusal for a message no upstream would take
// (the libraries would fail it in different ways, or the upstream would
// close the connection).
func checkMessage(m Message) error {
	var why string
	switch {
	case m.QoS > 2:
		why = fmt.Sprintf("invalid QoS %d", m.QoS)
	case m.Topic == "":
		why = "empty topic"
	case strings.ContainsAny(m.Topic, "+#\x00"):
		why = fmt.Sprintf("topic %q has a wildcard or NUL", m.Topic)
	case len(m.Topic) > math.MaxUint16:
		why = "topic longer than 65535 bytes"
	default:
		return nil
	}
	return &RefusedError{Reason: 0x80, Text: "not sent: " + why}
}
