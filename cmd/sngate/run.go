package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/term"

	"github.com/sngate/sngate/bridge"
	"github.com/sngate/sngate/bridge/upstream"
	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/hw"
	"github.com/sngate/sngate/hw/gpio"
	"github.com/sngate/sngate/internal/observe"
)

// configFlags are the flags of every command that reads the configuration.
type configFlags struct {
	path string
}

func (c *configFlags) register(fs *flagSet) {
	fs.stringVar(&c.path, "config", "c", "",
		"read the config from `PATH` (default: $"+envConfig+", else the built-in defaults only)")
}

func cmdRun(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("run", "[flags]",
		"Run the gateway until SIGINT or SIGTERM. With no config file it runs on\nthe built-in defaults, keeping its data in ./data.", s)
	var cf configFlags
	cf.register(fs)
	var dataDir string
	fs.stringVar(&dataDir, "data-dir", "", "", "keep data in `DIR`, overriding data_dir from the config")
	var logFormat, logLevel string
	fs.stringVar(&logFormat, "log-format", "", "", "log as `FORMAT` (text or json), overriding log.format")
	fs.stringVar(&logLevel, "log-level", "", "", "log from `LEVEL` up (debug, info, warn, error), overriding log.level")
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}

	var overrides []override
	if isSet(fs, "log-format") {
		overrides = append(overrides, override{flag: "--log-format", key: "log.format",
			set: func(c *Config) { c.Log.Format = logFormat }})
	}
	if isSet(fs, "log-level") {
		overrides = append(overrides, override{flag: "--log-level", key: "log.level",
			set: func(c *Config) { c.Log.Level = logLevel }})
	}
	if isSet(fs, "data-dir") {
		overrides = append(overrides, override{flag: "--data-dir", key: "data_dir",
			set: func(c *Config) { c.DataDir = dataDir }})
	}
	path, source := configPath(cf.path)
	cfg, err := loadConfig(path, overrides...)
	if err != nil {
		fmt.Fprintln(s.err, err)
		return exitError
	}

	level := new(slog.LevelVar)
	log := newLogger(cfg.Log, s.err, level)
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		log.Error("cannot create data dir", "data_dir", cfg.DataDir, "err", err)
		return exitError
	}
	srv, err := broker.New(cfg.Broker, broker.Options{DataDir: cfg.DataDir, Logger: log.With("part", "broker"), Version: version})
	if err != nil {
		log.Error("cannot start the broker", "err", err)
		return exitError
	}
	// paho.mqtt.golang logs through package variables: set them once here.
	upstream.SetMQTT311LibraryLogger(log.With("part", "bridge", "lib", "paho.mqtt.golang"))
	// The bridge attaches to the broker before its listeners open, so
	// that every message from the first one on is relayed.
	br, err := bridge.New(cfg.Bridge, srv, bridge.Options{DataDir: cfg.DataDir, Logger: log.With("part", "bridge")})
	if err != nil {
		log.Error("cannot start the bridge", "err", err)
		shutdown(srv, nil, nil, log)
		return exitError
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start the broker", "err", err)
		shutdown(srv, nil, br, log)
		return exitError
	}
	br.Start()
	h, err := newHealth(srv)
	if err != nil {
		log.Error("cannot start the health check", "err", err)
		shutdown(srv, nil, br, log)
		return exitError
	}
	defer h.close()
	gw, err := startGateway(ctx, cfg.Gateway, srv, h, log.With("part", "gateway"))
	if err != nil {
		log.Error("cannot start the MQTT-SN gateway", "err", err)
		shutdown(srv, nil, br, log)
		return exitError
	}
	ports, err := startSerial(ctx, cfg.Serial, gw, h, log.With("part", "serial"))
	if err != nil {
		log.Error("cannot start a serial port", "err", err)
		shutdown(srv, gw, br, log)
		return exitError
	}
	leds, err := startLEDs(ctx, cfg.GPIO, gw, br, log.With("part", "gpio"))
	if err != nil {
		log.Error("cannot start the LEDs", "err", err)
		shutdown(srv, gw, br, log)
		return exitError
	}
	defer leds.Close()
	go watchdog(ctx, h, log)
	obs, err := observe.Listen(cfg.Metrics, observe.Handler(observeSources(srv, gw, br, ports), observeHealth(h, br), observe.Status{Version: version}), log.With("part", "metrics"))
	if err != nil {
		log.Error("cannot start the metrics listener", "err", err)
		shutdown(srv, gw, br, log)
		return exitError
	}
	defer obs.Shutdown(context.Background())
	log.Info("sngate started", "version", version, "commit", buildCommit(),
		"data_dir", cfg.DataDir, "config", source)

	notify(log, daemon.SdNotifyReady)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			waiting = false
		case <-hup:
			reload(cfg, path, overrides, live{level: level, broker: srv, gateway: gw, bridge: br}, log)
		}
	}

	notify(log, daemon.SdNotifyStopping)
	log.Info("sngate stopping", "reason", context.Cause(ctx).Error())
	if err := shutdown(srv, gw, br, log); err != nil {
		return exitError
	}
	log.Info("sngate stopped")
	return exitOK
}

// shutdownTimeout bounds a clean stop; systemd's TimeoutStopSec is longer.
const shutdownTimeout = 10 * time.Second

// startGateway opens the gateway's UDP transport and serves it.
func startGateway(ctx context.Context, cfg gateway.Config, srv *broker.Server, h *health, log *slog.Logger) (*gateway.Gateway, error) {
	gw, err := gateway.New(cfg, srv, log)
	if err != nil {
		return nil, err
	}
	listen := cfg.Listen
	if listen == "" {
		listen = gateway.DefaultListen
	}
	tr, err := gateway.ListenUDP(ctx, gateway.UDPConfig{Address: listen, Broadcast: cfg.Broadcast})
	if err != nil {
		gw.Shutdown(ctx)
		return nil, err
	}
	log.Info("listening", "transport", tr.String())
	go func() {
		if err := gw.Serve(tr); err != nil {
			log.Error("gateway transport stopped", "err", err)
			h.loopEnded(err)
		}
	}()
	return gw, nil
}

// startSerial opens every serial port and serves it as a transport of the
// gateway. A port that cannot be opened at start is an error (a typo in a
// path should not pass unnoticed); later outages are the port's to ride out.
func startSerial(ctx context.Context, ports []hw.PortConfig, gw *gateway.Gateway, h *health, log *slog.Logger) ([]gateway.Transport, error) {
	var trs []gateway.Transport
	for _, pc := range ports {
		tr, err := hw.Open(ctx, pc, log.With("port", pc.Name))
		if err != nil {
			return trs, err
		}
		trs = append(trs, tr)
		log.Info("listening", "transport", tr.String())
		go func() {
			if err := gw.Serve(tr); err != nil {
				log.Error("serial transport stopped", "port", pc.Name, "err", err)
				h.loopEnded(err)
			}
		}()
	}
	return trs, nil
}

// observeSources are what /metrics and the status page read.
func observeSources(srv *broker.Server, gw *gateway.Gateway, br *bridge.Bridge, ports []gateway.Transport) observe.Sources {
	src := observe.Sources{Broker: srv.Stats, Gateway: gw.Stats, Clients: gw.Clients, Bridges: br.Stats,
		Ports: func() []observe.PortStats {
			out := make([]observe.PortStats, 0, len(ports))
			for _, tr := range ports {
				switch tr := tr.(type) {
				case *hw.Line:
					st := tr.Stats()
					out = append(out, observe.PortStats{Name: tr.Name(), Framing: tr.Framing(), Up: st.Port.Up, Outages: st.Port.Outages,
						Frames: st.Frame.Frames, BadFrames: st.Frame.BadFrames, Sent: st.Sent, SendErrs: st.SendErrors})
				case *hw.XBee:
					st := tr.Stats()
					out = append(out, observe.PortStats{Name: tr.Name(), Framing: hw.FramingXBee, Up: st.Port.Up, Outages: st.Port.Outages,
						Frames: st.Frames.Frames, BadFrames: st.Frames.ChecksumErrors + st.Frames.BadFrames, Sent: st.Sent, SendErrs: st.SendErrors})
				}
			}
			return out
		}}
	if db := srv.Storage(); db != nil {
		src.Store = db.Stats
	}
	return src
}

// observeHealth is what /healthz checks: the broker routes a probe and no
// serve loop has died; a bridge that is not connected is degraded.
func observeHealth(h *health, br *bridge.Bridge) observe.Health {
	return observe.Health{
		Checks: map[string]observe.Check{"broker and gateway": h.check},
		Degraded: func() []string {
			var out []string
			for _, st := range br.Stats() {
				if !st.Connected {
					d := "bridge " + st.Name + ": not connected"
					if st.LastError != "" {
						d += ": " + st.LastError
					}
					out = append(out, d)
				}
			}
			return out
		},
	}
}

// live are the running parts a reload changes.
type live struct {
	level   *slog.LevelVar
	broker  *broker.Server
	gateway *gateway.Gateway
	bridge  *bridge.Bridge
}

// reload re-reads the configuration on SIGHUP (systemctl reload). A file
// that does not load changes nothing. Of a good one, what can change under
// running sessions is applied at once: the log level, the password file
// (read again even if its path is the same) and ACL, the predefined topic
// ids, and the bridge rules. Every other setting that changed is named in
// the log as waiting for a restart, so that nobody believes it applied.
// running is the configuration sngate started with, which those other
// settings still are.
func reload(running Config, path string, overrides []override, parts live, log *slog.Logger) {
	next, err := loadConfig(path, overrides...)
	if err != nil {
		log.Error("configuration not reloaded: keeping the running one", "err", err)
		return
	}
	parts.level.Set(parseLevel(next.Log.Level))
	var failed []string
	authRep, err := parts.broker.ReloadAuth(next.Broker.Auth)
	if err != nil {
		log.Error("users and ACL not reloaded: keeping the running ones", "err", err)
		failed = append(failed, "broker.acl/password_file")
	}
	if err := parts.gateway.SetPredefinedTopics(next.Gateway.PredefinedTopics); err != nil {
		log.Error("predefined topics not reloaded: keeping the running ones", "err", err)
		failed = append(failed, "gateway.predefined_topics")
	}
	bridgeRestart, err := parts.bridge.Reload(next.Bridge)
	if err != nil {
		log.Error("bridge rules not all reloaded", "err", err)
		failed = append(failed, "bridge.rules")
	}

	restart := changedSections(running, next)
	for _, name := range bridgeRestart {
		restart = append(restart, "bridge "+name)
	}
	log.Info("configuration reloaded", "log.level", next.Log.Level,
		"users", authRep.Users, "acl_rules", authRep.Rules,
		"clients_disconnected", authRep.Disconnected, "subscriptions_revoked", authRep.Revoked,
		"predefined_topics", len(next.Gateway.PredefinedTopics),
		"failed", strings.Join(failed, ","),
		"changed_needing_restart", strings.Join(restart, ","))
}

// changedSections names the sections whose settings differ between the
// running and the next configuration, leaving out what reload applies
// live (the bridge's own Reload reports its connections).
func changedSections(running, next Config) []string {
	running.Broker.Auth, next.Broker.Auth = auth.Config{}, auth.Config{}
	running.Gateway.PredefinedTopics, next.Gateway.PredefinedTopics = nil, nil
	var changed []string
	for _, sec := range []struct {
		name      string
		old, next any
	}{
		{"log.format", running.Log.Format, next.Log.Format},
		{"data_dir", running.DataDir, next.DataDir},
		{"broker", running.Broker, next.Broker},
		{"gateway", running.Gateway, next.Gateway},
		{"serial", running.Serial, next.Serial},
		{"gpio", running.GPIO, next.GPIO},
		{"metrics", running.Metrics, next.Metrics},
	} {
		if !reflect.DeepEqual(sec.old, sec.next) {
			changed = append(changed, sec.name)
		}
	}
	return changed
}

// startLEDs drives the uplink and activity LEDs, if the gpio section
// names any: uplink from the bridge (on while connected, blinking while a
// backlog drains), activity from the gateway's traffic. Without LEDs it
// touches nothing and returns a nil *gpio.GPIO, whose Close does nothing.
func startLEDs(ctx context.Context, cfg gpio.Config, gw *gateway.Gateway, br *bridge.Bridge, log *slog.Logger) (*gpio.GPIO, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	g, err := gpio.Open(cfg, gpio.Options{Log: log})
	if err != nil {
		return nil, err
	}
	go hw.DriveLEDs(ctx, g, hw.LEDSources{
		Uplink: func() gpio.UplinkState {
			state := gpio.UplinkOff
			for _, st := range br.Stats() {
				switch {
				case !st.Connected:
				case st.QueueMessages >= drainingBacklog:
					return gpio.UplinkBlinking
				default:
					state = gpio.UplinkOn
				}
			}
			return state
		},
		Traffic: func() int64 { st := gw.Stats(); return st.Received + st.Sent },
	}, 0)
	return g, nil
}

// drainingBacklog is the queue depth from which a connected bridge counts
// as draining a backlog (the uplink LED blinks).
const drainingBacklog = 100

// shutdown stops the gateway and the bridge (those there are), then the
// broker, which makes its store durable.
func shutdown(srv *broker.Server, gw *gateway.Gateway, br *bridge.Bridge, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if gw != nil {
		if err := gw.Shutdown(ctx); err != nil {
			log.Error("unclean gateway shutdown", "err", err)
		}
	}
	if br != nil {
		if err := br.Shutdown(ctx); err != nil {
			log.Error("unclean bridge shutdown", "err", err)
		}
	}
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("unclean broker shutdown", "err", err)
		return err
	}
	return nil
}

func cmdCheck(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("check", "[-c PATH]",
		"Validate the configuration (built-in defaults, then the file over them)\nand print \"config ok\" or every problem as FILE:LINE: reason.", s)
	var cf configFlags
	cf.register(fs)
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}
	path, _ := configPath(cf.path)
	if _, err := loadConfig(path); err != nil {
		fmt.Fprintln(s.err, err)
		return exitError
	}
	fmt.Fprintln(s.out, "config ok")
	return exitOK
}

// isSet reports whether the flag name (or its alias) was given.
func isSet(fs *flagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name || f.Name == fs.short[name] {
			set = true
		}
	})
	return set
}

// isTerminal reports whether w is a terminal: log.format auto writes text
// for a person there, and JSON elsewhere (journald, files), whose fields a
// machine can then read back.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newLogger returns the process logger, its level in lv, which SIGHUP
// changes; cfg has been validated. It is passed down explicitly, never
// installed as slog's default, so that in-process tests do not share it.
func newLogger(cfg LogConfig, w io.Writer, lv *slog.LevelVar) *slog.Logger {
	lv.Set(parseLevel(cfg.Level))
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	if cfg.Format == "json" || (cfg.Format == "auto" && !isTerminal(w)) {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h)
}

// parseLevel reads a validated log.level.
func parseLevel(s string) slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(s))
	return l
}
