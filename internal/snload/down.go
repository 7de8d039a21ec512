package snload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/internal/mqttload"
	"github.com/sngate/sngate/mqttsn"
)

// listener is one subscribing MQTT-SN client of a downstream run.
type listener struct {
	b        *bench
	c        *conn
	index    int
	flow     *flow // the publisher's
	progress atomic.Uint32
	received atomic.Int64
	done     chan struct{} // closed when the reader has ended

	// Reader goroutine only until done.
	hist        mqttload.Histogram
	lastSeq     uint32
	dups        int64
	redelivered int64
	foreign     int64
	pub         mqttsn.Publish
	reg         mqttsn.Register
	rel         mqttsn.Pubrel
	puback      mqttsn.Puback
	regack      mqttsn.Regack
	pubrec      mqttsn.Pubrec
	pubcomp     mqttsn.Pubcomp
}

func (b *bench) runDown(ctx context.Context, gw *net.UDPAddr, res Result) (Result, error) {
	cfg := &b.cfg
	n := cfg.Clients
	fl := newFlow()
	ls := make([]*listener, n)
	defer func() {
		for _, l := range ls {
			if l != nil {
				l.c.close(true)
			}
		}
	}()
	err := mqttload.DialAll(ctx, n, 64, func(i int) error {
		c, err := dialConn(gw, cfg.Size+512)
		if err != nil {
			return fmt.Errorf("client %d: %w", i, err)
		}
		_ = c.uc.SetReadBuffer(1 << 20)
		l := &listener{b: b, c: c, index: i, flow: fl, done: make(chan struct{})}
		ls[i] = l
		if err := c.connect(ctx, "snbench-"+b.runID+"-"+strconv.Itoa(i), b.keepAlive(), cfg.Retry, cfg.Timeout); err != nil {
			return fmt.Errorf("client %d: CONNECT: %w", i, err)
		}
		if _, err := c.subscribe(ctx, cfg.Topic, mqttsn.QoS(cfg.QoS), cfg.Retry, cfg.Timeout); err != nil {
			return fmt.Errorf("client %d: SUBSCRIBE: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	for _, l := range ls {
		go l.readLoop()
	}

	pub := &downPublisher{b: b, subs: ls, flow: fl}
	if cfg.QoS == 1 {
		pub.tokens = make(chan struct{}, mqttload.DefaultInflight)
	}
	pc, err := mqttload.Dial(ctx, cfg.Broker, mqttload.Options{ClientID: "snbench-" + b.runID + "-pub",
		KeepAlive: time.Minute, Timeout: cfg.Timeout})
	if err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	pub.c = pc
	pcClosed := false
	defer func() {
		if !pcClosed {
			pc.Close()
		}
	}()
	pc.Start(nil, pub.onPuback)
	b.watch(pc, "publisher")

	defer b.startClock()()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if pub.err = pub.run(); pub.err != nil {
			b.abandon()
		}
	}()
	runErr := b.wait(ctx, done)
	if runErr == nil {
		runErr = pub.err
	}
	if runErr == nil {
		runErr = b.drain(ctx, pub.sent*int64(n), func() int64 {
			var got int64
			for _, l := range ls {
				got += l.received.Load()
			}
			return got
		})
	}
	b.abandon()
	if runErr == nil {
		_ = pc.Disconnect()
	} else {
		pc.Close()
	}
	pcClosed = true
	<-done
	all := ls
	ls = nil // closed here, not by the deferred function
	for _, l := range all {
		l.c.close(runErr == nil)
	}
	var h mqttload.Histogram
	var foreign int64
	for _, l := range all {
		<-l.done
		res.Received += l.received.Load()
		res.Duplicates += l.dups
		res.Redelivered += l.redelivered
		foreign += l.foreign
		h.Merge(&l.hist)
	}
	res.Sent = pub.sent
	res.Expected = pub.sent * int64(n)
	if pub.tokens != nil {
		res.Unacked = int64(len(pub.tokens))
	}
	finish(&res, &h)
	if foreign > 0 && runErr == nil {
		runErr = fmt.Errorf("%d messages on %s without a valid benchmark stamp (another publisher?)", foreign, cfg.Topic)
	}
	return res, runErr
}

// readLoop records the deliveries and acknowledges them.
func (l *listener) readLoop() {
	defer close(l.done)
	who := "client " + strconv.Itoa(l.index)
	for {
		buf, err := l.c.read()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.b.fail(readError(who, err))
			}
			return
		}
		_, _, t, err := mqttsn.ParseHeader(buf)
		if err != nil {
			l.foreign++
			continue
		}
		switch t {
		case mqttsn.TypePublish:
			if mqttsn.Unmarshal(buf, &l.pub) != nil {
				l.foreign++
				continue
			}
			l.record(l.pub.Data, l.pub.DUP, l.b.since())
			switch l.pub.QoS {
			case mqttsn.QoS1:
				l.puback = mqttsn.Puback{TopicID: l.pub.TopicID, MsgID: l.pub.MsgID}
				err = l.c.send(&l.puback)
			case mqttsn.QoS2:
				l.pubrec = mqttsn.Pubrec{MsgID: l.pub.MsgID}
				err = l.c.send(&l.pubrec)
			}
		case mqttsn.TypePubrel:
			if mqttsn.Unmarshal(buf, &l.rel) == nil {
				l.pubcomp = mqttsn.Pubcomp{MsgID: l.rel.MsgID}
				err = l.c.send(&l.pubcomp)
			}
		case mqttsn.TypeRegister:
			if mqttsn.Unmarshal(buf, &l.reg) == nil {
				l.regack = mqttsn.Regack{TopicID: l.reg.TopicID, MsgID: l.reg.MsgID}
				err = l.c.send(&l.regack)
			}
		case mqttsn.TypeDisconnect:
			select {
			case <-l.b.stop: // the answer to ours
			default:
				l.b.fail(fmt.Errorf("%s: the gateway sent DISCONNECT (session lost)", who))
			}
			return
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			l.b.fail(fmt.Errorf("%s: %w", who, err))
			return
		}
	}
}

func (l *listener) record(b []byte, dup bool, now int64) {
	st, ok := readStamp(b)
	if !ok || st.idx != 0 {
		l.foreign++
		return
	}
	if st.seq <= l.lastSeq {
		if dup && st.seq == l.lastSeq {
			l.redelivered++ // the gateway resent it: our PUBACK was lost or late
		} else {
			l.dups++
		}
		return
	}
	l.lastSeq = st.seq
	l.progress.Store(st.seq)
	l.flow.poke()
	if l.b.win.contains(st.at) {
		l.hist.Record(time.Duration(now - st.at))
		l.received.Add(1)
	}
}

// downPublisher is the MQTT publisher of a downstream run.
type downPublisher struct {
	b         *bench
	c         *mqttload.Client
	subs      []*listener
	flow      *flow
	tokens    chan struct{} // QoS 1: one per unacknowledged PUBLISH
	delivered uint32        // last message all listeners have, as last seen
	bogus     atomic.Int64
	sent      int64 // read after run
	err       error
}

func (p *downPublisher) onPuback(uint16) {
	select {
	case <-p.tokens:
	default:
		p.bogus.Add(1)
	}
}

func (p *downPublisher) minProgress() uint32 {
	m := uint32(1<<32 - 1)
	for _, l := range p.subs {
		m = min(m, l.progress.Load())
	}
	return m
}

func (p *downPublisher) flush() { _ = p.c.Flush() }

func (p *downPublisher) run() error {
	b, cfg := p.b, &p.b.cfg
	topic := cfg.Topic
	qos := mqttQoS(cfg.QoS)
	payload := make([]byte, cfg.Size)
	binary.BigEndian.PutUint32(payload[8:], 0)
	pc := newPacer(b, cfg.Rate, 0, 1)
	var (
		seq uint32
		pid uint16
	)
	w := uint32(max(cfg.Window, 0))
	for {
		if !pc.pace(p.flush) {
			break
		}
		if p.tokens != nil {
			select {
			case p.tokens <- struct{}{}:
			default:
				p.flush()
				select {
				case p.tokens <- struct{}{}:
				case <-b.ended:
					goto out
				case <-b.stop:
					goto out
				}
			}
		}
		if next := seq + 1; w > 0 && next > w && p.delivered < next-w {
			target := next - w + (w-1)/2
			p.flush()
			ok := b.waitFor(p.flow, target, func() uint32 {
				p.delivered = p.minProgress()
				return p.delivered
			}, qos == 0)
			p.delivered = max(p.delivered, target)
			if !ok {
				p.release()
				break
			}
		}
		now := b.since()
		if now >= b.end {
			p.release()
			break
		}
		seq++
		putStamp(payload, now, seq)
		if qos == 1 {
			if pid++; pid == 0 {
				pid = 1
			}
		}
		if err := p.c.Publish(topic, qos, pid, payload); err != nil {
			return fmt.Errorf("publisher: %w", err)
		}
		if now >= b.start {
			p.sent++
		}
	}
out:
	if err := p.c.Flush(); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	for p.tokens != nil && len(p.tokens) > 0 && b.since() < b.drainBy {
		select {
		case <-b.stop:
			return nil
		case <-time.After(time.Millisecond):
		}
	}
	if n := p.bogus.Load(); n > 0 {
		return fmt.Errorf("publisher: %d PUBACKs for messages not in flight", n)
	}
	return nil
}

// release gives back a PUBACK token taken for a message not sent.
func (p *downPublisher) release() {
	if p.tokens != nil {
		<-p.tokens
	}
}
