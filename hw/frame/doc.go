// Package frame splits serial byte streams into MQTT-SN messages and frames
// messages for sending, in the two framings MQTT-SN devices use on a UART.
//
// MQTT-SN needs a datagram service, and a serial line is a byte stream, so
// something has to mark where one message ends and the next begins. The
// specification defines nothing for that; in the field two conventions exist:
//
//   - raw: messages back to back, each one's own Length field being the only
//     framing (the mqtt-sn-tools serial bridge, most Arduino sketches). It has
//     no start byte and no checksum, so a lost or corrupted byte makes the
//     stream meaningless until the reader finds a message boundary again.
//     RawReader does that with sanity checks on every candidate header and
//     with the idle gaps senders leave between messages; see RawReader.
//   - SLIP (RFC 1055): END-delimited frames with byte stuffing. Boundaries
//     are explicit, so recovery after noise is immediate; see SLIPReader.
//
// The readers are pure code over an io.Reader (the serial port) and never
// interpret a message beyond what framing needs: a frame that passes is
// handed to mqttsn.Decode, which decides whether it is a valid message. Both
// readers keep counters (Stats) because line noise on a field installation is
// otherwise invisible.
//
// A Reader and its Stats method may be used from different goroutines, but
// ReadFrame itself must not be called concurrently.
package frame
