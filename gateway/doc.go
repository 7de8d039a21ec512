// Package gateway is sngate's MQTT-SN v1.2 gateway: it turns every MQTT-SN
// client into a session of the local broker core and carries the flows of
// the specification between the two.
//
// The design, in layers:
//
//   - A Transport moves whole MQTT-SN messages to and from opaque peer
//     addresses: UDP over IPv4 and IPv6 here (udp.go), serial lines and
//     XBee radios (package hw) later. The gateway never looks inside an
//     Addr; it only keys clients on it and answers to it.
//   - The Gateway reads datagrams from its transports, decodes them with
//     package mqttsn, and hands each to the state of its client, keyed by
//     (transport, address) or, behind a forwarder, by (transport, forwarder
//     address, node id). Malformed datagrams, floods and packets from
//     unknown peers are dropped and counted before any client state is
//     touched.
//   - Each client is a session of the broker core through its in-process
//     API (broker.Server.Connect), so ACLs, persistence and limits are the
//     broker's: an MQTT-SN client is a first-class broker session. The
//     gateway keeps what MQTT-SN adds: the per-client topic-id table
//     (REGISTER, SUBACK ids, predefined ids, short names), the one message
//     in flight per direction, retransmission under Tretry/Nretry, the
//     keep-alive and sleep timers, and the buffer of a sleeping client.
//
// Files: transport.go and udp.go (transports), gateway.go (the read loop,
// dispatch, the client table, forwarders), ratelimit.go (per-address
// limits), connect.go (CONNECT and wills), inbound.go (what clients send),
// outbound.go (what the broker delivers: REGISTER before PUBLISH, one in
// flight, retransmission), topics.go (topic-id tables), persist.go
// (persistent MQTT-SN sessions across restarts), config.go.
package gateway
