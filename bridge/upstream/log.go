package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// libLogger adapts slog to the Println/Printf loggers both paho libraries
// use. Everything goes out at debug level (the libraries' "error" logs
// include routine events such as acknowledgements failing on a connection
// that just dropped); lib_level keeps the library's own level. Formatting
// is skipped unless debug is enabled: paho logs every packet.
type libLogger struct {
	l     *slog.Logger
	level string
}

func (g libLogger) Println(v ...any) {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		g.l.Debug(strings.TrimSuffix(fmt.Sprintln(v...), "\n"), "lib_level", g.level)
	}
}

func (g libLogger) Printf(format string, v ...any) {
	if g.l.Enabled(context.Background(), slog.LevelDebug) {
		g.l.Debug(strings.TrimSuffix(fmt.Sprintf(format, v...), "\n"), "lib_level", g.level)
	}
}

// SetMQTT311LibraryLogger routes paho.mqtt.golang's logs to l at debug
// level. That library only has process-wide loggers (package variables), so
// this is for main to call once at startup, not per Client; its logs carry
// no client identity. Passwords are redacted by the library.
func SetMQTT311LibraryLogger(l *slog.Logger) {
	l = l.With("lib", "paho.mqtt.golang")
	mqtt.ERROR = libLogger{l: l, level: "error"}
	mqtt.CRITICAL = libLogger{l: l, level: "critical"}
	mqtt.WARN = libLogger{l: l, level: "warn"}
	mqtt.DEBUG = libLogger{l: l, level: "debug"}
}
