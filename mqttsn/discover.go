package mqttsn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

	// Retry is the first gap before SEARCHGW is sent again while no gateway
	// has been heard; each gap doubles (specification §6.1). 0: send once.
	Retry time.Duration

	// Delay, when positive, holds the first SEARCHGW back for a random time
	// below Delay (T_SEARCHGW) and drops it if another client's SEARCHGW
	// with the same radius is heard meanwhile (specification §6.1), so that
	// a field of sensors powering up together does not flood the network.
	// The answers to the other client's search are heard all the same.
	Delay time.Duration

	jitter func(time.Duration) time.Duration // tests replace rand.N
}

// Discover sends SEARCHGW on conn and reports every GWINFO and ADVERTISE it
// hears through found, on the calling goroutine, until ctx ends. It returns
// nil when ctx ends, or the network error that stopped it. Malformed
// datagrams are skipped.
func Discover(ctx context.Context, conn net.PacketConn, cfg DiscoverConfig, found func(GatewayInfo)) error {
	search, err := Marshal(&SearchGW{Radius: cfg.Radius})
	if err != nil {
		return err
	}
	// Reads end when ctx does: a deadline in the past wakes ReadFrom.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	s := searchSchedule{retry: cfg.Retry}
	if cfg.Delay > 0 {
		jitter := cfg.jitter
		if jitter == nil {
			jitter = rand.N[time.Duration]
		}
		s.next = time.Now().Add(jitter(cfg.Delay))
	} else {
		s.next = time.Now()
	}

	buf := make([]byte, MaxMessageLen)
	for {
		if ctx.Err() != nil {
			return nil
		}
		if s.due() {
			if _, err := conn.WriteTo(search, cfg.To); err != nil {
				return fmt.Errorf("send SEARCHGW to %v: %w", cfg.To, err)
			}
			s.searched()
			continue
		}
		_ = conn.SetReadDeadline(s.next) // zero: no deadline
		if ctx.Err() != nil {            // cancelled before the deadline was set
			return nil
		}
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // time to search (again)
			}
			return fmt.Errorf("listen for gateways: %w", err)
		}
		p, err := Decode(buf[:n])
		if err != nil {
			continue
		}
		switch p := p.(type) {
		case *SearchGW:
			if !s.sent && p.Radius == cfg.Radius {
				s.searched() // another client asked for us
			}
		case *GWInfo:
			s.stop()
			found(GatewayInfo{GatewayID: p.GatewayID, From: from, Address: append([]byte(nil), p.GatewayAddr...)})
		case *Advertise:
			s.stop()
			found(GatewayInfo{GatewayID: p.GatewayID, From: from, Advertised: true,
				Interval: time.Duration(p.Duration) * time.Second})
		}
	}
}

// searchSchedule says when the next SEARCHGW is due.
type searchSchedule struct {
	next  time.Time // zero: no more searching
	retry time.Duration
	sent  bool // a search went out, ours or another client's
}

func (s *searchSchedule) due() bool { return !s.next.IsZero() && !time.Now().Before(s.next) }

// searched records that a search went out and schedules the next one, with
// the gap doubled each time.
func (s *searchSchedule) searched() {
	s.sent = true
	if s.retry <= 0 {
		s.next = time.Time{}
		return
	}
	s.next = time.Now().Add(s.retry)
	s.retry *= 2
}

// stop ends searching: a gateway has been heard.
func (s *searchSchedule) stop() { s.next = time.Time{} }
