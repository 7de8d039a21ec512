// Package broker is sngate's MQTT 3.1.1 broker core: the sessions every
// MQTT-SN sensor, every local application (Node-RED, Home Assistant,
// mosquitto_sub) and the cloud bridge meet in.
//
// A Server is built from a Config and serves any number of listeners
// (Serve for a net.Listener, Start for the configured ones) until Shutdown.
// Network clients and in-process clients (Connect, for the gateway and the
// bridge) share one session model, one routing path and one persistence
// path, so an MQTT-SN client is a first-class broker session.
//
// Files by concern:
//   - config.go: Config, its defaults and validation
//   - server.go: Server lifecycle, listeners, the session table
//   - conn.go: one network connection: CONNECT, packet dispatch, keep-alive
//   - output.go: the per-connection write buffer and its flusher
//   - session.go: subscriptions, in-flight and queued messages of a session
//   - route.go: publishing: retained messages, fan-out, durability
//   - acks.go: acknowledgements released in order once durable
//   - local.go: the in-process client API
//   - metrics.go: counters and $SYS topics
package broker
