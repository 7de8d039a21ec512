// Package packets implements the MQTT 3.1.1 wire format for the broker core
// and for MQTT clients such as the bench load generator.
//
// A Reader cuts a byte stream into packets: a FixedHeader and the body (the
// variable header and payload). Decode turns a body into a typed packet and
// checks every rule of the standard that a packet can break on its own:
// reserved fixed-header flags, field lengths, UTF-8 strings, topic names and
// filters, packet identifiers, trailing bytes. Failures are *Error values
// whose Kind tells the broker how to react (see the Err* kinds); Decode never
// panics, whatever the input.
//
// The PUBLISH path allocates nothing: PublishPacket.Decode makes the topic and
// payload alias the Reader's buffer, and AppendPublish and AppendAck write
// into a caller's buffer. Other packets copy what they keep, so they stay
// valid after the next ReadPacket.
//
// Every packet type has Append(dst []byte) []byte. Append writes the fields as
// given, without checking them against the rules Decode enforces, so that
// tests can build invalid packets; it panics only when a value cannot be
// represented on the wire at all (a string or binary field over 65535 bytes, a
// QoS over 3, a remaining length over MaxRemainingLength).
package packets
