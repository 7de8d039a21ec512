package mqttsn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// GatewayInfo is a gateway heard during discovery, from its GWINFO answer or
// its ADVERTISE broadcast.
type GatewayInfo struct {
	GatewayID  uint8
	From       net.Addr      // where the message came from
	Advertised bool          // heard in an ADVERTISE rather than a GWINFO
	Interval   time.Duration // ADVERTISE: time until the next one
	Address    []byte        // GWINFO sent by a client on the gateway's behalf: the gateway's address
}

// DiscoverConfig configures Discover.
type DiscoverConfig struct {
	To     net.Addr // where SEARCHGW goes: a broadcast, multicast or gateway address
	Radius uint8    // broadcast radius in hops; 0 = the whole network
	// Retry is the first gap before SEARCHGW is sent again while no GWINFO
	// has come; each gap doubles (specification §6.1). 0: send once.
	Retry time.Duration
}

// Discover sends SEARCHGW on conn and reports every GWINFO and ADVERTISE it
// hears through found, until ctx ends. It returns nil when ctx ends, or the
// network error that stopped it. Malformed datagrams are skipped.
func Discover(ctx context.Context, conn net.PacketConn, cfg DiscoverConfig, found func(GatewayInfo)) error {
	search, err := Marshal(&SearchGW{Radius: cfg.Radius})
	if err != nil {
		return err
	}
	if _, err := conn.WriteTo(search, cfg.To); err != nil {
		return fmt.Errorf("send SEARCHGW to %v: %w", cfg.To, err)
	}

	// Reads end when ctx does: closing the deadline wakes ReadFrom.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	gap, next := cfg.Retry, time.Now().Add(cfg.Retry)
	answered := false
	buf := make([]byte, MaxMessageLen)
	for {
		if cfg.Retry > 0 && !answered {
			_ = conn.SetReadDeadline(next)
		}
		if ctx.Err() != nil {
			return nil
		}
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !answered {
				if _, err := conn.WriteTo(search, cfg.To); err != nil {
					return fmt.Errorf("send SEARCHGW to %v: %w", cfg.To, err)
				}
				gap *= 2
				next = time.Now().Add(gap)
				continue
			}
			return fmt.Errorf("listen for gateways: %w", err)
		}
		p, err := Decode(buf[:n])
		if err != nil {
			continue
		}
		switch p := p.(type) {
		case *GWInfo:
			answered = true
			_ = conn.SetReadDeadline(time.Time{})
			if ctx.Err() != nil {
				return nil
			}
			found(GatewayInfo{GatewayID: p.GatewayID, From: from, Address: append([]byte(nil), p.GatewayAddr...)})
		case *Advertise:
			found(GatewayInfo{GatewayID: p.GatewayID, From: from, Advertised: true,
				Interval: time.Duration(p.Duration) * time.Second})
		}
	}
}
