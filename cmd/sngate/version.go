package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time by the Makefile:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc123" ./cmd/sngate
var (
	version = "dev"
	commit  = "" // empty: taken from the build info, see buildCommit
)

// buildCommit returns the commit set at link time, else the VCS revision the
// go command stamped into the binary (with "-dirty" for a modified tree),
// else "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

func cmdVersion(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("version", "", "Print the version, the commit and the Go version sngate was built with.", s)
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	if code, ok := noArgs(fs, s); !ok {
		return code
	}
	fmt.Fprintf(s.out, "sngate %s\ncommit %s\ngo     %s %s/%s\n",
		version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
