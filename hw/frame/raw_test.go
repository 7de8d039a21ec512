package frame

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/sngate/sngate/mqttsn"
)

// rawWire lists one message of every type and Length form (the worked
// encodings of the reference, §1.6, and the boundaries around them), each of
// which the raw framing must carry unchanged.
var rawWire = []struct{ name, wire string }{
	{"CONNECT", "09 04 04 01 00 3C 61 62 63"},
	{"CONNACK", "03 05 00"},
	{"WILLTOPICREQ", "02 06"},
	{"WILLTOPIC", "04 07 20 77"},
	{"WILLTOPIC empty", "02 07"},
	{"WILLMSGREQ", "02 08"},
	{"WILLMSG", "03 09 78"},
	{"REGISTER", "09 0A 00 00 00 01 61 2F 62"},
	{"REGACK", "07 0B 00 01 00 01 00"},
	{"PUBLISH QoS1", "09 0C 20 00 01 00 02 68 69"},
	{"PUBLISH QoS-1 short name", "08 0C 62 61 62 00 00 31"},
	{"PUBACK", "07 0D 00 01 00 02 02"},
	{"PUBCOMP", "04 0E 00 02"},
	{"PUBREC", "04 0F 00 02"},
	{"PUBREL", "04 10 00 02"},
	{"SUBSCRIBE", "08 12 20 00 03 73 2F 23"},
	{"SUBACK", "08 13 20 00 00 00 03 00"},
	{"UNSUBSCRIBE", "08 14 00 00 04 73 2F 23"},
	{"UNSUBACK", "04 15 00 04"},
	{"PINGREQ", "02 16"},
	{"PINGREQ with client id", "05 16 61 62 63"},
	{"PINGRESP", "02 17"},
	{"DISCONNECT", "02 18"},
	{"DISCONNECT sleep 300 s", "04 18 01 2C"},
	{"ADVERTISE", "05 00 01 03 84"},
	{"SEARCHGW", "03 01 01"},
	{"GWINFO", "03 02 01"},
	{"GWINFO with GwAdd", "05 02 01 00 01"},
	{"WILLTOPICUPD empty", "02 1A"},
	{"WILLTOPICRESP", "03 1B 00"},
	{"WILLTOPICRESP v1.1", "02 1B"},
	{"WILLMSGUPD", "03 1C 78"},
	{"WILLMSGRESP", "03 1D 00"},
	{"long form PINGRESP", "01 00 04 17"},
	{"long form PUBLISH, no data", "01 00 09 0C 20 00 01 00 02"},
	{"long form PUBLISH, 300-byte payload", "01 01 35 0C 00 00 01 00 00" + hexSeq(300)},
	{"long form, 255-byte body (Paho's boundary)", "01 01 02 0C 00 00 01 00 00" + hexSeq(249)},
	{"short form, 254-byte body", "FF 0C 00 00 01 00 00" + hexSeq(248)},
	{"encapsulated PINGREQ", "05 FE 00 00 01 | 02 16"},
	{"encapsulated, empty node id", "03 FE 01 | 04 18 01 2C"},
	{"encapsulated long form PUBLISH", "05 FE 00 00 01 | 01 00 0A 0C 00 00 01 00 00 41"},
}

// hexSeq spells seq(n) in hex, for long payloads in the tables.
func hexSeq(n int) string { return fmt.Sprintf("%X", seq(n)) }

// rawReaders are the ways a test feeds a stream to a RawReader: it must find
// the same frames however the bytes are split across Reads.
var rawReaders = []struct {
	name string
	wrap func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"one byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"data with EOF", iotest.DataErrReader},
}

func TestRawWire(t *testing.T) {
	for _, tt := range rawWire {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			if _, err := mqttsn.Decode(wire); err != nil {
				t.Fatalf("the table is wrong: mqttsn.Decode(% X): %v", wire, err)
			}
			if got := AppendRaw([]byte{0xAA}, wire); !bytes.Equal(got, append([]byte{0xAA}, wire...)) {
				t.Fatalf("AppendRaw = % X", got)
			}
			readsBackEachWay(t, "", wire, 1024, [][]byte{wire}, newRaw)
		})
	}
}

// TestRawBackToBack reads every table message from one stream, with buffers
// from exactly the longest message up.
func TestRawBackToBack(t *testing.T) {
	var stream []byte
	var want [][]byte
	longest := 0
	for _, tt := range rawWire {
		w := unhex(t, tt.wire)
		stream = AppendRaw(stream, w)
		want = append(want, w)
		longest = max(longest, len(w))
	}
	for _, bufLen := range []int{longest, longest + 1, 65536} {
		readsBackEachWay(t, fmt.Sprintf("buf %d, ", bufLen), stream, bufLen, want, newRaw)
	}
}
