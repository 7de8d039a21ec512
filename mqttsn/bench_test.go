package mqttsn

import "testing"

// Benchmark packets: a 32-byte PUBLISH (the hot path), a CONNECT and a
// REGISTER (per session, strings that Decode must copy).
var benchPackets = []struct {
	name string
	pkt  Packet
}{
	{"PUBLISH", &Publish{QoS: QoS1, TopicID: 1, MsgID: 2, Data: seq(32)}},
	{"CONNECT", &Connect{CleanSession: true, KeepAlive: 60, ClientID: "sensor-0001"}},
	{"REGISTER", &Register{MsgID: 1, TopicName: "building/3/room/12/temperature"}},
}

func BenchmarkAppend(b *testing.B) {
	for _, bp := range benchPackets {
		b.Run(bp.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.SetBytes(int64(Len(bp.pkt)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = Append(buf[:0], bp.pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bp := range benchPackets {
		b.Run(bp.name, func(b *testing.B) {
			wire, err := Marshal(bp.pkt)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(wire); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	for _, bp := range benchPackets {
		b.Run(bp.name, func(b *testing.B) {
			wire, err := Marshal(bp.pkt)
			if err != nil {
				b.Fatal(err)
			}
			p := newPacket(bp.pkt.Type())
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Unmarshal(wire, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
