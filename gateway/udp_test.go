package gateway

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func listenUDP(t *testing.T, cfg UDPConfig) *UDPTransport {
	t.Helper()
	tr, err := ListenUDP(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// receive reads one datagram within a bounded time.
func receive(t *testing.T, tr *UDPTransport, buf []byte) (int, Addr, error) {
	t.Helper()
	_ = tr.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	return tr.Receive(buf)
}

func TestUDPRoundTripIPv4AndIPv6(t *testing.T) {
	for _, tc := range []struct{ name, listen, peer string }{
		{"ipv4", "127.0.0.1:0", "127.0.0.1:0"},
		{"ipv6", "[::1]:0", "[::1]:0"},
		{"dual-stack, IPv4 peer", ":0", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, err := net.ListenPacket("udp", tc.peer)
			if err != nil {
				t.Skipf("no %s on this machine: %v", tc.peer, err)
			}
			defer peer.Close()
			tr := listenUDP(t, UDPConfig{Address: tc.listen})
			to := &net.UDPAddr{IP: peer.LocalAddr().(*net.UDPAddr).IP, Port: int(tr.LocalAddr().Port())}
			if _, err := peer.WriteTo([]byte{0x02, 0x16}, to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, from, err := receive(t, tr, buf)
			if err != nil || !bytes.Equal(buf[:n], []byte{0x02, 0x16}) {
				t.Fatalf("Receive = % X, %v", buf[:n], err)
			}
			if string(from) != peer.LocalAddr().String() {
				t.Errorf("from %q, want %q", from, peer.LocalAddr())
			}
			if err := tr.Send(from, []byte{0x02, 0x17}); err != nil {
				t.Fatal(err)
			}
			_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err = peer.ReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:n], []byte{0x02, 0x17}) {
				t.Fatalf("peer got % X, %v", buf[:n], err)
			}
		})
	}
}

func TestUDPOversizedDatagramIsReportedAndSkipped(t *testing.T) {
	tr := listenUDP(t, UDPConfig{Address: "127.0.0.1:0"})
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := net.UDPAddrFromAddrPort(tr.LocalAddr())
	peer.WriteTo(make([]byte, 100), to)
	peer.WriteTo([]byte{0x02, 0x16}, to)
	buf := make([]byte, 16)
	if _, from, err := receive(t, tr, buf); !errors.Is(err, ErrTooLong) || from == "" {
		t.Fatalf("oversized datagram: from %q, %v; want ErrTooLong with the sender", from, err)
	}
	if n, _, err := receive(t, tr, buf); err != nil || n != 2 {
		t.Fatalf("next datagram: %d bytes, %v", n, err)
	}
}

func TestUDPBroadcast(t *testing.T) {
	if err := listenUDP(t, UDPConfig{Address: "127.0.0.1:0"}).Broadcast([]byte{1}); !errors.Is(err, ErrNoBroadcast) {
		t.Errorf("Broadcast without an address = %v, want ErrNoBroadcast", err)
	}
	// A loopback address stands in for the network's broadcast address.
	listener, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	tr := listenUDP(t, UDPConfig{Address: "127.0.0.1:0", Broadcast: listener.LocalAddr().String()})
	advertise := []byte{0x05, 0x00, 0x01, 0x03, 0x84}
	if err := tr.Broadcast(advertise); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	_ = listener.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := listener.ReadFrom(buf); err != nil || !bytes.Equal(buf[:n], advertise) {
		t.Fatalf("got % X, %v", buf[:n], err)
	}
}

func TestUDPCloseUnblocksReceive(t *testing.T) {
	tr, err := ListenUDP(context.Background(), UDPConfig{Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, _, err := tr.Receive(make([]byte, 16)); done <- err }()
	time.Sleep(10 * time.Millisecond)
	tr.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Receive after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Receive still blocked after Close")
	}
}

func TestUDPBadAddresses(t *testing.T) {
	if _, err := ListenUDP(context.Background(), UDPConfig{Address: "127.0.0.1:0", Broadcast: "nowhere:x"}); err == nil {
		t.Error("bad broadcast address accepted")
	}
	if err := listenUDP(t, UDPConfig{Address: "127.0.0.1:0"}).Send("not an address", []byte{2, 0x17}); err == nil {
		t.Error("Send to a bad address succeeded")
	}
}

func TestUDPReadBufferIsEnlarged(t *testing.T) {
	tr := listenUDP(t, UDPConfig{Address: "127.0.0.1:0"})
	rc, err := tr.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	rc.Control(func(fd uintptr) { size, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	if size < 1<<20 && os.Geteuid() == 0 {
		t.Errorf("receive buffer %d bytes, want at least 1 MiB as root", size)
	}
	t.Logf("receive buffer: %d bytes", size)
}
