// Package mqttsn implements the MQTT-SN v1.2 wire format and a client for it.
//
// The codec half turns every message of the v1.2 specification (and the 0xFE
// forwarder encapsulation) into a typed Go value and back. Decoding is strict:
// anything that does not follow the specification is refused with a
// *DecodeError that names the message and what is wrong, because a gateway in
// the field must be able to log why a sensor's datagram was dropped. Decode
// never panics, whatever the input.
//
// Decoded byte slices (PUBLISH data, will messages, node ids) alias the input
// buffer so that the hot path, a PUBLISH, costs no allocation beyond the packet
// value itself; copy them if the buffer is reused.
//
// The client half (Client) speaks the client side of every v1.2 procedure over
// any datagram Transport: UDP first, serial framings later.
package mqttsn
