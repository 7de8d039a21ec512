package images

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// debArches are the architectures `make deb` packages, with the GOARCH
// (and GOARM) of their binary and its ELF machine.
var debArches = map[string]struct {
	goarch, goarm string
	machine       elf.Machine
	class         elf.Class
	qemu          string // runs the binary on another machine
}{
	"amd64": {"amd64", "", elf.EM_X86_64, elf.ELFCLASS64, "qemu-x86_64-static"},
	"arm64": {"arm64", "", elf.EM_AARCH64, elf.ELFCLASS64, "qemu-aarch64-static"},
	"armhf": {"arm", "7", elf.EM_ARM, elf.ELFCLASS32, "qemu-arm-static"},
}

// debFile is one regular file the package must hold: where its content
// comes from in the repository ("" for the binary) and its mode as
// dpkg-deb --contents shows it. Every file is root/root.
type debFile struct {
	src  string
	perm string
}

var debFiles = map[string]debFile{
	"/usr/bin/sngate":                                    {"", "-rwxr-xr-x"},
	"/usr/lib/systemd/system/sngate.service":             {"systemd/sngate.service", "-rw-r--r--"},
	"/etc/sngate/sngate.yaml":                            {"images/deb/sngate.yaml", "-rw-r-----"},
	"/usr/share/doc/sngate/README.md":                    {"README.md", "-rw-r--r--"},
	"/usr/share/doc/sngate/copyright":                    {"images/deb/copyright", "-rw-r--r--"},
	"/usr/share/doc/sngate/examples/sngate.example.yaml": {"sngate.example.yaml", "-rw-r--r--"},
}

// TestDebVersion checks how debversion.sh turns `git describe` output (the
// Makefile's VERSION) into a Debian version, and that those versions sort
// as releases should.
func TestDebVersion(t *testing.T) {
	script := filepath.Join(repoRoot(t), "images/deb/debversion.sh")
	spec := cmdSpec{env: []string{"DEB_DATE=20260101"}}
	for _, tc := range []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-4-gabc1234", "1.2.3+git20260101.4.abc1234"},
		{"v1.2.3-rc1-4-gabc1234", "1.2.3~rc1+git20260101.4.abc1234"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-4-gabc1234-dirty", "1.2.3+git20260101.4.abc1234.dirty"},
		{"abc1234", "0.0.0~git20260101.abc1234"},
		{"abc1234-dirty", "0.0.0~git20260101.abc1234.dirty"},
		{"dev", "0.0.0~git20260101.dev"},
	} {
		out, stderr, err := run(t, spec, script, tc.in)
		if got := strings.TrimSpace(out); err != nil || got != tc.want {
			t.Errorf("debversion.sh %q = %q (%v, stderr %q), want %q", tc.in, got, err, stderr, tc.want)
		}
	}
	for _, bad := range []string{"", "v1.0-x_y"} {
		if out, _, err := run(t, spec, script, bad); err == nil {
			t.Errorf("debversion.sh %q = %q, want an error", bad, out)
		}
	}

	t.Run("order", func(t *testing.T) {
		dpkg := tool(t, "dpkg", "dpkg")
		// Each sorts before the next.
		order := []string{
			"0.0.0~git20260101.abc1234",
			"0.0.0~git20260101.abc1234.dirty",
			"0.0.0~git20260102.abc1235",
			"1.2.3~rc1",
			"1.2.3~rc1+git20260101.4.abc1234",
			"1.2.3",
			"1.2.3+dirty",
			"1.2.3+git20260101.4.abc1234",
			"1.2.4",
		}
		for i := 0; i+1 < len(order); i++ {
			if _, _, err := run(t, cmdSpec{}, dpkg, "--compare-versions", order[i], "lt", order[i+1]); err != nil {
				t.Errorf("dpkg --compare-versions %s lt %s: %v", order[i], order[i+1], err)
			}
		}
	})
}

// TestDebPackages builds the three packages with `make deb` and checks
// their control fields, maintainer scripts and contents, and that each
// binary is a static, stripped build for its architecture.
func TestDebPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sngate for three architectures")
	}
	dpkgDeb := tool(t, "dpkg-deb", "dpkg")
	debs := builtDebs(t, "amd64", "arm64", "armhf")
	version := debVersion(t)
	root := repoRoot(t)

	for _, arch := range []string{"amd64", "arm64", "armhf"} {
		t.Run(arch, func(t *testing.T) {
			deb := debs[arch]
			if got, want := filepath.Base(deb), "sngate_"+version+"_"+arch+".deb"; got != want {
				t.Errorf("package file %s, want %s", got, want)
			}
			if fi, err := os.Stat(deb); err == nil {
				t.Logf("%s: %d bytes", filepath.Base(deb), fi.Size())
			}

			// Control fields.
			fields := map[string]string{
				"Package":      "sngate",
				"Version":      version,
				"Architecture": arch,
				"Section":      "net",
				"Priority":     "optional",
			}
			for k, want := range fields {
				got := strings.TrimSpace(mustRun(t, cmdSpec{}, dpkgDeb, "--field", deb, k))
				if got != want {
					t.Errorf("%s: %s, want %q", k, got, want)
				}
			}
			depends := strings.TrimSpace(mustRun(t, cmdSpec{}, dpkgDeb, "--field", deb, "Depends"))
			for _, d := range []string{"passwd", "init-system-helpers"} {
				if !strings.Contains(depends, d) {
					t.Errorf("Depends: %s lacks %s, which the maintainer scripts use", depends, d)
				}
			}
			if strings.Contains(depends, "systemd,") || strings.HasSuffix(depends, "systemd") {
				t.Errorf("Depends: %s names systemd, which would keep the package out of chroots and image builds", depends)
			}
			if m := strings.TrimSpace(mustRun(t, cmdSpec{}, dpkgDeb, "--field", deb, "Maintainer")); !strings.Contains(m, "<") {
				t.Errorf("Maintainer: %q, want Name <address>", m)
			}

			// Control archive: conffiles and the maintainer scripts, verbatim
			// and executable.
			ctrl := t.TempDir()
			mustRun(t, cmdSpec{}, dpkgDeb, "--control", deb, ctrl)
			if got := readFile(t, filepath.Join(ctrl, "conffiles")); got != "/etc/sngate/sngate.yaml\n" {
				t.Errorf("conffiles = %q, want /etc/sngate/sngate.yaml", got)
			}
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				p := filepath.Join(ctrl, s)
				if got, want := readFile(t, p), readFile(t, filepath.Join(root, "images/deb", s)); got != want {
					t.Errorf("the package's %s differs from images/deb/%s", s, s)
				}
				if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("%s: %v %v, want mode 0755", s, fi.Mode(), err)
				}
			}
			if _, err := os.Stat(filepath.Join(ctrl, "preinst")); err == nil {
				t.Errorf("the package has a preinst; images/deb has none")
			}

			// Data archive listing: exactly these files, with these modes.
			listing := mustRun(t, cmdSpec{}, dpkgDeb, "--contents", deb)
			seen := map[string]bool{}
			sc := bufio.NewScanner(strings.NewReader(listing))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) < 6 {
					t.Errorf("unexpected dpkg-deb --contents line %q", sc.Text())
					continue
				}
				perm, owner, path := f[0], f[1], strings.TrimPrefix(f[5], ".")
				if owner != "root/root" {
					t.Errorf("%s owned by %s, want root/root", path, owner)
				}
				switch perm[0] {
				case 'd':
					if perm != "drwxr-xr-x" {
						t.Errorf("directory %s has mode %s, want drwxr-xr-x", path, perm)
					}
				case '-':
					want, ok := debFiles[path]
					if !ok {
						t.Errorf("unexpected file %s in the package", path)
						continue
					}
					seen[path] = true
					if perm != want.perm {
						t.Errorf("%s has mode %s, want %s", path, perm, want.perm)
					}
				default:
					t.Errorf("unexpected entry %q in the package", sc.Text())
				}
			}
			for path := range debFiles {
				if !seen[path] {
					t.Errorf("the package lacks %s", path)
				}
			}

			// The files themselves.
			data := t.TempDir()
			mustRun(t, cmdSpec{}, dpkgDeb, "--extract", deb, data)
			for path, f := range debFiles {
				switch f.src {
				case "":
				case "README.md": // edited often: only that it is the README
					if got := readFile(t, filepath.Join(data, path)); !strings.HasPrefix(got, "# sngate") {
						t.Errorf("%s does not start with the README's title", path)
					}
				default:
					if readFile(t, filepath.Join(data, path)) != readFile(t, filepath.Join(root, f.src)) {
						t.Errorf("%s in the package differs from %s", path, f.src)
					}
				}
			}
			bin := filepath.Join(data, "usr/bin/sngate")
			checkBinary(t, bin, arch)
			if fi, err := os.Stat(bin); err == nil {
				t.Logf("usr/bin/sngate: %d bytes", fi.Size())
			}
			runsVersion(t, bin, arch)

			// The packaged config is valid.
			if arch == "amd64" && runtime.GOARCH == "amd64" {
				out := mustRun(t, cmdSpec{}, bin, "check", "-c", filepath.Join(data, "etc/sngate/sngate.yaml"))
				if strings.TrimSpace(out) != "config ok" {
					t.Errorf("sngate check -c the packaged sngate.yaml: %q, want config ok", out)
				}
			}
		})
	}
}

// checkBinary checks that bin is a static, stripped (-s -w), CGO-free,
// -trimpath Linux build for the Debian architecture arch.
func checkBinary(t *testing.T, bin, arch string) {
	t.Helper()
	want := debArches[arch]
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: not an ELF binary: %v", bin, err)
	}
	defer f.Close()
	if f.Machine != want.machine || f.Class != want.class {
		t.Errorf("%s binary is %v %v, want %v %v", arch, f.Class, f.Machine, want.class, want.machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s binary has a program interpreter: not static", arch)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s binary links %v: not static", arch, libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s binary has a symbol table: not built with -s", arch)
	}

	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("%s binary: no Go build info: %v", arch, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, v := range map[string]string{
		"GOOS":        "linux",
		"GOARCH":      want.goarch,
		"CGO_ENABLED": "0",
		"-trimpath":   "true",
	} {
		if settings[k] != v {
			t.Errorf("%s binary built with %s=%q, want %q", arch, k, settings[k], v)
		}
	}
	if want.goarm != "" && settings["GOARM"] != want.goarm {
		t.Errorf("%s binary built with GOARM=%q, want %q", arch, settings["GOARM"], want.goarm)
	}
	// -trimpath keeps -ldflags out of the build info: -s shows as no
	// symbol table (above), -w as no DWARF, and -X main.version in what
	// `sngate version` says (runsVersion).
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("%s binary has section %s: not built with -w", arch, s.Name)
			break
		}
	}
}

// runsVersion runs `bin version`, natively or under qemu-user-static, and
// checks the version it reports.
func runsVersion(t *testing.T, bin, arch string) {
	t.Helper()
	name, args := bin, []string{"version"}
	if debArches[arch].goarch != runtime.GOARCH {
		qemu, err := exec.LookPath(debArches[arch].qemu)
		if err != nil {
			t.Logf("not running the %s binary: %s not installed (qemu-user-static); looking for the version string instead", arch, debArches[arch].qemu)
			if data, err := os.ReadFile(bin); err != nil || !bytes.Contains(data, []byte(makeVersion(t))) {
				t.Errorf("the %s binary does not contain its version %q (%v)", arch, makeVersion(t), err)
			}
			return
		}
		name, args = qemu, []string{bin, "version"}
	}
	out := mustRun(t, cmdSpec{}, name, args...)
	if first, _, _ := strings.Cut(out, "\n"); first != "sngate "+makeVersion(t) {
		t.Errorf("%s: sngate version says %q, want %q", arch, first, "sngate "+makeVersion(t))
	}
}

// debianMirror is where debootstrap fetches Debian from.
func debianMirror() string {
	if m := os.Getenv("SNGATE_DEBIAN_MIRROR"); m != "" {
		return m
	}
	return "http://deb.debian.org/debian"
}

// TestDebInstall makes a Debian bookworm root with debootstrap (minbase)
// and installs, reinstalls, upgrades, removes and purges the amd64
// package in it, checking after each step what is on disk, the user and
// group, the conffile and the service's enablement.
func TestDebInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("debootstraps a Debian root, a minute or two")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("installs the amd64 package into a root of this machine's architecture")
	}
	needRoot(t)
	debootstrap := tool(t, "debootstrap", "debootstrap")
	chroot := tool(t, "chroot", "coreutils")
	mirror := debianMirror()
	release := mirror + "/dists/bookworm/Release"
	hc := http.Client{Timeout: 20 * time.Second}
	if resp, err := hc.Head(release); err != nil {
		missing(t, "cannot reach the Debian mirror (set SNGATE_DEBIAN_MIRROR for another): %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			missing(t, "HEAD %s: %s", release, resp.Status)
		}
	}

	// debootstrap runs while make builds the package. The cleanup stops it
	// and waits for it, before t.TempDir's cleanup removes the root.
	root := filepath.Join(t.TempDir(), "root")
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		out string
		err error
		dur time.Duration
	}
	bootstrapped := make(chan result, 1)
	start := time.Now()
	go func() {
		stdout, stderr, err := execute(ctx, cmdSpec{timeout: 10 * time.Minute}, debootstrap, "--variant=minbase", "bookworm", root, mirror)
		bootstrapped <- result{stdout + stderr, err, time.Since(start)}
	}()
	var res *result
	t.Cleanup(func() {
		cancel()
		if res == nil {
			<-bootstrapped
		}
		unmountUnder(t, root)
	})
	deb := builtDebs(t, "amd64")["amd64"]
	r := <-bootstrapped
	res = &r
	if r.err != nil {
		out := r.out
		if len(out) > 4000 {
			out = "..." + out[len(out)-4000:]
		}
		t.Fatalf("debootstrap --variant=minbase bookworm: %v\n%s", r.err, out)
	}
	t.Logf("debootstrap --variant=minbase bookworm: %v", r.dur.Round(time.Second))

	version := debVersion(t)
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
	// in runs a command in the root; inOK fails the test if it fails.
	in := func(t *testing.T, args ...string) (string, string, error) {
		t.Helper()
		return run(t, cmdSpec{env: env}, chroot, append([]string{root}, args...)...)
	}
	inOK := func(t *testing.T, args ...string) string {
		t.Helper()
		return mustRun(t, cmdSpec{env: env}, chroot, append([]string{root}, args...)...)
	}
	install := func(t *testing.T, deb string) string {
		t.Helper()
		name := "/tmp/" + filepath.Base(deb)
		copyFile(t, deb, filepath.Join(root, name), 0o644)
		out := inOK(t, "dpkg", "-i", name)
		if err := os.Remove(filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
		return out
	}
	path := func(p string) string { return filepath.Join(root, p) }
	conffile := path("/etc/sngate/sngate.yaml")
	wantsLink := path("/etc/systemd/system/multi-user.target.wants/sngate.service")

	// account returns the uid, gid, home and shell of a user of the root.
	account := func(t *testing.T, user string) (uid, gid int, home, shell string) {
		t.Helper()
		out, _, err := in(t, "getent", "passwd", user)
		if err != nil {
			t.Fatalf("getent passwd %s in the root: %v (no such user?)", user, err)
		}
		f := strings.Split(strings.TrimSpace(out), ":")
		if len(f) != 7 {
			t.Fatalf("getent passwd %s: %q", user, out)
		}
		uid, _ = strconv.Atoi(f[2])
		gid, _ = strconv.Atoi(f[3])
		return uid, gid, f[5], f[6]
	}
	groupsOf := func(t *testing.T, user string) []string {
		t.Helper()
		return strings.Fields(inOK(t, "id", "-nG", user))
	}
	// checkMode checks p's type and permissions and its owner.
	checkMode := func(t *testing.T, p string, mode os.FileMode, uid, gid int) {
		t.Helper()
		fi, err := os.Lstat(path(p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", p, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
		}
	}
	checkEnabled := func(t *testing.T) {
		t.Helper()
		target, err := os.Readlink(wantsLink)
		if err != nil {
			t.Errorf("sngate.service is not enabled: %v", err)
			return
		}
		if target != "/lib/systemd/system/sngate.service" && target != "/usr/lib/systemd/system/sngate.service" {
			t.Errorf("%s -> %s, want the packaged unit", wantsLink, target)
		}
		if _, err := os.Stat(path(target)); err != nil {
			t.Errorf("the enable link points to %s, missing in the root: %v", target, err)
		}
	}
	checkInstalled := func(t *testing.T, version string) {
		t.Helper()
		out := inOK(t, "dpkg-query", "--show", "--showformat=${Status} ${Version}", "sngate")
		if want := "install ok installed " + version; out != want {
			t.Errorf("dpkg-query: %q, want %q", out, want)
		}
	}

	if !t.Run("install", func(t *testing.T) {
		out := install(t, deb)
		if !strings.Contains(out, "Setting up sngate ("+version+")") {
			t.Errorf("dpkg -i says:\n%s\nwant Setting up sngate (%s)", out, version)
		}
		checkInstalled(t, version)
	}) {
		t.FailNow()
	}

	var uid, gid int
	t.Run("user", func(t *testing.T) {
		var home, shell string
		uid, gid, home, shell = account(t, "sngate")
		if uid <= 0 || uid >= 1000 || home != "/var/lib/sngate" || shell != "/usr/sbin/nologin" {
			t.Errorf("user sngate: uid %d, home %s, shell %s; want a system uid (1-999), /var/lib/sngate, /usr/sbin/nologin", uid, home, shell)
		}
		if out := strings.TrimSpace(inOK(t, "getent", "group", "sngate")); !strings.HasPrefix(out, "sngate:x:"+strconv.Itoa(gid)+":") {
			t.Errorf("group sngate: %q, want the user's primary group %d", out, gid)
		}
		shadow := strings.Split(inOK(t, "getent", "shadow", "sngate"), ":")
		if len(shadow) < 2 || (!strings.HasPrefix(shadow[1], "!") && !strings.HasPrefix(shadow[1], "*")) {
			t.Errorf("user sngate can log in with a password: shadow %q", shadow)
		}
		groups := groupsOf(t, "sngate")
		if !slices.Contains(groups, "sngate") || !slices.Contains(groups, "dialout") {
			t.Errorf("sngate is in %v, want sngate and dialout", groups)
		}
		if slices.Contains(groups, "gpio") {
			t.Errorf("sngate is in gpio, which this root does not have")
		}
	})

	t.Run("files", func(t *testing.T) {
		checkMode(t, "/usr/bin/sngate", 0o755, 0, 0)
		checkMode(t, "/usr/lib/systemd/system/sngate.service", 0o644, 0, 0)
		checkMode(t, "/etc/sngate", os.ModeDir|0o755, 0, 0)
		checkMode(t, "/etc/sngate/sngate.yaml", 0o640, 0, gid) // readable by the service, not by all
		checkMode(t, "/var/lib/sngate", os.ModeDir|0o750, uid, gid)
		for _, p := range []string{"/usr/share/doc/sngate/README.md", "/usr/share/doc/sngate/copyright", "/usr/share/doc/sngate/examples/sngate.example.yaml"} {
			checkMode(t, p, 0o644, 0, 0)
		}
		if got, want := readFile(t, path("/usr/lib/systemd/system/sngate.service")), readFile(t, filepath.Join(repoRoot(t), "systemd/sngate.service")); got != want {
			t.Errorf("the installed unit differs from systemd/sngate.service")
		}
		if out := inOK(t, "dpkg-statoverride", "--list", "/etc/sngate/sngate.yaml"); strings.TrimSpace(out) != "root sngate 640 /etc/sngate/sngate.yaml" {
			t.Errorf("dpkg-statoverride --list: %q, want root sngate 640", out)
		}
	})

	t.Run("conffile", func(t *testing.T) {
		if got := readFile(t, path("/var/lib/dpkg/info/sngate.conffiles")); strings.TrimSpace(got) != "/etc/sngate/sngate.yaml" {
			t.Errorf("sngate.conffiles = %q, want /etc/sngate/sngate.yaml", got)
		}
		out := inOK(t, "dpkg-query", "--show", "--showformat=${Conffiles}", "sngate")
		if f := strings.Fields(out); len(f) < 2 || f[0] != "/etc/sngate/sngate.yaml" {
			t.Errorf("dpkg-query ${Conffiles}: %q, want /etc/sngate/sngate.yaml and its md5sum", out)
		}
	})

	t.Run("enabled", checkEnabled)

	t.Run("runs", func(t *testing.T) {
		out := inOK(t, "/usr/bin/sngate", "version")
		if first, _, _ := strings.Cut(out, "\n"); first != "sngate "+makeVersion(t) {
			t.Errorf("sngate version: %q, want sngate %s", first, makeVersion(t))
		}
		if out := inOK(t, "sngate", "check", "-c", "/etc/sngate/sngate.yaml"); strings.TrimSpace(out) != "config ok" {
			t.Errorf("sngate check -c /etc/sngate/sngate.yaml: %q, want config ok", out)
		}
	})

	// A local edit, and a gpio group as on Raspberry Pi OS: a reinstall
	// keeps the edit and the user, and adds the user to gpio.
	edited := readFile(t, conffile) + "# edited by TestDebInstall\n"
	t.Run("reinstall", func(t *testing.T) {
		writeFile(t, conffile, edited, 0o640)
		inOK(t, "groupadd", "--system", "gpio")
		install(t, deb)
		checkInstalled(t, version)
		if readFile(t, conffile) != edited {
			t.Errorf("the reinstall lost the local edit of /etc/sngate/sngate.yaml")
		}
		checkMode(t, "/etc/sngate/sngate.yaml", 0o640, 0, gid)
		if u, g, _, _ := account(t, "sngate"); u != uid || g != gid {
			t.Errorf("the reinstall changed sngate's ids from %d:%d to %d:%d", uid, gid, u, g)
		}
		if groups := groupsOf(t, "sngate"); !slices.Contains(groups, "gpio") || !slices.Contains(groups, "dialout") {
			t.Errorf("after a reinstall with a gpio group, sngate is in %v, want gpio and dialout too", groups)
		}
		checkEnabled(t)
	})

	// A newer version: an upgrade (postinst configure with the old version).
	newer := version + "+test1"
	t.Run("upgrade", func(t *testing.T) {
		inOK(t, "dpkg", "--compare-versions", newer, "gt", version)
		deb2 := makeDeb(t, t.TempDir(), []string{"amd64"}, "DEB_VERSION="+newer)["amd64"]
		out := install(t, deb2)
		if !strings.Contains(out, fmt.Sprintf("Unpacking sngate (%s) over (%s)", newer, version)) {
			t.Errorf("dpkg -i of %s says:\n%s\nwant an upgrade from %s", newer, out, version)
		}
		checkInstalled(t, newer)
		if readFile(t, conffile) != edited {
			t.Errorf("the upgrade lost the local edit of /etc/sngate/sngate.yaml")
		}
		checkEnabled(t)

		// An admin's `systemctl disable` (no systemd here: it removes the
		// link) survives a reinstall, and so does a later enable.
		target, err := os.Readlink(wantsLink)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(wantsLink); err != nil {
			t.Fatal(err)
		}
		install(t, deb2)
		if _, err := os.Lstat(wantsLink); err == nil {
			t.Errorf("a reinstall enabled sngate.service again after the admin disabled it")
		}
		if err := os.Symlink(target, wantsLink); err != nil { // systemctl enable
			t.Fatal(err)
		}
		install(t, deb2)
		checkEnabled(t)
	})

	t.Run("remove", func(t *testing.T) {
		inOK(t, "dpkg", "-r", "sngate")
		for _, p := range []string{"/usr/bin/sngate", "/usr/lib/systemd/system/sngate.service"} {
			if _, err := os.Lstat(path(p)); err == nil {
				t.Errorf("dpkg -r left %s", p)
			}
		}
		// Kept until purge: config, state, enablement, user.
		if readFile(t, conffile) != edited {
			t.Errorf("dpkg -r changed /etc/sngate/sngate.yaml")
		}
		for _, p := range []string{"/var/lib/sngate", "/etc/systemd/system/multi-user.target.wants/sngate.service"} {
			if _, err := os.Lstat(path(p)); err != nil {
				t.Errorf("dpkg -r removed %s, which stays until purge: %v", p, err)
			}
		}
		account(t, "sngate")
		out := inOK(t, "dpkg-query", "--show", "--showformat=${Status}", "sngate")
		if out != "deinstall ok config-files" {
			t.Errorf("after dpkg -r, status %q, want deinstall ok config-files", out)
		}
	})

	t.Run("purge", func(t *testing.T) {
		inOK(t, "dpkg", "-P", "sngate")
		for _, p := range []string{"/etc/sngate", "/var/lib/sngate", "/etc/systemd/system/multi-user.target.wants/sngate.service"} {
			if _, err := os.Lstat(path(p)); err == nil {
				t.Errorf("dpkg -P left %s", p)
			}
		}
		if out, _, _ := in(t, "dpkg-statoverride", "--list", "/etc/sngate/sngate.yaml"); out != "" {
			t.Errorf("dpkg -P left the stat override %q", out)
		}
		if _, err := os.Stat(path("/var/lib/dpkg/info/sngate.postrm")); err == nil {
			t.Errorf("dpkg -P left sngate's maintainer scripts")
		}
		// Debian packages leave their system users: files may still be theirs.
		account(t, "sngate")
	})

	t.Run("install after purge", func(t *testing.T) {
		install(t, deb)
		checkInstalled(t, version)
		if u, _, _, _ := account(t, "sngate"); u != uid {
			t.Errorf("sngate's uid changed from %d to %d", uid, u)
		}
		if got, want := readFile(t, conffile), readFile(t, filepath.Join(repoRoot(t), "images/deb/sngate.yaml")); got != want {
			t.Errorf("after a purge, the reinstalled conffile is not the packaged one")
		}
		checkEnabled(t)
	})
}

// unmountUnder detaches every mount at or below dir: debootstrap mounts
// proc and sys in its target while it works, and one that is killed
// leaves them there.
func unmountUnder(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Logf("cannot look for mounts left under %s: %v", dir, err)
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	// Deepest first.
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s, left by debootstrap: %v", p, err)
		}
	}
}
