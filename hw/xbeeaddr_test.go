package hw

import (
	"testing"

	"github.com/sngate/sngate/gateway"
)

// TestAddrOf: a radio's gateway address is its 64-bit address in 16
// lower-case hex digits, which Send reads back.
func TestAddrOf(t *testing.T) {
	for long, want := range map[uint64]gateway.Addr{
		0:                  "xbee:0000000000000000",
		0x0013A20040A1B2C3: "xbee:0013a20040a1b2c3",
		^uint64(0):         "xbee:ffffffffffffffff",
	} {
		if got := addrOf(long); got != want {
			t.Errorf("addrOf(%#x) = %q, want %q", long, got, want)
		}
	}
}

var addrSink gateway.Addr

// BenchmarkAddrOf is the address of every message received from a radio
// (kept, as Receive's caller keeps it).
func BenchmarkAddrOf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		addrSink = addrOf(0x0013A20040A1B2C3)
	}
}
