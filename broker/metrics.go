package broker

import "sync/atomic"

// metrics are the broker's counters. They are read by the $SYS publisher and
// by Stats.
type metrics struct {
	connections       atomic.Int64 // network connections accepted
	clientsConnected  atomic.Int64
	messagesIn        atomic.Int64 // PUBLISH received, wills included
	messagesOut       atomic.Int64 // PUBLISH sent
	bytesIn           atomic.Int64
	bytesOut          atomic.Int64
	protocolErrors    atomic.Int64 // connections closed for a protocol violation
	oversizePackets   atomic.Int64 // of those, for a packet over max_packet_size
	authFailures      atomic.Int64
	refusedMaxClients atomic.Int64
	aclDenied         atomic.Int64 // PUBLISH dropped and SUBSCRIBE filters refused by the ACL
	droppedQueueFull  atomic.Int64 // messages dropped at a full session queue
	droppedSlowClient atomic.Int64 // QoS 0 messages dropped for a client that reads too slowly
	droppedRetained   atomic.Int64 // retained messages not stored: max_retained reached
	storeErrors       atomic.Int64
}

// Stats is a snapshot of the broker's counters.
type Stats struct {
	Connections       int64
	ClientsConnected  int64
	MessagesIn        int64
	MessagesOut       int64
	BytesIn           int64
	BytesOut          int64
	ProtocolErrors    int64
	OversizePackets   int64
	AuthFailures      int64
	RefusedMaxClients int64
	ACLDenied         int64
	DroppedQueueFull  int64
	DroppedSlowClient int64
	DroppedRetained   int64
	StoreErrors       int64
	Retained          int64
	Sessions          int64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	m := &s.metrics
	s.mu.Lock()
	sessions := len(s.sessions)
	s.mu.Unlock()
	return Stats{
		Connections: m.connections.Load(), ClientsConnected: m.clientsConnected.Load(),
		MessagesIn: m.messagesIn.Load(), MessagesOut: m.messagesOut.Load(),
		BytesIn: m.bytesIn.Load(), BytesOut: m.bytesOut.Load(),
		ProtocolErrors: m.protocolErrors.Load(), OversizePackets: m.oversizePackets.Load(),
		AuthFailures: m.authFailures.Load(), RefusedMaxClients: m.refusedMaxClients.Load(),
		ACLDenied: m.aclDenied.Load(), DroppedQueueFull: m.droppedQueueFull.Load(),
		DroppedSlowClient: m.droppedSlowClient.Load(), DroppedRetained: m.droppedRetained.Load(),
		StoreErrors: m.storeErrors.Load(), Retained: int64(s.retained.Len()), Sessions: int64(sessions),
	}
}
