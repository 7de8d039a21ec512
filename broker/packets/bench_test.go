package packets

import "testing"

// BenchmarkReadDecodePublish is the broker's inbound hot path: cut a QoS 1
// PUBLISH (16-byte topic, 32-byte payload) from the stream and decode it
// into a reused PublishPacket.
func BenchmarkReadDecodePublish(b *testing.B) {
	wire := benchPublish()
	var stream []byte
	for range 64 {
		stream = append(stream, wire...)
	}
	r := NewReader(&cyclicReader{data: stream}, 0)
	var p PublishPacket
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		fh, body, err := r.ReadPacket()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Decode(fh, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendPublish is the fan-out path: one delivery into a reused
// buffer.
func BenchmarkAppendPublish(b *testing.B) {
	payload := seq(32)
	buf := make([]byte, 0, 128)
	b.SetBytes(int64(len(benchPublish())))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPublish(buf[:0], false, 1, false, benchTopic, 7, payload)
	}
}

func BenchmarkAppendAck(b *testing.B) {
	buf := make([]byte, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendAck(buf[:0], TypePuback, 7)
	}
}

func benchDecode(b *testing.B, p Packet) {
	fh, body := readOne(b, p.Append(nil))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(fh, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeConnect(b *testing.B) {
	benchDecode(b, &ConnectPacket{CleanSession: true, KeepAlive: 60, ClientID: "sensor-0001",
		UsernameFlag: true, Username: "gateway", PasswordFlag: true, Password: []byte("secret")})
}

func BenchmarkDecodeSubscribe(b *testing.B) {
	benchDecode(b, &SubscribePacket{PacketID: 1, Filters: []Subscription{
		{Filter: "sensors/+/temperature", QoS: 1}, {Filter: "gateway/#", QoS: 0}}})
}
