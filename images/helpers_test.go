package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	buildTimeout = 10 * time.Minute // make deb, go build
	toolTimeout  = 2 * time.Minute  // dpkg, systemd-analyze, scripts
)

// workDir holds what the tests of this package share (the packages built
// by make deb, a host sngate binary); TestMain removes it.
var workDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sngate-images-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "images tests:", err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "images tests: removing", dir+":", err)
	}
	os.Exit(code)
}

// repoRoot is the repository's top directory (tests run in images/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// missing skips the test because something it needs is not here, or, when
// the environment variable CI is set, fails it: a CI machine is meant to
// have everything, and a skip there would hide the gap.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set: failing instead of skipping)", msg)
	}
	t.Skip(msg)
}

// tool returns the path of the program name, from package pkg, or calls
// missing.
func tool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} { // not on every PATH
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		missing(t, "%s not found (Debian package %s): %v", name, pkg, err)
	}
	return p
}

// needRoot calls missing unless the test runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root (chroot, dpkg into a Debian root)")
	}
}

// cmdSpec is one command to run.
type cmdSpec struct {
	dir     string
	env     []string // added to the test's environment
	stdin   string
	timeout time.Duration // default toolTimeout
}

// run runs name with args and returns its stdout and stderr; err includes
// a context deadline.
func run(t *testing.T, spec cmdSpec, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return execute(context.Background(), spec, name, args...)
}

// execute is run for any goroutine: it needs no *testing.T. It stops the
// command when ctx is done or spec.timeout has passed.
func execute(ctx context.Context, spec cmdSpec, name string, args ...string) (stdout, stderr string, err error) {
	timeout := spec.timeout
	if timeout == 0 {
		timeout = toolTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = spec.dir
	cmd.Env = append(os.Environ(), spec.env...)
	cmd.WaitDelay = 5 * time.Second
	if spec.stdin != "" {
		cmd.Stdin = strings.NewReader(spec.stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, fmt.Errorf("stopped after at most %v: %w", timeout, ctx.Err()))
	}
	return out.String(), errOut.String(), err
}

// mustRun is run that fails the test, with the command's output, on error.
func mustRun(t *testing.T, spec cmdSpec, name string, args ...string) string {
	t.Helper()
	stdout, stderr, err := run(t, spec, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// built is what the tests built once and share.
var built struct {
	mu     sync.Mutex
	debs   map[string]string // Debian architecture -> .deb path
	sngate string            // sngate for this machine

	versionOnce sync.Once
	version     string // the VERSION given to make
}

// debDate is the date debversion.sh is told to use (DEB_DATE), so that the
// expected version does not depend on when HEAD was committed.
const debDate = "20260102"

// makeVersion returns the VERSION the tests give make: what the Makefile
// would compute (git describe), taken once so that a commit made while the
// tests run cannot change it between two builds.
func makeVersion(t *testing.T) string {
	t.Helper()
	built.versionOnce.Do(func() {
		out, _, err := run(t, cmdSpec{dir: repoRoot(t)}, "git", "describe", "--tags", "--always", "--dirty")
		built.version = strings.TrimSpace(out)
		if err != nil || built.version == "" {
			built.version = "dev" // as the Makefile does without git
		}
	})
	return built.version
}

// debVersion is the Debian version debversion.sh makes of makeVersion.
func debVersion(t *testing.T) string {
	t.Helper()
	out := mustRun(t, cmdSpec{dir: repoRoot(t), env: []string{"DEB_DATE=" + debDate}},
		"./images/deb/debversion.sh", makeVersion(t))
	return strings.TrimSpace(out)
}

// makeDeb runs `make deb` for arches into dist with the extra make
// variables vars, and returns arch -> the .deb made.
func makeDeb(t *testing.T, dist string, arches []string, vars ...string) map[string]string {
	t.Helper()
	makeBin := tool(t, "make", "make")
	if _, err := exec.LookPath("go"); err != nil {
		missing(t, "go not found: make deb builds with it: %v", err)
	}
	args := append([]string{"--no-print-directory", "deb",
		"DEB_ARCHES=" + strings.Join(arches, " "),
		"DEB_DIST=" + dist,
		"VERSION=" + makeVersion(t),
	}, vars...)
	start := time.Now()
	out := mustRun(t, cmdSpec{dir: repoRoot(t), env: []string{"DEB_DATE=" + debDate}, timeout: buildTimeout}, makeBin, args...)
	t.Logf("make deb %s: %v", strings.Join(arches, " "), time.Since(start).Round(time.Second))
	debs := map[string]string{}
	for _, arch := range arches {
		m, err := filepath.Glob(filepath.Join(dist, "sngate_*_"+arch+".deb"))
		if err != nil || len(m) != 1 {
			t.Fatalf("make deb left %d files matching sngate_*_%s.deb in %s (%v), want 1:\n%s", len(m), arch, dist, err, out)
		}
		debs[arch] = m[0]
	}
	return debs
}

// builtDebs returns the packages for arches, building with `make deb` those
// not yet built by this test binary.
func builtDebs(t *testing.T, arches ...string) map[string]string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.debs == nil {
		built.debs = map[string]string{}
	}
	var todo []string
	for _, a := range arches {
		if built.debs[a] == "" {
			todo = append(todo, a)
		}
	}
	if len(todo) > 0 {
		for a, p := range makeDeb(t, filepath.Join(workDir, "dist"), todo) {
			built.debs[a] = p
		}
	}
	debs := map[string]string{}
	for _, a := range arches {
		debs[a] = built.debs[a]
	}
	return debs
}

// hostSngate returns sngate built for this machine.
func hostSngate(t *testing.T) string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if built.sngate == "" {
		gobin, err := exec.LookPath("go")
		if err != nil {
			missing(t, "go not found, cannot build sngate: %v", err)
		}
		bin := filepath.Join(workDir, "sngate-host")
		mustRun(t, cmdSpec{dir: repoRoot(t), timeout: buildTimeout}, gobin, "build", "-o", bin, "./cmd/sngate")
		built.sngate = bin
	}
	return built.sngate
}

// copyFile copies src to dst with mode.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatalf("copying %s to %s: %v", src, dst, err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil { // not reduced by the umask
		t.Fatal(err)
	}
}

// readFile returns the contents of path, failing the test if it cannot.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}
