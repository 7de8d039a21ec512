package frame

import (
	"io"
	"time"
)

// DefaultGap is the idle time that RawReader takes as the end of a message
// unless told otherwise. A sender writes a message in one go, so within a
// message the line is never idle for long; between messages it usually is.
// 50 ms leaves room for USB serial adapters, which deliver bytes in bursts
// (an FTDI chip holds them for up to 16 ms by default), and for scheduling
// delays on a loaded Raspberry Pi, while still being far shorter than the
// pause between a sensor's request and its next message.
const DefaultGap = 50 * time.Millisecond

// RawOptions configures a RawReader.
type RawOptions struct {
	// Gap is how long the line must stay idle before the reader treats the
	// silence as a message boundary. Zero means DefaultGap; a negative value
	// turns gap detection off, leaving only the sanity checks (and the end of
	// input) to recover from a cut message.
	Gap time.Duration
	// Now returns the current time; nil means time.Now. Tests pass a fake
	// clock so that gaps do not depend on the machine's speed.
	Now func() time.Time
}

// RawReader reads the raw serial framing: MQTT-SN messages back to back,
// each one's Length field (1-byte or 3-byte form) giving its size, and nothing
// else on the wire. This is what the mqtt-sn-tools serial bridge and most
// Arduino MQTT-SN sketches send.
//
// # Staying in sync
//
// With no start byte and no checksum, one lost or corrupted byte would make
// every later Length field point into the middle of a message. RawReader
// recovers with two rules:
//
//  1. Sanity checks. The bytes at the position where a message should start
//     must look like a header: a Length other than 0x00, a 3-byte form
//     0x01 LL LL with LL LL ≥ 4, a MsgType that MQTT-SN defines, and a
//     total the type allows (exact sizes for fixed-size messages: PUBACK 7,
//     CONNACK 3, PINGRESP 2, DISCONNECT 2 or 4, ...; minimums for the rest;
//     for the 0xFE forwarder encapsulation, a plausible inner message too).
//     If they do not, the reader drops one byte and tries the next position,
//     counting the dropped byte (Stats.Dropped) and, once per episode, a
//     resync (Stats.Resyncs).
//  2. Idle gaps. Senders write each message in one burst, so when the line
//     has been idle for Gap, nothing more can belong to the bytes already
//     buffered. A partial message there was cut (a sender reset, lost bytes,
//     noise that looked like a header and now waits for bytes that will never
//     come) and is dropped (Stats.BadFrames). Before dropping it, the reader
//     looks for the earliest position in the leftover bytes from which they
//     split exactly into plausible messages ending right at the gap; those
//     messages are returned. This recovers a message that arrived behind a
//     noise byte which happened to look like the start of a long message.
//
// The end of input is treated like a gap. Neither rule can make a checksum-less
// framing reliable: a corrupted byte inside a message body goes unnoticed
// (mqttsn.Decode catches most of those), and a message delivered while out of
// sync may be a fragment that happens to be well-formed. Prefer SLIP, or XBee
// API frames with their checksum, where the sender can be changed.
//
// # The reader-gap contract
//
// RawReader sees gaps only through the timing of its Read calls, so the
// io.Reader must return soon after data arrives and must wait before
// returning nothing:
//   - Best: a serial port with a read timeout of about Gap/2 or less that
//     returns (0, nil) on timeout, as go.bug.st/serial does after
//     SetReadTimeout. Idle reads add up, and once they span Gap the partial
//     message is dropped right away.
//   - A Read that blocks until data arrives (no timeout) works too: when it
//     returns data after blocking for Gap or longer, the bytes buffered
//     before it are treated as closed off by a gap. A cut message is then
//     only dropped, and a message stuck behind noise only returned, when
//     the next byte arrives.
//   - A Read that returns a timeout error is treated like an idle read; the
//     error is then returned to the caller, who may call ReadFrame again
//     (the partial message is kept unless the gap closed it).
//   - A Read must not return (0, nil) immediately, over and over: ReadFrame
//     keeps reading while it waits for a message and would spin.
//
// A bytes.Reader never idles, so only the sanity checks and the end of input
// delimit cut messages there; tests that need gaps use RawOptions.Now.
type RawReader struct {
	in    input
	gap   time.Duration
	now   func() time.Time
	stats counters

	b    []byte // buffered bytes: b[r:w] are pending, b[r] is a candidate message start
	r, w int
	skip int // bytes of a too-long message still to be discarded

	hunting   bool      // dropping bytes after a failed sanity check
	idle      bool      // no data since idleSince
	idleSince time.Time // start of the first Read in the current run of empty reads
	tile      []bool    // scratch for tileStart, kept to avoid an allocation per gap
}

// NewRawReader returns a RawReader that reads r. See RawReader for what r's
// Read must do for gaps to be seen.
func NewRawReader(r io.Reader, opts RawOptions) *RawReader {
	gap := opts.Gap
	if gap == 0 {
		gap = DefaultGap
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &RawReader{in: input{src: r}, gap: gap, now: now}
}

// Stats returns the reader's counters. It may be called from any goroutine.
func (r *RawReader) Stats() Stats { return r.stats.snapshot() }

// ReadFrame reads the next message into buf and returns its length. A message
// longer than buf is skipped: the error wraps ErrTooLong and the next call
// continues after it (an idle gap ends the skip early, in case the header was
// noise); a buffer of MaxRawLen bytes avoids skipping altogether. io.EOF is
// returned once every complete message before it has been returned; other
// read errors are returned as they are, after the messages completed by the
// same Read.
func (r *RawReader) ReadFrame(buf []byte) (int, error) {
	limit := min(len(buf), MaxRawLen)
	r.reserve(limit)
	closed := false
	for {
		if n, done, err := r.next(buf, limit); done {
			return n, err
		}
		if err := r.in.takeErr(); err != nil {
			return 0, err
		}
		if r.in.eof != nil {
			if r.w == r.r {
				return 0, r.in.eof
			}
			if closed { // cannot happen: a closed region splits into whole messages
				r.drop(r.w - r.r)
				continue
			}
			r.closeRegion(limit)
			closed = true
			continue
		}
		r.fill(limit)
	}
}

// next takes the next message out of the pending bytes, hunting past bytes
// that fail the sanity checks. done is false when more bytes are needed.
func (r *RawReader) next(buf []byte, limit int) (n int, done bool, err error) {
	for {
		if r.skip > 0 {
			k := min(r.skip, r.w-r.r)
			r.skip -= k
			r.drop(k)
			if r.skip > 0 {
				return 0, false, nil
			}
		}
		p := r.b[r.r:r.w]
		total, st := checkHeader(p)
		switch {
		case st == headerNeedMore:
			return 0, false, nil
		case st == headerBad:
			if !r.hunting {
				r.hunting = true
				r.stats.resyncs.Add(1)
			}
			r.drop(1)
		case total > limit:
			// Skip it whole rather than hunting inside it: its body would
			// be full of bytes that look like headers. An idle gap ends
			// the skip early in case the header was noise.
			r.hunting = false
			r.stats.tooLong.Add(1)
			r.skip = total
			k := min(r.skip, len(p))
			r.skip -= k
			r.drop(k)
			return 0, true, tooLong("raw", total, limit)
		case len(p) < total:
			return 0, false, nil
		default:
			r.hunting = false
			r.r += total
			r.stats.frames.Add(1)
			return copy(buf, p[:total]), true, nil
		}
	}
}

// drop discards k pending bytes.
func (r *RawReader) drop(k int) {
	r.r += k
	r.stats.dropped.Add(uint64(k))
}

// fill reads once into the buffer, noting whether the line was idle for a
// gap before the new bytes (if any) arrived.
func (r *RawReader) fill(limit int) {
	if r.r == r.w {
		r.r, r.w = 0, 0
	} else if len(r.b)-r.w < readRoom {
		r.w = copy(r.b, r.b[r.r:r.w])
		r.r = 0
	}
	if r.gap > 0 && !r.idle {
		r.idle, r.idleSince = true, r.now()
	}
	n := r.in.read(r.b[r.w:])
	if r.gap > 0 {
		if now := r.now(); now.Sub(r.idleSince) >= r.gap {
			// Everything buffered so far came before the silence.
			r.closeRegion(limit)
			r.idleSince = now
		}
	}
	if n > 0 {
		r.w += n
		r.idle = false
	}
}

// reserve makes the buffer big enough for a message of limit bytes plus a
// read, keeping the pending bytes. Sized by the caller's buffer, never by a
// length read from the wire.
func (r *RawReader) reserve(limit int) {
	// 259: the most checkHeader needs to judge an encapsulated message.
	size := max(limit, 259) + readRoom
	if len(r.b) >= size {
		return
	}
	b := make([]byte, size)
	r.w = copy(b, r.b[r.r:r.w])
	r.r = 0
	r.b = b
}

// closeRegion is called when no more bytes can join the pending ones: the
// line went idle or the input ended. The message started at r.r is therefore
// cut. The earliest position from which the pending bytes split exactly into
// plausible messages is kept (those messages are returned next); everything
// before it is dropped.
func (r *RawReader) closeRegion(limit int) {
	r.skip = 0
	r.hunting = false
	p := r.b[r.r:r.w]
	if len(p) == 0 {
		return
	}
	r.stats.badFrames.Add(1)
	r.drop(r.tileStart(p, limit))
}

// tileStart returns the smallest k such that p[k:] is a sequence of whole
// plausible messages of at most limit bytes each, or len(p) if there is none.
// It works backwards so that each position is judged once: O(len(p)).
func (r *RawReader) tileStart(p []byte, limit int) int {
	n := len(p)
	if cap(r.tile) < n+1 {
		r.tile = make([]bool, len(r.b)+1)
	}
	ok := r.tile[:n+1]
	ok[n] = true
	k := n
	for i := n - 1; i >= 0; i-- {
		total, st := checkHeader(p[i:])
		ok[i] = st == headerOK && total <= limit && total <= n-i && ok[i+total]
		if ok[i] {
			k = i
		}
	}
	return k
}

// AppendRaw appends msg in the raw framing, which is msg itself: an MQTT-SN
// message's Length field is its framing. It exists so that code choosing a
// framing at run time treats both alike.
func AppendRaw(dst, msg []byte) []byte { return append(dst, msg...) }
