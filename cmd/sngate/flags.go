package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// flagSet is a flag.FlagSet with a usage text and short aliases (-c for
// --config). The standard flag package accepts -name and --name alike.
type flagSet struct {
	*flag.FlagSet
	synopsis string            // after "sngate NAME", e.g. "[flags]"
	desc     string            // a paragraph under the usage line
	short    map[string]string // long name -> one-letter alias
}

func newFlagSet(name, synopsis, desc string, s streams) *flagSet {
	fs := &flagSet{
		FlagSet:  flag.NewFlagSet(name, flag.ContinueOnError),
		synopsis: synopsis,
		desc:     desc,
		short:    map[string]string{},
	}
	// parse prints the usage itself, to stdout for -h and to stderr after
	// an error; the flag package only reports the error.
	fs.SetOutput(s.err)
	fs.Usage = func() {}
	return fs
}

// stringVar defines --long (and -short unless it is "") on p. Put the
// argument's name in backquotes in usage: "config file `PATH`".
func (fs *flagSet) stringVar(p *string, long, short, value, usage string) {
	fs.StringVar(p, long, value, usage)
	if short != "" {
		fs.StringVar(p, short, value, usage)
		fs.short[long] = short
	}
}

// parse parses args. ok is false when the command must return code at once:
// 0 after --help, or -h unless the command defines it (usage on stdout), 2 after a bad flag (usage on stderr).
func parse(fs *flagSet, args []string, s streams) (code int, ok bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage(s.out)
		return exitOK, false
	default:
		// The flag package has already printed the error.
		fs.printUsage(s.err)
		return exitUsage, false
	}
}

// noArgs reports a usage error if positional arguments were given.
func noArgs(fs *flagSet, s streams) (code int, ok bool) {
	if fs.NArg() == 0 {
		return 0, true
	}
	fmt.Fprintf(s.err, "sngate %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
	fs.printUsage(s.err)
	return exitUsage, false
}

func (fs *flagSet) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: sngate %s %s\n", fs.Name(), fs.synopsis)
	if fs.desc != "" {
		fmt.Fprintf(w, "\n%s\n", fs.desc)
	}
	isShort := map[string]bool{}
	for _, s := range fs.short {
		isShort[s] = true
	}
	type row struct{ names, usage string }
	rows := []row{}
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		if isShort[f.Name] {
			return
		}
		arg, usage := flag.UnquoteUsage(f)
		names := "    --" + f.Name
		if s, ok := fs.short[f.Name]; ok {
			names = "-" + s + ", --" + f.Name
		}
		if arg != "" {
			names += " " + arg
		}
		if !isZeroValue(f) {
			if isString(f) {
				usage += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		rows = append(rows, row{names, usage})
		width = max(width, len(names))
	})
	// A command may take -h for something else (pub -h HOST).
	help := "-h, --help"
	if fs.Lookup("h") != nil {
		help = "    --help"
	}
	rows = append(rows, row{help, "show this help"})
	width = max(width, len(help))
	fmt.Fprintf(w, "\nFlags:\n")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r.names, strings.ReplaceAll(r.usage, "\n", "\n"+strings.Repeat(" ", width+4)))
	}
}

// isZeroValue reports whether f's default is its type's zero value, which
// usage does not show (as flag.PrintDefaults).
func isZeroValue(f *flag.Flag) bool {
	t := reflect.TypeOf(f.Value)
	if t.Kind() != reflect.Pointer {
		return f.DefValue == ""
	}
	zero, ok := reflect.New(t.Elem()).Interface().(flag.Value)
	if !ok {
		return f.DefValue == ""
	}
	return f.DefValue == zero.String()
}

func isString(f *flag.Flag) bool {
	t := reflect.TypeOf(f.Value)
	return t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.String
}
