package frame

import "sync/atomic"

// Reader splits a byte stream into MQTT-SN messages. ReadFrame fills buf
// with the next message and returns its length. A message longer than buf is
// skipped and reported as an error of kind ErrTooLong; the reader stays usable.
// Errors from the underlying io.Reader, io.EOF included, are returned as they
// are (io.EOF only once every complete frame before it has been returned).
type Reader interface {
	ReadFrame(buf []byte) (int, error)
}

// Stats counts what a reader did with the bytes it read. A gateway exports
// these so that a noisy or misconfigured line (wrong baud rate, wrong
// framing) shows up as numbers instead of as silently missing sensors.
type Stats struct {
	Frames    uint64 // messages returned by ReadFrame
	BadFrames uint64 // frames dropped whole: cut short by an idle gap or the end of input (raw), a bad escape or the end of input (SLIP)
	TooLong   uint64 // frames skipped because they did not fit the buffer (ReadFrame returned ErrTooLong)
	Resyncs   uint64 // raw only: times the reader lost the message boundaries and had to hunt for the next one
	Dropped   uint64 // bytes read but not returned in a message (garbage, bad and too-long frames); SLIP delimiters are not counted
}

// counters is the live, atomically updated form of Stats: ReadFrame runs on
// the reading goroutine while a metrics endpoint may call Stats at any time.
type counters struct {
	frames, badFrames, tooLong, resyncs, dropped atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Frames:    c.frames.Load(),
		BadFrames: c.badFrames.Load(),
		TooLong:   c.tooLong.Load(),
		Resyncs:   c.resyncs.Load(),
		Dropped:   c.dropped.Load(),
	}
}
