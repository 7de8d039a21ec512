package upstream

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// countingConn records each Write that reaches the network.
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

// TestPacketConnWritesEachPacketOnce: paho writes a PUBLISH in parts; the
// connection sends it in one write (one system call), byte for byte.
func TestPacketConnWritesEachPacketOnce(t *testing.T) {
	raw := &countingConn{}
	pc := newPacketConn(deadlineConn{Conn: raw, timeout: time.Second})
	pub := &packets.Publish{Topic: "gw1/sensors/t", QoS: 1, PacketID: 7, Payload: []byte("21.5"),
		Properties: &packets.Properties{ContentType: "text/plain"}}
	if _, err := pub.WriteTo(pc); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if _, err := pub.WriteTo(&want); err != nil {
		t.Fatal(err)
	}
	if len(raw.writes) != 1 || !bytes.Equal(raw.writes[0], want.Bytes()) {
		t.Fatalf("%d writes % X; want one: % X", len(raw.writes), raw.writes, want.Bytes())
	}
	// A write outside a packet goes straight through.
	if _, err := pc.Write([]byte{0xC0, 0x00}); err != nil || len(raw.writes) != 2 {
		t.Fatalf("plain write: %v, %d writes", err, len(raw.writes))
	}
}
