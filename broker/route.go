package broker

import (
	"go.etcd.io/bbolt"

	"github.com/sngate/sngate/broker/packets"
	"github.com/sngate/sngate/broker/persist"
)

// match is one subscription a topic matched.
type match struct {
	sess *session
	qos  byte
}

// routeScratch is reused by one publishing goroutine (a connection's
// reader) so that routing a message allocates nothing for the match list.
type routeScratch struct {
	matches []match
	index   map[*session]int
}

// route publishes m: it sets or clears the retained message of its topic and
// delivers it to every session with a matching subscription, once per
// session at the highest QoS its matching subscriptions grant
// (MQTT-3.3.5-1), downgraded to the published QoS (MQTT-3.8.4-6). Store
// writes join t, when given, so that the publisher's acknowledgement can
// wait until the message is durable.
func (s *Server) route(m *Message, t *ticket, sc *routeScratch) {
	if m.Retain {
		s.retain(m, t)
	}
	sc.matches = sc.matches[:0]
	s.subs.Match(m.Topic, func(sess *session, qos byte) {
		sc.matches = append(sc.matches, match{sess, qos})
	})
	matches := sc.matches
	if len(matches) > 1 {
		matches = sc.merge()
	}
	for _, mt := range matches {
		if mt.sess == m.from {
			continue // NoLocal
		}
		mt.sess.deliver(m, min(m.QoS, mt.qos), false, t)
	}
	clear(sc.matches) // drop the session pointers
}

// merge folds several matches of one session into one with the highest QoS.
func (sc *routeScratch) merge() []match {
	if sc.index == nil {
		sc.index = make(map[*session]int)
	}
	out := sc.matches[:0]
	for _, mt := range sc.matches {
		if i, ok := sc.index[mt.sess]; ok {
			out[i].qos = max(out[i].qos, mt.qos)
			continue
		}
		sc.index[mt.sess] = len(out)
		out = append(out, mt)
	}
	clear(sc.index)
	return out
}

// retain stores m as the retained message of its topic, or deletes that
// message when the payload is empty (MQTT-3.3.1-10, -11). A retained QoS 1/2
// message is durable before its publisher's acknowledgement.
func (s *Server) retain(m *Message, t *ticket) {
	if m.QoS == 0 {
		t = nil
	}
	if len(m.Payload) == 0 {
		if s.retained.Delete(m.Topic) && s.storedRetained(m.Topic) {
			s.apply(t, persist.SetRetained(persist.Message{Topic: m.Topic}))
		}
		return
	}
	if max := s.cfg.MaxRetained; max > 0 && s.retained.Len() >= max {
		if _, exists := s.retained.Get(m.Topic); !exists {
			s.metrics.droppedRetained.Add(1)
			s.log.Warn("retained message limit reached: not stored", "topic", m.Topic, "max_retained", max)
			return
		}
	}
	s.retained.Set(m.Topic, m)
	if s.storedRetained(m.Topic) {
		s.apply(t, persist.SetRetained(persist.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: true}))
	}
}

// maxStoredTopic is the longest topic whose retained message the store can
// hold: it is the key. MQTT allows names up to 65535 bytes (MQTT-4.7.3-3).
const maxStoredTopic = bbolt.MaxKeySize

// storedRetained reports whether the retained message of topic is written to
// the store. $SYS topics are not: they are rebuilt after a restart anyway.
// Nor are topics too long to be a key of the store: their retained message
// is kept in memory only, rather than failing, with the store write, the
// acknowledgement of every PUBLISH to them.
func (s *Server) storedRetained(topic string) bool {
	if isSysTopic(topic) {
		return false
	}
	if len(topic) > maxStoredTopic {
		if s.store != nil {
			s.log.Warn("retained message kept in memory only: topic too long for the store",
				"topic_bytes", len(topic), "max", maxStoredTopic)
		}
		return false
	}
	return true
}

// sendRetained delivers the retained messages matching new subscriptions
// (filters whose code is not 0x80 are granted that QoS), with the retain
// flag set (MQTT-3.3.1-6, -8). ack, if not nil, writes the SUBACK first. It
// all happens under the session lock, so no live delivery of the same
// topics slips in between: a client never sees an older retained message
// after a newer live one.
func (s *Server) sendRetained(sess *session, filters []packets.Subscription, codes []byte, ack func()) {
	type held struct {
		m   *Message
		qos byte
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	var snapshot []held
	for i, f := range filters {
		if codes[i] == 0x80 {
			continue
		}
		s.retained.Match(f.Filter, func(_ string, m *Message) {
			snapshot = append(snapshot, held{m, min(m.QoS, codes[i])})
		})
	}
	if ack != nil {
		ack()
	}
	for _, h := range snapshot {
		sess.deliverLocked(h.m, h.qos, true, nil)
	}
}
