package mqttsn

import (
	"context"
	"net"
	"testing"
	"time"
)

// The delayed first SEARCHGW (specification §6.1) needs a fixed "random"
// delay, so these tests live inside the package, with plain UDP sockets for
// the gateway and for another client.

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readPacket reads one message from c within d; ok is false on timeout.
func readPacket(t *testing.T, c *net.UDPConn, d time.Duration) (Packet, *net.UDPAddr, bool) {
	t.Helper()
	buf := make([]byte, 512)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFromUDP(buf)
	if err != nil {
		return nil, nil, false
	}
	p, err := Decode(buf[:n])
	if err != nil {
		t.Fatalf("undecodable % X: %v", buf[:n], err)
	}
	return p, from, true
}

func send(t *testing.T, from *net.UDPConn, to net.Addr, p Packet) {
	t.Helper()
	b, err := Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := from.WriteTo(b, to); err != nil {
		t.Fatal(err)
	}
}

func startDiscover(t *testing.T, cfg DiscoverConfig) (net.PacketConn, chan GatewayInfo) {
	t.Helper()
	pc, err := ListenDiscovery(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	heard := make(chan GatewayInfo, 10)
	done := make(chan error, 1)
	go func() { done <- Discover(ctx, pc, cfg, func(g GatewayInfo) { heard <- g }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Discover: %v", err)
		}
		pc.Close()
	})
	return pc, heard
}

func TestDiscoverDelaysFirstSearch(t *testing.T) {
	gw := listenUDP(t)
	const delay = 300 * time.Millisecond
	startDiscover(t, DiscoverConfig{To: gw.LocalAddr(), Radius: 1, Delay: time.Hour,
		jitter: func(max time.Duration) time.Duration {
			if max != time.Hour {
				t.Errorf("jitter bound %v, want the Delay", max)
			}
			return delay
		}})
	start := time.Now()
	p, _, ok := readPacket(t, gw, 5*time.Second)
	if !ok {
		t.Fatal("no SEARCHGW")
	}
	if s, isSearch := p.(*SearchGW); !isSearch || s.Radius != 1 {
		t.Fatalf("got %+v, want SEARCHGW radius 1", p)
	}
	if waited := time.Since(start); waited < delay {
		t.Errorf("SEARCHGW after %v, before the %v delay", waited, delay)
	}
}

func TestDiscoverDropsSearchWhenAnotherClientAsked(t *testing.T) {
	gw, other := listenUDP(t), listenUDP(t)
	pc, heard := startDiscover(t, DiscoverConfig{To: gw.LocalAddr(), Radius: 1, Delay: time.Hour,
		jitter: func(time.Duration) time.Duration { return 500 * time.Millisecond }})
	// Another client's identical SEARCHGW arrives during the delay.
	send(t, other, pc.LocalAddr(), &SearchGW{Radius: 1})
	if p, _, ok := readPacket(t, gw, time.Second); ok {
		t.Fatalf("gateway got %+v; the search should have been dropped", p)
	}
	// The gateway's answer to the other client is heard all the same.
	send(t, gw, pc.LocalAddr(), &GWInfo{GatewayID: 4})
	select {
	case g := <-heard:
		if g.GatewayID != 4 {
			t.Errorf("heard %+v", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GWINFO not reported")
	}
}

func TestDiscoverSearchWithOtherRadiusDoesNotCount(t *testing.T) {
	gw, other := listenUDP(t), listenUDP(t)
	pc, _ := startDiscover(t, DiscoverConfig{To: gw.LocalAddr(), Radius: 1, Delay: time.Hour,
		jitter: func(time.Duration) time.Duration { return 300 * time.Millisecond }})
	send(t, other, pc.LocalAddr(), &SearchGW{Radius: 3})
	if _, _, ok := readPacket(t, gw, 5*time.Second); !ok {
		t.Fatal("a SEARCHGW with another radius cancelled ours")
	}
}
