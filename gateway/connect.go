package gateway

import (
	"errors"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/mqttsn"
)

// connect handles CONNECT: a new session, a client coming back from sleep,
// or one taking its session over from another address.
func (g *Gateway) connect(from peer, p *mqttsn.Connect) {
	g.mu.Lock()
	old := g.byID[p.ClientID]
	other := g.clients[from]
	g.mu.Unlock()
	if other != nil && other != old {
		other.end(false) // another client id at this address: that device is gone
	}
	if old != nil && old.sleeping() && !p.CleanSession {
		// Back from sleep: the session carries on as it is (§6.14).
		g.move(old, from)
		old.mu.Lock()
		old.state = stActive
		old.persistLocked() // no longer asleep
		old.keepAlive = secs(p.KeepAlive)
		old.superviseLocked()
		old.sendLocked(&mqttsn.Connack{ReturnCode: mqttsn.Accepted})
		old.sendNextLocked()
		old.mu.Unlock()
		return
	}
	if old != nil {
		old.end(false) // the client took its session over, maybe from a new address
	}
	g.mu.Lock()
	if len(g.byID) >= g.cfg.MaxClients {
		g.mu.Unlock()
		g.log.Warn("max_clients reached: CONNECT refused", "client", p.ClientID)
		g.send(from, &mqttsn.Connack{ReturnCode: mqttsn.RejectedCongestion})
		return
	}
	c := &client{g: g, id: p.ClientID, clean: p.CleanSession, at: from, keepAlive: secs(p.KeepAlive),
		pre: newPredefined(g.cfg.PredefinedTopics, p.ClientID), inbound2: map[uint16]bool{}, since: time.Now()}
	c.topics = g.takeTopics(p.ClientID, p.CleanSession)
	g.clients[from] = c
	g.byID[p.ClientID] = c
	g.forgetLostLocked(p.ClientID)
	g.mu.Unlock()

	c.mu.Lock()
	if p.Will {
		c.state = stWillTopic
		c.superviseLocked()
		c.sendLocked(&mqttsn.WillTopicReq{})
		c.mu.Unlock()
		return
	}
	c.state = stWillMsg // attach treats both alike: the will exchange is over
	c.mu.Unlock()
	c.attach()
}

// attach makes the client a broker session and answers CONNACK. Deliveries
// the broker resumes wait in the queue until CONNACK is out.
func (c *client) attach() {
	c.mu.Lock()
	will := c.will
	c.mu.Unlock()
	bc, _, err := c.g.broker.Connect(broker.LocalConfig{
		ClientID: c.g.cfg.ClientIDPrefix + c.id, CleanSession: c.clean, Will: will, OnMessage: c.deliver,
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		rc := mqttsn.RejectedCongestion
		if !errors.Is(err, broker.ErrServerClosed) {
			rc = mqttsn.RejectedUnsupported
		}
		c.g.log.Warn("MQTT-SN client refused by the broker", "client", c.id, "err", err)
		c.sendLocked(&mqttsn.Connack{ReturnCode: rc})
		c.state = stGone
		go c.g.forget(c)
		return
	}
	if c.state == stGone { // ended meanwhile
		go bc.Disconnect(false)
		return
	}
	c.bc = bc
	c.state = stActive
	c.persistLocked() // no longer asleep, if it was before a restart
	c.g.metrics.clientsConnected.Add(1)
	c.superviseLocked()
	c.sendLocked(&mqttsn.Connack{ReturnCode: mqttsn.Accepted})
	c.sendNextLocked()
}

// onWillTopic and onWillMsg carry the will exchange of CONNECT (§6.3).
func (c *client) onWillTopic(p *mqttsn.WillTopic) {
	c.mu.Lock()
	if c.state != stWillTopic {
		c.mu.Unlock()
		return
	}
	if p.Topic == "" { // the empty form: no will
		c.will = nil
		c.state = stWillMsg
		c.mu.Unlock()
		c.attach()
		return
	}
	c.will = &broker.Message{Topic: p.Topic, QoS: byte(max(p.QoS, 0)), Retain: p.Retain}
	c.state = stWillMsg
	c.sendLocked(&mqttsn.WillMsgReq{})
	c.mu.Unlock()
}

func (c *client) onWillMsg(p *mqttsn.WillMsg) {
	c.mu.Lock()
	if c.state != stWillMsg || c.will == nil {
		c.mu.Unlock()
		return
	}
	w := *c.will
	w.Payload = append([]byte{}, p.Message...)
	c.will = &w
	c.mu.Unlock()
	c.attach()
}

// onWillUpdate handles WILLTOPICUPD and WILLMSGUPD (§6.4).
func (c *client) onWillUpdate(p mqttsn.Packet) {
	c.mu.Lock()
	switch p := p.(type) {
	case *mqttsn.WillTopicUpd:
		if p.Topic == "" {
			c.will = nil
		} else {
			w := broker.Message{Topic: p.Topic, QoS: byte(max(p.QoS, 0)), Retain: p.Retain}
			if c.will != nil {
				w.Payload = c.will.Payload
			}
			c.will = &w
		}
		c.sendLocked(&mqttsn.WillTopicResp{ReturnCode: mqttsn.Accepted})
	case *mqttsn.WillMsgUpd:
		if c.will != nil {
			w := *c.will
			w.Payload = append([]byte{}, p.Message...)
			c.will = &w
		}
		c.sendLocked(&mqttsn.WillMsgResp{ReturnCode: mqttsn.Accepted})
	}
	will, bc := c.will, c.bc
	c.mu.Unlock()
	if bc != nil {
		bc.SetWill(will)
	}
}

func (g *Gateway) keepTopics(id string, t *topicTable) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.saved == nil {
		g.saved = map[string]*topicTable{}
	}
	g.saved[id] = t
}

// takeTopics returns the topic table a connecting client starts with: its
// persistent session's, or a new one. g.mu is held.
func (g *Gateway) takeTopics(id string, clean bool) *topicTable {
	t := g.saved[id]
	delete(g.saved, id)
	if t == nil || clean {
		if t != nil {
			g.dropRecordLocked(id, t) // the session is cleaned: persist.go
		}
		t = newTopicTable(g.cfg.MaxTopicsPerClient)
	}
	return t
}
