package xbee

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
)

// Stats counts what a Reader did with the bytes it read, so that a radio on
// the wrong baud rate or API mode, or a noisy line, shows up in metrics.
type Stats struct {
	Frames         uint64 // frames returned (by ReadFrame or ReadFrameData)
	ChecksumErrors uint64 // frames dropped for a bad checksum
	BadFrames      uint64 // frames dropped otherwise: a length of 0 or over MaxFrameLen, cut by a start byte (mode 2) or the end of input, or (ReadFrame) too short for their type
	Dropped        uint64 // wire bytes read but not returned in a frame
}

type counters struct {
	frames, checksumErrors, badFrames, dropped atomic.Uint64
}

// Reader reads API frames from a serial line. It hunts for the start byte,
// reads the length, unescapes (API mode 2) and checks the checksum; whatever
// fails is counted and skipped, and the reader resynchronises on the next
// start byte after the failed frame's own: nothing that comes over the line
// is fatal. Only read errors (io.EOF included) end a ReadFrame with an error.
//
// In mode 2 a start byte inside a frame can only mean that the frame was cut
// (its sender reset, bytes were lost), so the reader drops it and starts
// over at that byte. An escape byte followed by anything but a start byte is
// unescaped, whatever follows: the checksum catches a damaged escape.
//
// Any io.Reader works; a Read returning (0, nil), as a serial port with a
// read timeout does, is simply read again. ReadFrame and ReadFrameData must
// not be called concurrently; Stats may be called from any goroutine.
type Reader struct {
	src     io.Reader
	escaped bool
	eof     error // io.EOF once seen: returned on every later call
	err     error // another read error, returned once
	stats   counters

	b     []byte // raw bytes from the line; b[r:w] are pending
	r, w  int
	frame bool   // b[r] is a start byte and the frame after it is being collected
	pos   int    // next raw byte of that frame to look at
	esc   bool   // b[pos-1] was an escape byte (mode 2)
	d     []byte // the frame's unescaped bytes: length (2), frame data, checksum
}

// readBuf is the Reader's buffer: more than the longest possible frame on the
// wire (1 + 2*(2+MaxFrameLen+1) = 1031 bytes if everything were escaped) plus
// room for a read.
const readBuf = 2048

// NewReader returns a Reader of API frames from r, in API mode 2 (escaped)
// if escaped is true, else mode 1.
func NewReader(r io.Reader, escaped bool) *Reader {
	return &Reader{src: r, escaped: escaped, b: make([]byte, readBuf), d: make([]byte, 0, 2+MaxFrameLen+1)}
}

// Stats returns the reader's counters.
func (r *Reader) Stats() Stats {
	return Stats{
		Frames:         r.stats.frames.Load(),
		ChecksumErrors: r.stats.checksumErrors.Load(),
		BadFrames:      r.stats.badFrames.Load(),
		Dropped:        r.stats.dropped.Load(),
	}
}

// ReadFrame reads the next frame and decodes it. Frames of types the package
// does not know are returned as *Unknown; frames too short for their type
// are counted (BadFrames) and skipped. The frame, its byte slices included,
// belongs to the caller.
func (r *Reader) ReadFrame() (Frame, error) {
	for {
		data, wire, err := r.next()
		if err != nil {
			return nil, err
		}
		f, err := Decode(bytes.Clone(data))
		if err != nil {
			r.stats.badFrames.Add(1)
			r.stats.dropped.Add(uint64(wire))
			continue
		}
		r.stats.frames.Add(1)
		return f, nil
	}
}

// ReadFrameData reads the next frame with a good checksum and returns its
// frame data (API identifier first, unescaped), without decoding it. The
// slice is the Reader's own and valid only until the next call; with
// Unmarshal into a reused frame this reads without allocating.
func (r *Reader) ReadFrameData() ([]byte, error) {
	data, _, err := r.next()
	if err != nil {
		return nil, err
	}
	r.stats.frames.Add(1)
	return data, nil
}

// next returns the data of the next frame with a good checksum and the
// number of bytes it took on the wire.
func (r *Reader) next() (data []byte, wire int, err error) {
	for {
		if data, wire, ok := r.scan(); ok {
			return data, wire, nil
		}
		if err := r.err; err != nil {
			r.err = nil
			return nil, 0, err
		}
		if r.eof != nil {
			if r.frame {
				// The frame in progress can never complete. Drop its start
				// byte and scan on: in mode 1 the bytes taken for it may
				// hold whole frames.
				r.stats.badFrames.Add(1)
				r.drop(1)
				r.frame = false
				continue
			}
			r.drop(r.w - r.r)
			return nil, 0, r.eof
		}
		r.fill()
	}
}

// frame collection outcomes.
type collected uint8

const (
	needMore collected = iota
	complete
	badLength // length 0 or over MaxFrameLen
	cut       // mode 2: a start byte arrived before the frame was complete
)

// scan looks for the next good frame in the pending bytes.
func (r *Reader) scan() ([]byte, int, bool) {
	for {
		if !r.frame {
			i := bytes.IndexByte(r.b[r.r:r.w], startByte)
			if i < 0 {
				r.drop(r.w - r.r)
				return nil, 0, false
			}
			r.drop(i)
			r.frame, r.pos, r.esc, r.d = true, r.r+1, false, r.d[:0]
		}
		switch r.collect() {
		case needMore:
			return nil, 0, false
		case cut:
			// The new start byte at pos begins the next frame.
			r.stats.badFrames.Add(1)
			r.drop(r.pos - r.r)
			r.frame = false
		case badLength:
			// Drop only the start byte: in mode 1 the real next frame may
			// start within the bytes taken for this one's length.
			r.stats.badFrames.Add(1)
			r.drop(1)
			r.frame = false
		case complete:
			n := len(r.d)
			if checksum(r.d[2:n-1]) != r.d[n-1] {
				r.stats.checksumErrors.Add(1)
				r.drop(1)
				r.frame = false
				continue
			}
			wire := r.pos - r.r
			r.r, r.frame = r.pos, false
			return r.d[2 : n-1], wire, true
		}
	}
}

// collect unescapes raw bytes from pos into d until the frame (length,
// frame data, checksum) is complete.
func (r *Reader) collect() collected {
	for {
		want := 2 // the length field
		if len(r.d) >= 2 {
			want = 2 + int(be16(r.d)) + 1
		}
		if len(r.d) == want {
			return complete
		}
		if r.pos == r.w {
			return needMore
		}
		c := r.b[r.pos]
		if r.escaped {
			if c == startByte {
				return cut
			}
			r.pos++
			if r.esc {
				c ^= escXOR
				r.esc = false
			} else if c == escByte {
				r.esc = true
				continue
			}
		} else {
			r.pos++
		}
		r.d = append(r.d, c)
		if len(r.d) == 2 {
			if n := be16(r.d); n == 0 || n > MaxFrameLen {
				return badLength
			}
		}
	}
}

// drop discards k pending bytes.
func (r *Reader) drop(k int) {
	r.r += k
	r.stats.dropped.Add(uint64(k))
}

// fill reads once, first making room: pending bytes (a frame in progress,
// shorter than the buffer by construction) move to the front.
func (r *Reader) fill() {
	if r.r == r.w {
		r.r, r.w = 0, 0
	} else if len(r.b)-r.w < readBuf/4 {
		k := r.r
		r.w = copy(r.b, r.b[r.r:r.w])
		r.r, r.pos = 0, r.pos-k
	}
	p := r.b[r.w:]
	n, err := r.src.Read(p)
	if n < 0 || n > len(p) {
		r.err = fmt.Errorf("xbee: io.Reader returned %d bytes for a %d-byte read", n, len(p))
		return
	}
	r.w += n
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		r.eof = err
	default:
		r.err = err
	}
}
