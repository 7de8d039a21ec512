// Package systemd holds sngate.service, the systemd unit sngate ships, and
// tests that check it with systemd-analyze: that it verifies cleanly, that
// its sandboxing rates 2.0 or lower, and that it keeps the settings the
// product relies on.
package systemd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/systemd/systemdtest"
)

const (
	unitFile = "sngate.service"

	// maxExposure is the highest "Overall exposure level" accepted: 2.0 is
	// the top of systemd-analyze's "OK" band.
	maxExposure = 2.0

	analyzeTimeout = time.Minute
	buildTimeout   = 5 * time.Minute
)

// analyzer returns the path of systemd-analyze, or skips the test.
func analyzer(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found (install systemd to run this test):", err)
	}
	return p
}

// run runs name with args, killing it after timeout, and returns its
// stdout and stderr.
func run(t *testing.T, timeout time.Duration, dir, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return out.String(), errOut.String(), err
}

// TestUnitVerifies runs "systemd-analyze verify" on the unit, installed
// verbatim in a scratch root that holds just what verify looks at: the
// binaries ExecStart= and ExecReload= name (sngate built from ./cmd/sngate)
// and the distribution's units, for the dependencies (sysinit.target,
// network-online.target, ...). systemd-analyze 252 prints problems such as
// unknown keys on stderr and still exits 0, so any stderr output fails.
func TestUnitVerifies(t *testing.T) {
	analyze := analyzer(t)
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not found, cannot build the sngate binary the unit starts:", err)
	}
	units := systemdtest.UnitsDir()
	if units == "" {
		t.Skip("no systemd units (sysinit.target) in /usr/lib/systemd/system: verify cannot resolve the unit's dependencies")
	}
	// systemd-analyze 252 does not resolve User=/Group=, but give the root
	// the accounts anyway so a systemd that does finds them.
	root := systemdtest.NewRoot(t, units,
		"root:x:0:0:root:/root:/bin/sh\nsngate:x:998:998:sngate:/nonexistent:/usr/sbin/nologin\n",
		"root:x:0:\ndialout:x:20:\nsngate:x:998:\n")
	unit, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "etc/systemd/system", unitFile), unit, 0o644)

	sngate := filepath.Join(root, "usr/bin/sngate")
	if _, stderr, err := run(t, buildTimeout, "..", gobin, "build", "-o", sngate, "./cmd/sngate"); err != nil {
		t.Fatalf("go build ./cmd/sngate: %v\n%s", err, stderr)
	}
	// The flags ExecStart= passes must exist.
	help, stderr, err := run(t, analyzeTimeout, root, sngate, "run", "--help")
	if err != nil {
		t.Fatalf("sngate run --help: %v\n%s", err, stderr)
	}
	for _, f := range []string{"-c, --config", "--data-dir", "--log-format"} {
		if !strings.Contains(help, f) {
			t.Errorf("sngate run --help does not list %s, which ExecStart= uses:\n%s", f, help)
		}
	}

	stdout, stderr, err := run(t, analyzeTimeout, root, analyze, "verify", "--man=no", "--root="+root, unitFile)
	if stdout != "" {
		t.Logf("systemd-analyze verify stdout:\n%s", stdout)
	}
	if stderr != "" {
		t.Errorf("systemd-analyze verify stderr:\n%s", stderr)
	}
	if err != nil {
		t.Errorf("systemd-analyze verify: %v", err)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unitFile) + `: (\d+(?:\.\d+)?)`)

// TestUnitSecurityScore runs "systemd-analyze security --offline=true",
// which rates the unit file's sandboxing without a running manager, and
// requires the overall exposure to stay in the "OK" band (≤ 2.0).
func TestUnitSecurityScore(t *testing.T) {
	analyze := analyzer(t)
	path, err := filepath.Abs(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := run(t, analyzeTimeout, ".", analyze, "security", "--no-pager", "--offline=true", path)
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s%s", err, stdout, stderr)
	}
	if stderr != "" {
		t.Logf("systemd-analyze security stderr:\n%s", stderr)
	}
	m := exposureRE.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no %q line in systemd-analyze security output:\n%s", "Overall exposure level for "+unitFile, stdout)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("overall exposure level for %s: %.1f (max %.1f)", unitFile, score, maxExposure)
	if score > maxExposure {
		t.Errorf("exposure %.1f > %.1f; systemd-analyze security says:\n%s", score, maxExposure, stdout)
	}
}

// TestUnitKeys checks the settings sngate and its packaging rely on.
func TestUnitKeys(t *testing.T) {
	u := parseUnit(t, unitFile)

	for _, kv := range [][3]string{
		{"Service", "Type", "notify"}, // READY=1, STOPPING=1
		{"Service", "NotifyAccess", "main"},
		{"Service", "WatchdogSec", "30s"}, // WATCHDOG=1
		{"Service", "Restart", "on-failure"},
		{"Service", "RestartSec", "5s"},
		{"Service", "TimeoutStopSec", "30s"},
		{"Service", "User", "sngate"},
		{"Service", "Group", "sngate"},
		{"Service", "StateDirectory", "sngate"},
		{"Service", "ConfigurationDirectory", "sngate"},
		{"Service", "UMask", "0027"},
		{"Service", "LimitNOFILE", "65536"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "DevicePolicy", "closed"},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if got := u.last(kv[0], kv[1]); got != kv[2] {
			t.Errorf("[%s] %s=%q, want %q", kv[0], kv[1], got, kv[2])
		}
	}

	// ExecStart: the paths must be the ones StateDirectory= and
	// ConfigurationDirectory= create; under ProtectSystem=strict the state
	// directory is the only place sngate can write.
	argv := strings.Fields(u.last("Service", "ExecStart"))
	if len(argv) < 2 || argv[0] != "/usr/bin/sngate" || argv[1] != "run" {
		t.Errorf("ExecStart=%q, want /usr/bin/sngate run ...", strings.Join(argv, " "))
	}
	for flag, want := range map[string]string{
		"-c":           "/etc/sngate/sngate.yaml",
		"--data-dir":   "/var/lib/sngate",
		"--log-format": "json",
	} {
		if got, ok := flagValue(argv, flag); !ok || got != want {
			t.Errorf("ExecStart %s %q, want %q", flag, got, want)
		}
	}

	reload := u.last("Service", "ExecReload")
	if f := strings.Fields(reload); len(f) != 3 || !strings.HasSuffix(f[0], "/kill") || f[1] != "-HUP" || f[2] != "$MAINPID" {
		t.Errorf("ExecReload=%q, want /bin/kill -HUP $MAINPID", reload)
	}

	// A missing supplementary group fails every start (216/GROUP), and
	// plain Debian has no "gpio": that one belongs in a Pi drop-in.
	groups := strings.Fields(strings.Join(u.all("Service", "SupplementaryGroups"), " "))
	if !slices.Contains(groups, "dialout") {
		t.Errorf("SupplementaryGroups=%q lacks dialout (serial ports)", groups)
	}
	if slices.Contains(groups, "gpio") {
		t.Errorf("SupplementaryGroups=%q names gpio, which Debian lacks; leave it to a drop-in", groups)
	}

	// Serial ports and GPIO must stay reachable.
	allow := u.all("Service", "DeviceAllow")
	for _, class := range []string{"char-ttyS", "char-ttyUSB", "char-ttyACM", "char-ttyAMA", "char-gpiochip"} {
		if !slices.Contains(allow, class+" rw") {
			t.Errorf("DeviceAllow=%q lacks %q", allow, class+" rw")
		}
	}
	for _, key := range []string{"PrivateDevices", "PrivateUsers"} {
		if v := u.last("Service", key); isTrue(v) {
			t.Errorf("%s=%s hides the serial ports / drops the dialout group", key, v)
		}
	}
	if v := u.last("Service", "ProcSubset"); v == "pid" {
		t.Errorf("ProcSubset=pid hides /proc/device-tree, which periph needs for the Raspberry Pi header names")
	}
}

// unit is a parsed unit file: section → key → values in order.
type unit map[string]map[string][]string

func (u unit) all(section, key string) []string { return u[section][key] }

func (u unit) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section, cont := "", ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line, cont = cont+" "+line, ""
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", path, n, line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// flagValue returns the argument after flag in args.
func flagValue(args []string, flag string) (string, bool) {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "y", "true", "t", "on":
		return true
	}
	return false
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}
