package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/sngate/sngate/mqttsn"
)

func cmdDiscover(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("discover", "[flags]",
		"Look for MQTT-SN gateways: send SEARCHGW and print each GWINFO and\n"+
			"ADVERTISE heard until the timeout. Exits 1 if no gateway was heard.", s)
	var (
		to      string
		listen  string
		radius  int
		timeout time.Duration
	)
	fs.stringVar(&to, "to", "", "255.255.255.255:1884", "send SEARCHGW to `ADDR` (broadcast, multicast or one gateway)")
	fs.stringVar(&listen, "listen", "", ":0", "listen on `ADDR`; a gateway's port (\":1884\") also hears its ADVERTISE broadcasts")
	fs.intVar(&radius, "radius", "", 0, "broadcast radius in `HOPS` (0: the whole network)")
	fs.durationVar(&timeout, "timeout", 5*time.Second, "listen for `DURATION`")
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}
	var err error
	var toAddr *net.UDPAddr
	switch {
	case radius < 0 || radius > 255:
		err = fmt.Errorf("--radius %d is not 0..255", radius)
	case timeout <= 0:
		err = fmt.Errorf("--timeout %v must be positive", timeout)
	default:
		if toAddr, err = net.ResolveUDPAddr("udp", to); err != nil {
			err = fmt.Errorf("--to %q: %w", to, err)
		}
	}
	if err != nil {
		return usageError(fs, s, err)
	}

	pc, err := mqttsn.ListenDiscovery(ctx, listen)
	if err != nil {
		return failure("discover", s, err)
	}
	defer pc.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	heard := 0 // Discover calls back on this goroutine
	err = mqttsn.Discover(ctx, pc, mqttsn.DiscoverConfig{To: toAddr, Radius: uint8(radius), Retry: time.Second},
		func(g mqttsn.GatewayInfo) {
			heard++
			switch {
			case g.Advertised:
				fmt.Fprintf(s.out, "ADVERTISE gateway %d from %v, next in %v\n", g.GatewayID, g.From, g.Interval)
			case len(g.Address) > 0:
				fmt.Fprintf(s.out, "GWINFO gateway %d from %v, gateway address %x\n", g.GatewayID, g.From, g.Address)
			default:
				fmt.Fprintf(s.out, "GWINFO gateway %d from %v\n", g.GatewayID, g.From)
			}
		})
	if err != nil {
		return failure("discover", s, err)
	}
	if heard == 0 {
		return failure("discover", s, fmt.Errorf("no gateway answered within %v", timeout))
	}
	return exitOK
}
