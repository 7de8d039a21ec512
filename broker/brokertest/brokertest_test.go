package brokertest_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/brokertest"
)

func TestNewServerServesMQTT(t *testing.T) {
	s, addr := brokertest.NewServer(t, broker.Config{}, broker.Options{})
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	connect := []byte{0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 1, 'c'}
	if _, err := nc.Write(connect); err != nil {
		t.Fatal(err)
	}
	connack := make([]byte, 4)
	if _, err := io.ReadFull(nc, connack); err != nil || string(connack) != "\x20\x02\x00\x00" {
		t.Fatalf("CONNACK % X, %v", connack, err)
	}
	if got := s.Stats().ClientsConnected; got != 1 {
		t.Errorf("%d clients connected, want 1", got)
	}
}
