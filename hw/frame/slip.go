package frame

import "io"

// SLIP special bytes (RFC 1055).
const (
	slipEnd    = 0xC0 // END: ends a frame
	slipEsc    = 0xDB // ESC: the next byte is ESC_END or ESC_ESC
	slipEscEnd = 0xDC // ESC ESC_END stands for a data byte 0xC0
	slipEscEsc = 0xDD // ESC ESC_ESC stands for a data byte 0xDB
)

// SLIPReader reads MQTT-SN messages framed with SLIP (RFC 1055, plain: no
// checksum, no compression).
//
// END bytes delimit frames; empty frames (END END, as left by senders that
// open every frame with an END to flush line noise) are ignored. An ESC not
// followed by ESC_END or ESC_ESC means the frame was damaged: it is dropped
// up to the next END and counted (Stats.BadFrames). A frame longer than the
// caller's buffer is skipped up to the next END (ErrTooLong). Bytes before
// the first END are a frame like any other, because a sender that does not
// open with END would otherwise lose its first message; line noise there
// becomes a frame that mqttsn.Decode refuses.
//
// Unlike the raw framing, SLIP needs nothing from the timing of Read: any
// io.Reader works. A Read returning (0, nil), as a serial port with a read
// timeout does, is simply read again.
type SLIPReader struct {
	in    input
	stats counters

	b    []byte // read buffer; b[r:w] not yet looked at
	r, w int

	frame []byte // decoded bytes of the frame in progress (sized by the caller's buffer)
	wire  int    // bytes the frame in progress took on the wire, for Stats.Dropped
	esc   bool   // the previous byte was ESC
	skip  bool   // discarding up to the next END
}

// NewSLIPReader returns a SLIPReader that reads r.
func NewSLIPReader(r io.Reader) *SLIPReader {
	return &SLIPReader{in: input{src: r}, b: make([]byte, readRoom)}
}

// Stats returns the reader's counters. It may be called from any goroutine.
func (r *SLIPReader) Stats() Stats { return r.stats.snapshot() }

// ReadFrame reads the next frame into buf and returns its length. A frame
// longer than buf is skipped: the error wraps ErrTooLong and the next call
// continues after it. At the end of input, a frame without its closing END
// is dropped and io.EOF returned; other read errors are returned as they are,
// after the frames completed by the same Read, and the frame in progress is
// kept.
func (r *SLIPReader) ReadFrame(buf []byte) (int, error) {
	if cap(r.frame) < len(buf) {
		r.frame = append(make([]byte, 0, len(buf)), r.frame...)
	}
	for {
		if n, done, err := r.decode(buf); done {
			return n, err
		}
		if err := r.in.takeErr(); err != nil {
			return 0, err
		}
		if r.in.eof != nil {
			if len(r.frame) > 0 || r.wire > 0 {
				if !r.skip {
					r.stats.badFrames.Add(1)
				}
				r.discard()
				r.skip = false
			}
			return 0, r.in.eof
		}
		r.w = r.in.read(r.b)
		r.r = 0
	}
}

// decode runs the unstuffing state machine over the buffered bytes until a
// frame is complete or one has to be skipped. done is false when it needs
// more bytes.
func (r *SLIPReader) decode(buf []byte) (n int, done bool, err error) {
	for r.r < r.w {
		c := r.b[r.r]
		r.r++
		if c == slipEnd {
			switch {
			case r.skip:
				r.discard()
				r.skip = false
			case r.esc: // ESC END: the frame was cut inside an escape
				r.stats.badFrames.Add(1)
				r.discard()
			case len(r.frame) == 0: // empty frame: a sender's line flush
				r.wire = 0
			case len(r.frame) > len(buf): // begun by a call with a bigger buffer
				r.stats.tooLong.Add(1)
				r.discard()
				return 0, true, tooLong("slip", 0, len(buf))
			default:
				n := copy(buf, r.frame)
				r.frame, r.wire = r.frame[:0], 0
				r.stats.frames.Add(1)
				return n, true, nil
			}
			continue
		}
		r.wire++
		if r.skip {
			continue
		}
		if r.esc {
			r.esc = false
			switch c {
			case slipEscEnd:
				c = slipEnd
			case slipEscEsc:
				c = slipEsc
			default:
				r.stats.badFrames.Add(1)
				r.skip = true
				continue
			}
		} else if c == slipEsc {
			r.esc = true
			continue
		}
		if len(r.frame) >= len(buf) {
			r.stats.tooLong.Add(1)
			r.skip = true
			return 0, true, tooLong("slip", 0, len(buf))
		}
		r.frame = append(r.frame, c)
	}
	return 0, false, nil
}

// discard drops the frame in progress, counting its wire bytes.
func (r *SLIPReader) discard() {
	r.stats.dropped.Add(uint64(r.wire))
	r.frame, r.wire, r.esc = r.frame[:0], 0, false
}

// AppendSLIP appends msg framed with SLIP: END, msg with END and ESC bytes
// escaped, END. The leading END ends whatever line noise the receiver has
// buffered, so that noise costs a rejected fragment instead of the message.
// At most 2*len(msg)+2 bytes are appended.
func AppendSLIP(dst, msg []byte) []byte {
	dst = append(dst, slipEnd)
	for _, c := range msg {
		switch c {
		case slipEnd:
			dst = append(dst, slipEsc, slipEscEnd)
		case slipEsc:
			dst = append(dst, slipEsc, slipEscEsc)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, slipEnd)
}
