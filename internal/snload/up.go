package snload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker/packets"
	"github.com/sngate/sngate/internal/mqttload"
	"github.com/sngate/sngate/mqttsn"
)

// ack is an acknowledgement a sensor's reader passes to its sender.
type ack struct {
	t  mqttsn.MsgType
	id uint16
	rc mqttsn.ReturnCode
}

// sensor is one publishing MQTT-SN client.
type sensor struct {
	b     *bench
	c     *conn
	index uint32
	pub   mqttsn.Publish // TopicIDType and TopicID set at registration
	acks  chan ack
	flow  *flow
	// progress is the last of its messages the subscriber received;
	// delivered its last value seen, window the sensor's share.
	progress  *atomic.Uint32
	delivered uint32
	window    uint32
	timer     *time.Timer

	// Sender goroutine; read after it ended.
	sent, unacked, retrans, rejected int64
	err                              error
}

// upSubscriber is the MQTT subscriber of an upstream run.
type upSubscriber struct {
	c        *mqttload.Client
	received atomic.Int64
	progress []atomic.Uint32 // per sensor
	flows    []*flow
	// Reader goroutine only until it has ended.
	hist    mqttload.Histogram
	lastSeq []uint32
	dups    int64
	foreign int64
}

func (s *upSubscriber) record(b []byte, now int64, win *window) {
	st, ok := readStamp(b)
	if !ok || int(st.idx) >= len(s.lastSeq) {
		s.foreign++
		return
	}
	if st.seq <= s.lastSeq[st.idx] {
		s.dups++
		return
	}
	s.lastSeq[st.idx] = st.seq
	s.progress[st.idx].Store(st.seq)
	s.flows[st.idx].poke()
	if win.contains(st.at) {
		s.hist.Record(time.Duration(now - st.at))
		s.received.Add(1)
	}
}

func (b *bench) runUp(ctx context.Context, gw *net.UDPAddr, res Result) (Result, error) {
	cfg := &b.cfg
	n := cfg.Clients
	filter := cfg.Topic + "/#"
	if cfg.QoS == -1 {
		filter = ShortTopic
	}
	sub := &upSubscriber{progress: make([]atomic.Uint32, n), flows: make([]*flow, n), lastSeq: make([]uint32, n)}
	for i := range sub.flows {
		sub.flows[i] = newFlow()
	}
	sc, err := mqttload.Dial(ctx, cfg.Broker, mqttload.Options{ClientID: "snbench-" + b.runID + "-sub",
		KeepAlive: time.Minute, Timeout: cfg.Timeout})
	if err != nil {
		return res, fmt.Errorf("subscriber: %w", err)
	}
	sub.c = sc
	subClosed := false
	defer func() {
		if !subClosed {
			sc.Close()
		}
	}()
	if err := sc.Subscribe(ctx, filter, mqttQoS(cfg.QoS)); err != nil {
		return res, fmt.Errorf("subscriber: %w", err)
	}
	sc.Start(func(p *packets.PublishPacket) { sub.record(p.Payload, b.since(), &b.win) }, nil)
	b.watch(sc, "subscriber")

	var per uint32
	if cfg.Window > 0 {
		per = uint32(max(1, cfg.Window/n))
	}
	sensors := make([]*sensor, n)
	connected := cfg.QoS != -1
	defer func() {
		for _, s := range sensors {
			if s != nil {
				s.c.close(connected)
			}
		}
	}()
	err = mqttload.DialAll(ctx, n, 64, func(i int) error {
		c, err := dialConn(gw, cfg.Size+512)
		if err != nil {
			return fmt.Errorf("sensor %d: %w", i, err)
		}
		_ = c.uc.SetReadBuffer(256 << 10)
		s := &sensor{b: b, c: c, index: uint32(i), acks: make(chan ack, 8), flow: sub.flows[i],
			progress: &sub.progress[i], window: per}
		sensors[i] = s
		if cfg.QoS == -1 {
			id, _ := mqttsn.ShortTopicID(ShortTopic)
			s.pub = mqttsn.Publish{QoS: mqttsn.QoSMinus1, TopicIDType: mqttsn.TopicShort, TopicID: id}
			return nil
		}
		if err := c.connect(ctx, "snbench-"+b.runID+"-"+strconv.Itoa(i), b.keepAlive(), cfg.Retry, cfg.Timeout); err != nil {
			return fmt.Errorf("sensor %d: CONNECT: %w", i, err)
		}
		tid, err := c.register(ctx, cfg.Topic+"/"+strconv.Itoa(i), cfg.Retry, cfg.Timeout)
		if err != nil {
			return fmt.Errorf("sensor %d: REGISTER: %w", i, err)
		}
		s.pub = mqttsn.Publish{QoS: mqttsn.QoS(cfg.QoS), TopicIDType: mqttsn.TopicNormal, TopicID: tid}
		return nil
	})
	if err != nil {
		return res, err
	}
	for _, s := range sensors {
		go s.readLoop()
	}

	defer b.startClock()()
	var wg sync.WaitGroup
	for _, s := range sensors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.err = s.run(); s.err != nil {
				b.abandon()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	runErr := b.wait(ctx, done)
	if runErr == nil {
		for _, s := range sensors {
			if s.err != nil {
				runErr = s.err
				break
			}
		}
	}
	var sent int64
	if runErr == nil {
		for _, s := range sensors {
			sent += s.sent
		}
		runErr = b.drain(ctx, sent, sub.received.Load)
	}
	b.abandon()
	all := sensors
	sensors = nil // closed here, not by the deferred function
	for _, s := range all {
		s.c.close(connected && runErr == nil)
	}
	if runErr == nil {
		_ = sc.Disconnect()
	} else {
		sc.Close()
	}
	subClosed = true
	<-done // closing the sockets unblocked any sender

	return b.upResult(res, sub, all, runErr)
}

func (b *bench) upResult(res Result, sub *upSubscriber, sensors []*sensor, runErr error) (Result, error) {
	for _, s := range sensors {
		res.Unacked += s.unacked
		res.Retransmits += s.retrans
		res.Rejected += s.rejected
		res.Sent += s.sent
	}
	res.Expected = res.Sent
	res.Received = sub.received.Load()
	res.Duplicates = sub.dups
	finish(&res, &sub.hist)
	if sub.foreign > 0 && runErr == nil {
		runErr = fmt.Errorf("%d messages on %s without a valid benchmark stamp (another publisher?)", sub.foreign, b.cfg.Topic)
	}
	return res, runErr
}

// readLoop passes the gateway's acknowledgements to the sender.
func (s *sensor) readLoop() {
	var (
		puback  mqttsn.Puback
		pubrec  mqttsn.Pubrec
		pubcomp mqttsn.Pubcomp
	)
	who := "sensor " + strconv.Itoa(int(s.index))
	for {
		buf, err := s.c.read()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.b.fail(readError(who, err))
			}
			return
		}
		_, _, t, err := mqttsn.ParseHeader(buf)
		if err != nil {
			continue
		}
		var a ack
		switch t {
		case mqttsn.TypePuback:
			if mqttsn.Unmarshal(buf, &puback) != nil {
				continue
			}
			a = ack{t, puback.MsgID, puback.ReturnCode}
		case mqttsn.TypePubrec:
			if mqttsn.Unmarshal(buf, &pubrec) != nil {
				continue
			}
			a = ack{t: t, id: pubrec.MsgID}
		case mqttsn.TypePubcomp:
			if mqttsn.Unmarshal(buf, &pubcomp) != nil {
				continue
			}
			a = ack{t: t, id: pubcomp.MsgID}
		case mqttsn.TypeDisconnect:
			select {
			case <-s.b.stop: // the answer to ours
			default:
				s.b.fail(fmt.Errorf("%s: the gateway sent DISCONNECT (session lost)", who))
			}
			return
		default:
			continue
		}
		select {
		case s.acks <- a:
		default: // the sender is behind: it resends if it needed that one
		}
	}
}

// run publishes until the window ends; at QoS 1 and 2 it waits for each
// message's acknowledgement before the next, until drainBy.
func (s *sensor) run() error {
	b, cfg := s.b, &s.b.cfg
	payload := make([]byte, cfg.Size)
	binary.BigEndian.PutUint32(payload[8:], s.index)
	s.pub.Data = payload
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	p := newPacer(b, cfg.Rate, int(s.index), cfg.Clients)
	var (
		seq   uint32
		msgID uint16
	)
	for {
		if !p.pace(nil) {
			break
		}
		if !s.waitWindow(seq + 1) {
			break
		}
		now := b.since()
		if now >= b.end {
			break
		}
		seq++
		putStamp(payload, now, seq)
		if cfg.QoS >= 1 {
			if msgID++; msgID == 0 {
				msgID = 1
			}
			s.pub.MsgID = msgID
		}
		s.pub.DUP = false
		if err := s.c.send(&s.pub); err != nil {
			return fmt.Errorf("sensor %d: %w", s.index, err)
		}
		if now >= b.start {
			s.sent++
		}
		if cfg.QoS >= 1 {
			if err := s.await(); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitWindow waits until message seq fits the sensor's share of the
// window: the subscriber has received message seq-window.
func (s *sensor) waitWindow(seq uint32) bool {
	w := s.window
	if w == 0 || seq <= w || s.delivered >= seq-w {
		return true
	}
	target := seq - w + (w-1)/2 // wait for half the window, to send in bursts
	ok := s.b.waitFor(s.flow, target, func() uint32 {
		s.delivered = s.progress.Load()
		return s.delivered
	}, s.b.cfg.QoS <= 0)
	s.delivered = max(s.delivered, target) // a lost QoS 0 message never comes
	return ok
}

// await waits for the PUBACK (QoS 1) or PUBREC and PUBCOMP (QoS 2) of the
// message just sent, resending it every Retry, until drainBy.
func (s *sensor) await() error {
	b, cfg := s.b, &s.b.cfg
	id := s.pub.MsgID
	released := false
	s.timer.Reset(cfg.Retry)
	defer s.timer.Stop()
	for {
		select {
		case a := <-s.acks:
			if a.id != id {
				continue // late, for a message already done
			}
			switch {
			case a.t == mqttsn.TypePuback:
				if a.rc != mqttsn.Accepted {
					s.rejected++
					return nil
				}
				if cfg.QoS == 1 {
					return nil
				}
			case a.t == mqttsn.TypePubrec && cfg.QoS == 2:
				if !released {
					released = true
					s.timer.Reset(cfg.Retry)
				}
				if err := s.c.send(&mqttsn.Pubrel{MsgID: id}); err != nil {
					return fmt.Errorf("sensor %d: %w", s.index, err)
				}
			case a.t == mqttsn.TypePubcomp && released:
				return nil
			}
		case <-s.timer.C:
			s.retrans++
			var err error
			if released {
				err = s.c.send(&mqttsn.Pubrel{MsgID: id})
			} else {
				s.pub.DUP = true
				err = s.c.send(&s.pub)
			}
			if err != nil {
				return fmt.Errorf("sensor %d: %w", s.index, err)
			}
			s.timer.Reset(cfg.Retry)
		case <-b.drained:
			s.unacked++
			return nil
		case <-b.stop:
			return nil
		}
	}
}
