package main

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a command writing in one goroutine
// while the test reads in another.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sngate runs the program in-process to completion.
func sngate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code = run(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, out, errOut := sngate(t, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: code %d, stderr %q", args, code, errOut)
		}
		for _, want := range []string{"sngate dev\n", "commit ", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output %q lacks %q", args, out, want)
			}
		}
	}
}

func TestVersionLinkerVars(t *testing.T) {
	oldV, oldC := version, commit
	t.Cleanup(func() { version, commit = oldV, oldC })
	version, commit = "v1.2.3", "0123abcd"
	_, out, _ := sngate(t, "version")
	if !strings.Contains(out, "sngate v1.2.3\n") || !strings.Contains(out, "commit 0123abcd\n") {
		t.Errorf("output %q lacks the linker-set version and commit", out)
	}
}

func TestBuildCommitFallback(t *testing.T) {
	old := commit
	t.Cleanup(func() { commit = old })
	commit = ""
	// A test binary carries no VCS stamp.
	if got := buildCommit(); got == "" {
		t.Errorf("buildCommit() = %q, want a revision or unknown", got)
	}
}

func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"-help"}} {
		code, out, errOut := sngate(t, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: code %d, stderr %q", args, code, errOut)
		}
		for _, c := range commands {
			if !strings.Contains(out, "  "+c.name+" ") || !strings.Contains(out, c.summary) {
				t.Errorf("%v: help does not list %q:\n%s", args, c.name, out)
			}
		}
	}
}

func TestCommandHelp(t *testing.T) {
	for _, c := range commands {
		// -h is help too unless the command uses it (pub -h HOST);
		// TestShortHelp covers it.
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-help"}, {"help", c.name}} {
			code, out, errOut := sngate(t, args...)
			if code != 0 || errOut != "" {
				t.Errorf("%v: code %d, stderr %q", args, code, errOut)
			}
			if c.name != "help" && !strings.Contains(out, "Usage: sngate "+c.name) {
				t.Errorf("%v: no usage on stdout:\n%s", args, out)
			}
		}
	}
	_, out, _ := sngate(t, "run", "-h")
	for _, want := range []string{"-c, --config PATH", "--data-dir DIR", "-h, --help"} {
		if !strings.Contains(out, want) {
			t.Errorf("run usage lacks %q:\n%s", want, out)
		}
	}
}

func TestShortHelp(t *testing.T) {
	for _, name := range []string{"run", "check", "version", "help"} {
		code, out, errOut := sngate(t, name, "-h")
		if code != 0 || errOut != "" || out == "" {
			t.Errorf("%s -h: code %d, stdout %q, stderr %q", name, code, out, errOut)
		}
	}
}

func TestUsageShowsDefaults(t *testing.T) {
	var name, host string
	fs := newFlagSet("x", "", "", streams{})
	fs.stringVar(&name, "name", "n", "", "plain `NAME`")
	fs.stringVar(&host, "host", "h", "localhost", "gateway `HOST`")
	fs.Var(&intFlag{7}, "count", "count `N`")
	fs.Var(&intFlag{0}, "zero", "zero `N`")
	var out strings.Builder
	fs.printUsage(&out)
	var lines []string // with runs of spaces squeezed
	for _, l := range strings.Split(out.String(), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"\n-n, --name NAME plain NAME\n",
		"\n-h, --host HOST gateway HOST (default \"localhost\")\n",
		"\n--count N count N (default 7)\n",
		"\n--zero N zero N\n",
		"\n--help show this help\n", // -h is taken
	} {
		if !strings.Contains(got, want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

type intFlag struct{ v int }

func (f *intFlag) String() string {
	if f == nil {
		return "0"
	}
	return strconv.Itoa(f.v)
}

func (f *intFlag) Set(s string) (err error) { f.v, err = strconv.Atoi(s); return err }

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "run", "check"}, "too many arguments"},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"}, // flags of the default command
		{[]string{"run", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"check", "-x"}, "flag provided but not defined: -x"},
		{[]string{"version", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"run", "-c"}, "flag needs an argument: -c"},
		{[]string{"run", "extra"}, `unexpected argument "extra"`},
		{[]string{"check", "a.yaml"}, `unexpected argument "a.yaml"`},
		{[]string{"version", "x"}, `unexpected argument "x"`},
	}
	for _, tt := range tests {
		code, out, errOut := sngate(t, tt.args...)
		if code != 2 {
			t.Errorf("%v: exit code %d, want 2", tt.args, code)
		}
		if out != "" {
			t.Errorf("%v: stdout %q, want nothing", tt.args, out)
		}
		if !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: stderr %q lacks %q", tt.args, errOut, tt.want)
		}
	}
	// A bad flag shows the command's usage on stderr.
	_, _, errOut := sngate(t, "check", "--bogus")
	if !strings.Contains(errOut, "Usage: sngate check") {
		t.Errorf("no usage after a bad flag:\n%s", errOut)
	}
}

func TestCommandNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		if c.name == "" || c.summary == "" || c.run == nil {
			t.Errorf("incomplete command %+v", c)
		}
		if seen[c.name] {
			t.Errorf("command %q twice", c.name)
		}
		seen[c.name] = true
	}
	if lookup(defaultCommand) == nil {
		t.Errorf("default command %q not in the table", defaultCommand)
	}
}
