package mqttsn

import (
	"net"
	"testing"
	"time"
)

// discardTransport is a Transport whose writes vanish and whose reads wait
// for Close: FuzzClientReceive feeds the client's receive path directly.
type discardTransport struct{ closed chan struct{} }

func (d *discardTransport) Read([]byte) (int, error)    { <-d.closed; return 0, net.ErrClosed }
func (d *discardTransport) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardTransport) Close() error                { close(d.closed); return nil }

// FuzzClientReceive hands arbitrary datagrams from "the gateway" to a
// connected client, as its receive goroutine would: whatever arrives, the
// client must not panic, and must stay connected unless the message was a
// DISCONNECT.
func FuzzClientReceive(f *testing.F) {
	for _, s := range seedWires(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewClient(&discardTransport{closed: make(chan struct{})}, ClientConfig{
			ClientID: "fuzz", KeepAlive: time.Hour, RetryInterval: time.Hour,
			PredefinedTopics: map[uint16]string{1: "p/1"},
			OnMessage:        func(Message) {},
		})
		defer c.Close()
		c.startSession()
		c.topics.add("a/b", 1)
		p, err := Decode(data)
		if err != nil {
			return
		}
		c.handle(p)
		if _, isDisconnect := p.(*Disconnect); !isDisconnect && !c.Connected() {
			t.Fatalf("%T %+v ended the session", p, p)
		}
	})
}
