package xbee

import "slices"

// Bytes with a meaning on the wire.
const (
	startByte = 0x7E // starts every frame
	escByte   = 0x7D // API mode 2: the next byte is XORed with 0x20
	xon       = 0x11 // escaped in mode 2 so software flow control never sees them
	xoff      = 0x13
	escXOR    = 0x20
)

// MaxFrameLen is the longest frame data (API identifier included) this
// package encodes or accepts. Zigbee frames carry at most a few hundred bytes
// (an RF payload of up to 255 plus a header of 18), so anything longer read
// from the line is noise: the Reader rejects it rather than wait for, or
// allocate, what a corrupted length field asks for.
const MaxFrameLen = 512

// needsEscape reports whether API mode 2 sends c as 0x7D, c^0x20.
func needsEscape(c byte) bool {
	return c == startByte || c == escByte || c == xon || c == xoff
}

// checksum returns the checksum byte of frame data.
func checksum(data []byte) byte {
	var sum byte
	for _, c := range data {
		sum += c
	}
	return 0xFF - sum
}

// Append appends f as a complete API frame (start byte, length, frame data,
// checksum) to dst, escaped for API mode 2 if escaped is true. It allocates
// only when dst lacks capacity. Frame data longer than MaxFrameLen is refused
// with an error of kind ErrTooLong and dst is returned unchanged.
func Append(dst []byte, f Frame, escaped bool) ([]byte, error) {
	if f == nil {
		return dst, &Error{Kind: ErrInvalid, Detail: "no frame to encode"}
	}
	n := f.size()
	if n > MaxFrameLen {
		return dst, typeError(f.Type(), ErrTooLong, "%d bytes of frame data, at most %d", n, MaxFrameLen)
	}
	start := len(dst)
	dst = append(dst, startByte, byte(n>>8), byte(n), byte(f.Type()))
	dst = f.appendData(dst)
	dst = append(dst, checksum(dst[start+3:]))
	if escaped {
		dst = escapeFrom(dst, start+1)
	}
	return dst, nil
}

// escapeFrom applies the API mode 2 escaping to b[from:] in place, growing b
// by one byte per escaped byte and moving bytes from the end backwards, so
// that Append needs no scratch buffer.
func escapeFrom(b []byte, from int) []byte {
	k := 0
	for _, c := range b[from:] {
		if needsEscape(c) {
			k++
		}
	}
	if k == 0 {
		return b
	}
	old := len(b)
	b = slices.Grow(b, k)[:old+k]
	j := len(b) - 1
	for i := old - 1; i >= from; i-- {
		c := b[i]
		if needsEscape(c) {
			b[j], b[j-1] = c^escXOR, escByte
			j -= 2
		} else {
			b[j] = c
			j--
		}
	}
	return b
}

// Decode parses frame data (API identifier first, as ReadFrameData returns
// it) into a new frame. A type this package does not know becomes *Unknown.
// Byte slices in the result alias data. Errors are *Error.
func Decode(data []byte) (Frame, error) {
	if len(data) == 0 {
		return nil, &Error{Kind: ErrTooShort, Detail: "empty frame data, no API identifier"}
	}
	t := FrameType(data[0])
	f := newFrame(t)
	if f == nil {
		f = &Unknown{ID: t}
	}
	if err := f.decode(data[1:]); err != nil {
		return nil, err
	}
	return f, nil
}

// Unmarshal parses frame data into f, which must be of the frame's type (an
// *Unknown takes any type). It lets a hot path reuse one frame value:
// decoding a Receive into an existing *Receive allocates nothing. Byte slices
// in f alias data.
func Unmarshal(data []byte, f Frame) error {
	if f == nil {
		return &Error{Kind: ErrInvalid, Detail: "no frame to decode into"}
	}
	if len(data) == 0 {
		return &Error{Kind: ErrTooShort, Detail: "empty frame data, no API identifier"}
	}
	t := FrameType(data[0])
	if u, ok := f.(*Unknown); ok {
		u.ID = t
	} else if t != f.Type() {
		return typeError(t, ErrInvalid, "cannot be decoded as %v", f.Type())
	}
	return f.decode(data[1:])
}
