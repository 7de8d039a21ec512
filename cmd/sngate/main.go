// Command sngate is the MQTT-SN gateway and edge bridge appliance.
//
// This package is wiring only: subcommand dispatch, flags, configuration and
// logging. Everything else lives in the library packages. run is the whole
// program minus the process (arguments, streams and a context in, an exit
// code out) so that tests drive it in-process.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // configuration or runtime error
	exitUsage = 2 // bad command line
)

// streams are a command's standard streams.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, s streams) int
}

// commands is the dispatch table, in the order help lists it. To add a
// subcommand, add one line here and put its implementation in its own file
// (pub.go, sub.go, discover.go, ...). It is filled in init because help
// lists the table itself.
var commands []command

func init() {
	commands = []command{
		{"run", "run the gateway (the default when no command is given)", cmdRun},
		{"check", "validate the configuration and exit", cmdCheck},
		{"pub", "publish to an MQTT-SN gateway (a field test client)", cmdPub},
		{"sub", "subscribe at an MQTT-SN gateway and print messages", cmdSub},
		{"discover", "look for MQTT-SN gateways (SEARCHGW, GWINFO, ADVERTISE)", cmdDiscover},
		{"passwd", "add, change or delete a user in the broker's password file", cmdPasswd},
		{"bench", "measure an MQTT broker's throughput and latency", cmdBench},
		{"version", "print version, commit and Go version", cmdVersion},
		{"help", "show help for sngate or a command", cmdHelp},
	}
}

// defaultCommand runs when the first argument is not a command name.
const defaultCommand = "run"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process the
		// default way instead of waiting for a clean shutdown.
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs sngate with the arguments after the program name and returns the
// exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := streams{in: stdin, out: stdout, err: stderr}
	if len(args) == 0 {
		return lookup(defaultCommand).run(ctx, nil, s)
	}
	switch first := args[0]; {
	case first == "-h" || first == "-help" || first == "--help":
		usage(stdout)
		return exitOK
	case first == "-version" || first == "--version":
		return cmdVersion(ctx, args[1:], s)
	case strings.HasPrefix(first, "-"):
		// Flags without a command: they are the default command's.
		return lookup(defaultCommand).run(ctx, args, s)
	default:
		c := lookup(first)
		if c == nil {
			fmt.Fprintf(stderr, "sngate: unknown command %q\nRun 'sngate help' for the list of commands.\n", first)
			return exitUsage
		}
		return c.run(ctx, args[1:], s)
	}
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `sngate is an MQTT-SN gateway and edge bridge.

Usage:
  sngate [command] [flags]

Commands:
`)
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, `
With no command, sngate runs. 'sngate help COMMAND' or 'sngate COMMAND -h'
shows a command's flags.
`)
}

func cmdHelp(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("help", "[COMMAND]", "Show help for sngate or for one command.", s)
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	switch fs.NArg() {
	case 0:
		usage(s.out)
		return exitOK
	case 1:
		c := lookup(fs.Arg(0))
		if c == nil || c.name == "help" {
			if c == nil {
				fmt.Fprintf(s.err, "sngate help: unknown command %q\n", fs.Arg(0))
				return exitUsage
			}
			usage(s.out)
			return exitOK
		}
		// Every command answers --help with its usage on stdout (not
		// every one -h: pub -h is the host).
		return c.run(ctx, []string{"--help"}, s)
	default:
		fmt.Fprintln(s.err, "sngate help: too many arguments")
		return exitUsage
	}
}
