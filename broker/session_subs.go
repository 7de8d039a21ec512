package broker

import (
	"github.com/sngate/sngate/broker/packets"
	"github.com/sngate/sngate/broker/persist"
)

// subscribe adds the filters whose code is not 0x80 for the attachment
// gen; a persistent session's new subscription list joins t. A subscription
// to a filter the session has already replaces it (MQTT-3.8.4-3). It
// reports false when gen is no longer the session's attachment.
func (s *session) subscribe(gen uint64, filters []packets.Subscription, codes []byte, t *ticket) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return false
	}
	changed := false
	for i, f := range filters {
		if codes[i] == 0x80 {
			continue
		}
		s.srv.subs.Subscribe(f.Filter, s, codes[i])
		s.subs[f.Filter] = codes[i]
		changed = true
	}
	if changed {
		s.saveLocked(t)
	}
	return true
}

// unsubscribe removes the filters, compared character by character
// (MQTT-3.10.4-1); filters the session does not have are no error.
func (s *session) unsubscribe(gen uint64, filters []string, t *ticket) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return false
	}
	changed := false
	for _, f := range filters {
		if _, ok := s.subs[f]; ok {
			s.srv.subs.Unsubscribe(f, s)
			delete(s.subs, f)
			changed = true
		}
	}
	if changed {
		s.saveLocked(t)
	}
	return true
}

// saveLocked stores a persistent session's subscriptions. s.mu is held.
func (s *session) saveLocked(t *ticket) {
	if !s.persistent {
		return
	}
	rec := persist.Session{ClientID: s.id, Subscriptions: make([]persist.Subscription, 0, len(s.subs))}
	for f, q := range s.subs {
		rec.Subscriptions = append(rec.Subscriptions, persist.Subscription{Filter: f, QoS: q})
	}
	s.srv.apply(t, persist.PutSession(rec))
}
