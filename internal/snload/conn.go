// Package snload is a load generator for MQTT-SN gateways: lean MQTT-SN
// clients, one UDP socket each, on the mqttsn codec, and the benchmarks
// sngate bench sn and sn-idle run with them.
//
// Run measures throughput, end-to-end latency and loss through a gateway
// and its broker: upstream, MQTT-SN sensors publish and one MQTT
// subscriber (internal/mqttload's client) receives; downstream, one MQTT
// publisher publishes to a topic every MQTT-SN client subscribed to.
// OpenIdle connects idle MQTT-SN clients to measure the gateway's memory
// per client.
package snload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/sngate/sngate/mqttsn"
)

// conn is one MQTT-SN client's UDP socket, connected to the gateway, so
// that every client talks from a port of its own.
type conn struct {
	uc *net.UDPConn

	mu   sync.Mutex // guards wbuf; Write itself is safe
	wbuf []byte

	rbuf []byte // reader only
}

func dialConn(addr *net.UDPAddr, rbuf int) (*conn, error) {
	uc, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return nil, err
	}
	return &conn{uc: uc, rbuf: make([]byte, rbuf)}, nil
}

// send encodes p and sends it as one datagram.
func (c *conn) send(p mqttsn.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := mqttsn.Append(c.wbuf[:0], p)
	if err != nil {
		return err
	}
	c.wbuf = b
	_, err = c.uc.Write(b)
	return err
}

// read returns the next datagram, valid until the next read.
func (c *conn) read() ([]byte, error) {
	n, err := c.uc.Read(c.rbuf)
	if err != nil {
		return nil, err
	}
	return c.rbuf[:n], nil
}

// close closes the socket, after sending DISCONNECT if disconnect, so that
// the gateway ends the session at once rather than at the end of its
// keep-alive.
func (c *conn) close(disconnect bool) {
	if disconnect {
		_ = c.uc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.send(&mqttsn.Disconnect{})
	}
	c.uc.Close()
}

// ErrTimeout is wrapped by handshakes the gateway did not answer.
var ErrTimeout = errors.New("no answer from the gateway")

// exchange sends req and reads datagrams, giving each decoded one to
// answer, until answer reports done. Without an answer it resends req every
// retry, until timeout. It is for the time before a reader goroutine runs.
func (c *conn) exchange(ctx context.Context, req mqttsn.Packet, retry, timeout time.Duration,
	answer func(p mqttsn.Packet) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { _ = c.uc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	defer func() { _ = c.uc.SetReadDeadline(time.Time{}) }()
	for {
		if err := c.send(req); err != nil {
			return err
		}
		resend := time.Now().Add(retry)
		if resend.After(deadline) {
			resend = deadline
		}
		_ = c.uc.SetReadDeadline(resend)
		for {
			b, err := c.read()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				return err
			}
			p, err := mqttsn.Decode(b)
			if err != nil {
				return fmt.Errorf("malformed answer to %v: %w", req.Type(), err)
			}
			if _, ok := p.(*mqttsn.Disconnect); ok && req.Type() != mqttsn.TypeConnect {
				return fmt.Errorf("gateway sent DISCONNECT in answer to %v", req.Type())
			}
			done, err := answer(p)
			if err != nil || done {
				return err
			}
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%v: %w in %v", req.Type(), ErrTimeout, timeout)
		}
	}
}

// connect sends CONNECT (clean session) and waits for an accepting
// CONNACK.
func (c *conn) connect(ctx context.Context, id string, keepAlive uint16, retry, timeout time.Duration) error {
	return c.exchange(ctx, &mqttsn.Connect{CleanSession: true, KeepAlive: keepAlive, ClientID: id}, retry, timeout,
		func(p mqttsn.Packet) (bool, error) {
			ca, ok := p.(*mqttsn.Connack)
			if !ok {
				return false, nil // a DISCONNECT from an earlier life of this port, say
			}
			if ca.ReturnCode != mqttsn.Accepted {
				return false, &RefusedError{Type: mqttsn.TypeConnack, Code: ca.ReturnCode}
			}
			return true, nil
		})
}

// register registers a topic name and returns its id.
func (c *conn) register(ctx context.Context, name string, retry, timeout time.Duration) (uint16, error) {
	const msgID = 1
	var id uint16
	err := c.exchange(ctx, &mqttsn.Register{MsgID: msgID, TopicName: name}, retry, timeout,
		func(p mqttsn.Packet) (bool, error) {
			ra, ok := p.(*mqttsn.Regack)
			if !ok || ra.MsgID != msgID {
				return false, nil
			}
			if ra.ReturnCode != mqttsn.Accepted {
				return false, &RefusedError{Type: mqttsn.TypeRegack, Code: ra.ReturnCode}
			}
			id = ra.TopicID
			return true, nil
		})
	return id, err
}

// subscribe subscribes to a topic name or filter and returns the topic id
// of the SUBACK (0 for a wildcard filter).
func (c *conn) subscribe(ctx context.Context, filter string, qos mqttsn.QoS, retry, timeout time.Duration) (uint16, error) {
	const msgID = 1
	var id uint16
	err := c.exchange(ctx, &mqttsn.Subscribe{QoS: qos, MsgID: msgID, TopicName: filter}, retry, timeout,
		func(p mqttsn.Packet) (bool, error) {
			sa, ok := p.(*mqttsn.Suback)
			if !ok || sa.MsgID != msgID {
				return false, nil
			}
			if sa.ReturnCode != mqttsn.Accepted {
				return false, &RefusedError{Type: mqttsn.TypeSuback, Code: sa.ReturnCode}
			}
			if sa.QoS < qos {
				return false, fmt.Errorf("subscription to %q granted QoS %d, asked for %d", filter, sa.QoS, qos)
			}
			id = sa.TopicID
			return true, nil
		})
	return id, err
}

// RefusedError is a CONNACK, REGACK or SUBACK with a non-zero return code.
type RefusedError struct {
	Type mqttsn.MsgType
	Code mqttsn.ReturnCode
}

func (e *RefusedError) Error() string { return fmt.Sprintf("%v: %v", e.Type, e.Code) }
