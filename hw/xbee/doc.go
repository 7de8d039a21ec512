// Package xbee encodes and decodes Digi XBee API frames (Zigbee firmware),
// the way a gateway talks to an XBee radio on a serial line, and the way a
// simulated radio in tests talks back.
//
// An API frame is
//
//	0x7E | length MSB | length LSB | frame data | checksum
//
// where the frame data starts with the API identifier (FrameType), the length
// counts the frame data only, and the checksum is 0xFF minus the low byte of
// the sum of the frame data. In API mode 2 (AP=2, "escaped", what the Paho
// gateway uses) every byte after the start byte that equals 0x7E, 0x7D, 0x11
// or 0x13 is sent as 0x7D followed by the byte XOR 0x20; length and checksum
// are computed on the unescaped bytes. API mode 1 (AP=1) sends them as they
// are.
//
// Every frame type here can be both encoded and decoded, so one package
// serves the gateway side (sends 0x10 Transmit Request and 0x08 AT Command,
// receives 0x90/0x91/0x8B/0x88/0x8A) and the radio side of a simulator
// (the reverse). Frame types the package does not know are decoded as
// *Unknown rather than dropped: a Zigbee coordinator sends route records and
// node identification frames unasked, and a gateway should be able to log
// them.
//
// A Reader finds frames in a byte stream and survives line noise: it hunts for
// the start byte, checks the length and the checksum, counts what it had to
// skip (Stats) and resynchronises on the next start byte. Prefer API mode 2:
// a start byte can then never occur inside a frame, so a cut frame is noticed
// at the next frame's start byte; in mode 1 a corrupted length makes the
// reader wait for that many bytes before the checksum tells it to resync.
package xbee
