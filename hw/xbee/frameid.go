package xbee

import "sync/atomic"

// FrameIDs hands out frame ids for requests: 1, 2, ..., 255, 1, ... It never
// returns 0, because frame id 0 tells the radio not to send a TransmitStatus
// (or ATResponse) at all; the Paho gateway wraps through 0 once every 256
// sends, and that send is then reported as failed after a timeout. The zero
// value is ready to use and safe for concurrent use.
type FrameIDs struct{ last atomic.Uint32 }

// Next returns the next frame id.
func (f *FrameIDs) Next() byte {
	for {
		last := f.last.Load() // 0 (unused) or 1..255
		next := last%255 + 1
		if f.last.CompareAndSwap(last, next) {
			return byte(next)
		}
	}
}
