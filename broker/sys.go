package broker

import (
	"strconv"
	"strings"
	"time"
)

// sysPrefix starts the broker's own status topics, as mosquitto's.
const sysPrefix = "$SYS/broker/"

// publishSys publishes the $SYS/broker topics every SysInterval, retained,
// so a client subscribing to $SYS/# sees them at once. They are not
// written to the store: they are rebuilt after a restart anyway, and a
// write every few seconds would wear a Pi's SD card.
func (s *Server) publishSys() {
	defer s.wg.Done()
	if s.cfg.SysInterval < 0 {
		return
	}
	tick := time.NewTicker(s.cfg.SysInterval)
	defer tick.Stop()
	sc := new(routeScratch)
	for {
		s.sysOnce(sc)
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sysOnce publishes every $SYS topic once.
func (s *Server) sysOnce(sc *routeScratch) {
	st := s.Stats()
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, kv := range [...][2]string{
		{"version", "sngate " + s.version},
		{"uptime", num(int64(time.Since(s.started).Seconds())) + " seconds"},
		{"clients/connected", num(st.ClientsConnected)},
		{"clients/total", num(st.Sessions)},
		{"messages/received", num(st.MessagesIn)},
		{"messages/sent", num(st.MessagesOut)},
		{"bytes/received", num(st.BytesIn)},
		{"bytes/sent", num(st.BytesOut)},
		{"retained messages/count", num(st.Retained)},
		{"messages/dropped", num(st.DroppedQueueFull + st.DroppedSlowClient)},
		{"connections/refused", num(st.AuthFailures + st.RefusedMaxClients)},
		{"protocol/errors", num(st.ProtocolErrors)},
	} {
		m := &Message{Topic: sysPrefix + kv[0], Payload: []byte(kv[1]), Retain: true}
		s.route(m, nil, sc)
	}
}

func isSysTopic(topic string) bool { return strings.HasPrefix(topic, "$SYS/") }
