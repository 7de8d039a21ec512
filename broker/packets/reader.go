package packets

import (
	"errors"
	"io"
	"strconv"
)

// DefaultBufferSize is the buffer NewReader gives a Reader. Packets that fit
// it are returned straight from it, without allocation or copying.
const DefaultBufferSize = 4096

const (
	minBufferSize = 16
	// A body larger than the buffer goes into a separate slice, which
	// starts at up to bigChunk bytes and doubles as data arrives, so that a
	// peer announcing a large packet costs memory only as it sends it.
	bigChunk = 64 << 10
	// A separate body slice up to this size is kept for the next large
	// packet; a larger one is dropped at the next ReadPacket.
	bigRetain = 64 << 10
	// Reads returning no data and no error in a row before giving up.
	maxEmptyReads = 100
)

// Reader reads whole packets from a byte stream, typically a net.Conn.
//
// Framing errors (a malformed Remaining Length, ErrTooLarge) are sticky: the
// stream cannot be resynchronised, so every later ReadPacket returns the same
// error. Errors from the underlying reader, such as a deadline expiring, are
// not: the bytes read so far are kept and ReadPacket may be called again.
type Reader struct {
	rd   io.Reader
	max  int
	buf  []byte
	r, w int // buf[r:w] holds bytes read but not yet returned

	big   []byte      // the body of a packet larger than buf, as received so far
	bigFH FixedHeader // its header, while bigOn
	bigOn bool        // a large body is being read

	pending error // an error that arrived with data, returned by the next read
	sticky  error // a framing error

	growTo int  // NewSmallReader: the buffer doubles up to this size
	filled bool // the last read filled the buffer: the peer sends fast
}

// SmallBufferSize is the buffer a NewSmallReader starts with.
const SmallBufferSize = 512

// NewSmallReader returns a Reader whose buffer starts at SmallBufferSize and
// doubles, up to DefaultBufferSize, each time a read fills it. An idle
// connection so costs little memory, and a busy one still reads many
// packets per system call. A broker with thousands of idle clients wants
// this.
func NewSmallReader(r io.Reader, maxPacketSize int) *Reader {
	rd := NewReaderSize(r, maxPacketSize, SmallBufferSize)
	rd.growTo = DefaultBufferSize
	return rd
}

// NewReader returns a Reader with a DefaultBufferSize buffer. maxPacketSize
// bounds the whole packet (fixed header and body); a larger one is refused
// with ErrTooLarge before its body is read. maxPacketSize <= 0 means
// MaxPacketSize.
func NewReader(r io.Reader, maxPacketSize int) *Reader {
	return NewReaderSize(r, maxPacketSize, DefaultBufferSize)
}

// NewReaderSize is NewReader with a buffer of bufSize bytes (at least 16).
func NewReaderSize(r io.Reader, maxPacketSize, bufSize int) *Reader {
	if maxPacketSize <= 0 || maxPacketSize > MaxPacketSize {
		maxPacketSize = MaxPacketSize
	}
	bufSize = max(bufSize, minBufferSize)
	return &Reader{rd: r, max: maxPacketSize, buf: make([]byte, bufSize)}
}

// Reset discards all state, errors included, and makes the Reader read from
// r, keeping its buffer.
func (r *Reader) Reset(rd io.Reader) {
	big := r.big
	if cap(big) > bigRetain {
		big = nil
	}
	*r = Reader{rd: rd, max: r.max, buf: r.buf, big: big[:0]}
}

// ReadPacket reads the next packet and returns its fixed header and body. The
// body is valid until the next call. It returns io.EOF if the stream ends
// cleanly before a packet and io.ErrUnexpectedEOF if it ends inside one. A
// Remaining Length longer than 4 bytes yields ErrMalformed, a packet longer
// than maxPacketSize ErrTooLarge; both as *Error. It does not check the type
// or flags: Decode does.
func (r *Reader) ReadPacket() (FixedHeader, []byte, error) {
	if r.sticky != nil {
		return FixedHeader{}, nil, r.sticky
	}
	if r.bigOn {
		return r.readBig()
	}
	if cap(r.big) > bigRetain {
		r.big = nil
	}

	// The fixed header: 2 to 5 bytes.
	var rem, n int
	for {
		if r.w-r.r >= 2 {
			var st int
			rem, n, st = parseRemainingLength(r.buf[r.r+1 : r.w])
			if st == rlOK {
				break
			}
			if st == rlTooLong {
				return r.fail(errRemainingTooLong(Type(r.buf[r.r] >> 4)))
			}
		}
		if err := r.fill(); err != nil {
			return r.readErr(err)
		}
	}
	first := r.buf[r.r]
	fh := FixedHeader{Type: Type(first >> 4), Flags: first & 0x0F, Remaining: rem}
	hdr := 1 + n
	total := hdr + rem
	if total > r.max {
		return r.fail(&Error{Type: fh.Type, Kind: ErrTooLarge,
			Detail: "packet of " + strconv.Itoa(total) + " bytes, the limit is " + strconv.Itoa(r.max)})
	}

	if total > len(r.buf) {
		r.startBig(fh, hdr)
		return r.readBig()
	}
	for r.w-r.r < total {
		if err := r.fill(); err != nil {
			return r.readErr(err)
		}
	}
	start := r.r
	if r.r += total; r.r == r.w {
		r.r, r.w = 0, 0 // the returned body stays intact until the next fill
	}
	return fh, r.buf[start+hdr : start+total : start+total], nil
}

func (r *Reader) fail(err error) (FixedHeader, []byte, error) {
	r.sticky = err
	return FixedHeader{}, nil, err
}

// readErr turns a read error inside the header or a buffered body into
// ReadPacket's result.
func (r *Reader) readErr(err error) (FixedHeader, []byte, error) {
	if err == io.EOF && r.w > r.r {
		err = io.ErrUnexpectedEOF
	}
	return FixedHeader{}, nil, err
}

// fill reads once into the free end of buf, first moving the unread bytes to
// its start. It returns an error only if no byte arrived.
func (r *Reader) fill() error {
	if err := r.pending; err != nil {
		r.pending = nil
		return err
	}
	if r.filled && len(r.buf) < r.growTo {
		nb := make([]byte, min(2*len(r.buf), r.growTo))
		r.w = copy(nb, r.buf[r.r:r.w])
		r.r, r.buf = 0, nb
	}
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			return errBadRead
		}
		r.w += n
		r.filled = r.w == len(r.buf)
		if n > 0 {
			r.pending = err
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

var errBadRead = errors.New("packets: reader returned an invalid count")

// startBig switches to reading a body too large for buf into r.big, taking
// over the body bytes already buffered.
func (r *Reader) startBig(fh FixedHeader, hdr int) {
	r.r += hdr
	have := r.w - r.r // all of it belongs to this body: the packet is larger than buf
	if cap(r.big) < fh.Remaining {
		r.big = make([]byte, 0, min(fh.Remaining, max(bigChunk, have)))
	}
	r.big = append(r.big[:0], r.buf[r.r:r.w]...)
	r.r, r.w = 0, 0
	r.bigFH, r.bigOn = fh, true
}

// readBig reads the rest of a large body straight into r.big, growing it as
// data arrives but never beyond the body's length.
func (r *Reader) readBig() (FixedHeader, []byte, error) {
	need := r.bigFH.Remaining
	empty := 0
	for len(r.big) < need {
		if err := r.pending; err != nil {
			r.pending = nil
			return r.bigErr(err)
		}
		if len(r.big) == cap(r.big) {
			nb := make([]byte, len(r.big), min(need, 2*cap(r.big)))
			copy(nb, r.big)
			r.big = nb
		}
		free := r.big[len(r.big):min(cap(r.big), need)]
		n, err := r.rd.Read(free)
		if n < 0 || n > len(free) {
			return r.bigErr(errBadRead)
		}
		r.big = r.big[:len(r.big)+n]
		if n > 0 {
			empty = 0
			if err != nil {
				r.pending = err
			}
			continue
		}
		if err != nil {
			return r.bigErr(err)
		}
		if empty++; empty == maxEmptyReads {
			return r.bigErr(io.ErrNoProgress)
		}
	}
	r.bigOn = false
	return r.bigFH, r.big[:need:need], nil
}

func (r *Reader) bigErr(err error) (FixedHeader, []byte, error) {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return FixedHeader{}, nil, err
}
