package images

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sngate/sngate/systemd/systemdtest"
)

const (
	piGenDir    = "pi-gen"
	stageName   = "stage-sngate"
	stageDir    = piGenDir + "/" + stageName
	substageDir = stageDir + "/00-sngate"
	filesDir    = substageDir + "/files"

	firstbootUnit   = "sngate-firstboot.service"
	firstbootScript = "/usr/local/lib/sngate/sngate-firstboot"
)

// scripts returns every shell script under images/ (maintainer scripts,
// pi-gen stage scripts and sourced files, the first-boot script) with the
// shell that runs it: its #! line's, or bash for the files pi-gen sources.
func scripts(t *testing.T) map[string]string {
	t.Helper()
	sourced := map[string]bool{ // sourced by pi-gen's build.sh (bash)
		piGenDir + "/config":       true,
		stageDir + "/EXPORT_IMAGE": true,
	}
	found := map[string]string{}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".go") {
			return err
		}
		if sourced[p] {
			found[p] = "bash"
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		line, _ := bufio.NewReader(f).ReadString('\n')
		switch {
		case strings.HasPrefix(line, "#!/bin/sh"):
			found[p] = "sh"
		case strings.HasPrefix(line, "#!/bin/bash"), strings.HasPrefix(line, "#!/usr/bin/env bash"):
			found[p] = "bash"
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestScriptsSyntax checks every script with `sh -n` or `bash -n`, that
// those with a #! line are executable, and runs shellcheck on them when it
// is installed.
func TestScriptsSyntax(t *testing.T) {
	all := scripts(t)
	for _, want := range []string{
		"deb/postinst", "deb/prerm", "deb/postrm", "deb/debversion.sh",
		stageDir + "/prerun.sh", stageDir + "/EXPORT_IMAGE", piGenDir + "/config",
		substageDir + "/00-run.sh", filesDir + "/sngate-firstboot",
	} {
		if all[want] == "" {
			t.Errorf("%s: missing, or not a shell script", want)
		}
	}
	shellcheck, _ := exec.LookPath("shellcheck")
	if shellcheck == "" {
		t.Log("shellcheck not installed: only syntax is checked")
	}
	for p, shell := range all {
		if _, stderr, err := run(t, cmdSpec{}, shell, "-n", p); err != nil {
			t.Errorf("%s -n %s: %v\n%s", shell, p, err, stderr)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if p != piGenDir+"/config" && p != stageDir+"/EXPORT_IMAGE" && fi.Mode().Perm()&0o111 != 0o111 {
			t.Errorf("%s: mode %v, want executable (pi-gen and dpkg run it)", p, fi.Mode().Perm())
		}
		if shellcheck != "" {
			if out, _, err := run(t, cmdSpec{}, shellcheck, "--shell="+shell, p); err != nil {
				t.Errorf("shellcheck %s: %v\n%s", p, err, out)
			}
		}
	}
}

// TestPiGenStageLayout checks the stage against pi-gen's conventions: a
// prerun.sh, an EXPORT_IMAGE, and substages NN-name whose NN-run.sh
// scripts are executable (pi-gen skips them otherwise); and that every
// files/NAME the substage's 00-run.sh installs is there.
func TestPiGenStageLayout(t *testing.T) {
	for _, p := range []string{stageDir + "/prerun.sh", stageDir + "/EXPORT_IMAGE", substageDir + "/00-run.sh"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("pi-gen stage: %v", err)
		}
	}
	if !strings.Contains(readFile(t, stageDir+"/prerun.sh"), "copy_previous") {
		t.Errorf("%s/prerun.sh does not copy_previous: the stage would not start from stage2's root", stageDir)
	}
	entries, err := os.ReadDir(stageDir)
	if err != nil {
		t.Fatal(err)
	}
	substage := regexp.MustCompile(`^[0-9]{2}-[A-Za-z0-9_-]+$`)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if !substage.MatchString(e.Name()) {
			t.Errorf("%s/%s: pi-gen substages are named NN-name", stageDir, e.Name())
			continue
		}
		sub, err := os.ReadDir(filepath.Join(stageDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range sub {
			if m, _ := filepath.Match("[0-9][0-9]-run*.sh", f.Name()); m {
				fi, err := f.Info()
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm()&0o100 == 0 {
					t.Errorf("%s/%s/%s is not executable: pi-gen would skip it", stageDir, e.Name(), f.Name())
				}
			}
		}
	}

	run := readFile(t, substageDir+"/00-run.sh")
	refs := regexp.MustCompile(`files/([A-Za-z0-9._${}*-]+)`).FindAllStringSubmatch(run, -1)
	if len(refs) == 0 {
		t.Fatalf("%s/00-run.sh names no files/...", substageDir)
	}
	for _, m := range refs {
		name := m[1]
		if strings.ContainsAny(name, "${}*") { // the .deb, copied in before a build
			continue
		}
		if _, err := os.Stat(filepath.Join(filesDir, name)); err != nil {
			t.Errorf("00-run.sh installs files/%s: %v", name, err)
		}
	}
	if ignore := readFile(t, filesDir+"/.gitignore"); !strings.Contains(ignore, "*.deb") {
		t.Errorf("%s/.gitignore does not ignore the .deb copied there", filesDir)
	}
}

// TestPiGenConfig sources the example pi-gen config as build.sh does and
// checks that it builds the Lite stages and then this stage.
func TestPiGenConfig(t *testing.T) {
	out := mustRun(t, cmdSpec{dir: piGenDir}, "bash", "-c", `set -e; . ./config; printf '%s\n' "$STAGE_LIST" "$RELEASE" "$IMG_NAME"`)
	lines := strings.Split(out, "\n")
	if len(lines) < 3 {
		t.Fatalf("config printed %q", out)
	}
	stages, release, name := strings.Fields(lines[0]), lines[1], lines[2]
	want := []string{"stage0", "stage1", "stage2", stageName}
	if strings.Join(stages, " ") != strings.Join(want, " ") {
		t.Errorf("STAGE_LIST=%q, want %q (Lite, then %s)", lines[0], strings.Join(want, " "), stageName)
	}
	if release != "bookworm" {
		t.Errorf("RELEASE=%q: the stage writes /boot/firmware, the boot partition from bookworm on; want bookworm", release)
	}
	if name == "" {
		t.Errorf("IMG_NAME is empty")
	}
}

// TestPiGenRun runs the stage's 00-run.sh as pi-gen would (in its
// directory, with ROOTFS_DIR, ARCH and an exported on_chroot), against a
// fake root holding what stage2 leaves, and with the packages `make deb`
// built copied into files/: so the .deb name it looks for is the one make
// deb makes. on_chroot only records the script it is given.
func TestPiGenRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the arm64 and armhf packages")
	}
	tool(t, "dpkg-deb", "dpkg")
	debs := builtDebs(t, "arm64", "armhf")

	// stage copies the stage into a scratch directory, with debs in files/.
	stage := func(t *testing.T, debs ...string) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), stageName)
		if err := os.CopyFS(dir, os.DirFS(stageDir)); err != nil {
			t.Fatal(err)
		}
		for _, d := range debs {
			copyFile(t, d, filepath.Join(dir, "00-sngate/files", filepath.Base(d)), 0o644)
		}
		return dir
	}
	const (
		stage2Config  = "# For more options and information see\n# http://rptl.io/configtxt\n\ndtparam=audio=on\n\n[cm4]\notg_mode=1\n\n[all]\n"
		stage2Cmdline = "console=serial0,115200 console=tty1 root=ROOTDEV rootfstype=ext4 fsck.repair=yes rootwait\n"
	)
	// rootfs makes a fake image root.
	rootfs := func(t *testing.T, gpio bool) string {
		t.Helper()
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "boot/firmware/config.txt"), stage2Config, 0o644)
		writeFile(t, filepath.Join(root, "boot/firmware/cmdline.txt"), stage2Cmdline, 0o644)
		group := "root:x:0:\ndialout:x:20:pi\n"
		if gpio {
			group += "gpio:x:997:pi\n"
		}
		writeFile(t, filepath.Join(root, "etc/group"), group, 0o644)
		if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o1777); err != nil {
			t.Fatal(err)
		}
		return root
	}
	// runStage runs 00-run.sh and returns what it gave on_chroot.
	runStage := func(t *testing.T, stage, root string, env ...string) (chrootScripts, stderr string, err error) {
		t.Helper()
		log := filepath.Join(t.TempDir(), "on_chroot.log")
		spec := cmdSpec{
			dir: filepath.Join(stage, "00-sngate"),
			env: append([]string{"ROOTFS_DIR=" + root, "CHROOT_LOG=" + log, "ARCH=", "SNGATE_DEB_ARCH="}, env...),
		}
		_, stderr, err = run(t, spec, "bash", "-c", `on_chroot() { cat >>"$CHROOT_LOG"; }; export -f on_chroot; ./00-run.sh`)
		b, _ := os.ReadFile(log)
		return string(b), stderr, err
	}

	for _, tc := range []struct {
		name, arch string
		env        []string
	}{
		{"arm64", "arm64", []string{"ARCH=arm64"}},
		{"armhf", "armhf", []string{"ARCH=armhf"}},
		{"SNGATE_DEB_ARCH", "armhf", []string{"ARCH=arm64", "SNGATE_DEB_ARCH=armhf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := stage(t, debs["arm64"], debs["armhf"])
			root := rootfs(t, true)
			deb := filepath.Base(debs[tc.arch])
			chrootScripts, stderr, err := runStage(t, dir, root, tc.env...)
			if err != nil {
				t.Fatalf("00-run.sh: %v\n%s", err, stderr)
			}
			for _, want := range []string{`apt-get install -y "/tmp/` + deb + `"`, "systemctl enable " + firstbootUnit} {
				if !strings.Contains(chrootScripts, want) {
					t.Errorf("00-run.sh did not run %q in the chroot; it ran:\n%s", want, chrootScripts)
				}
			}
			if _, err := os.Stat(filepath.Join(root, "tmp", deb)); err != nil {
				t.Errorf("the package was not copied into the root's /tmp: %v", err)
			}

			// The first-boot unit, the script it starts, the sample, the drop-in.
			for p, mode := range map[string]os.FileMode{
				firstbootScript:                                  0o755,
				"/etc/systemd/system/" + firstbootUnit:           0o644,
				"/etc/systemd/system/sngate.service.d/gpio.conf": 0o644,
				"/boot/firmware/sngate.yaml.example":             0o644,
			} {
				fi, err := os.Stat(filepath.Join(root, p))
				if err != nil {
					t.Errorf("not installed: %v", err)
					continue
				}
				if fi.Mode().Perm() != mode {
					t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), mode)
				}
			}
			unit := readFile(t, filepath.Join(root, "etc/systemd/system", firstbootUnit))
			if !strings.Contains(unit, "\nExecStart="+firstbootScript+"\n") {
				t.Errorf("%s does not start %s, where 00-run.sh installs the script", firstbootUnit, firstbootScript)
			}

			checkBootFiles(t, root)

			// Again, as after a failed build resumed: nothing added twice.
			if _, stderr, err := runStage(t, dir, root, tc.env...); err != nil {
				t.Fatalf("00-run.sh, second run: %v\n%s", err, stderr)
			}
			checkBootFiles(t, root)
		})
	}

	t.Run("no gpio group", func(t *testing.T) {
		root := rootfs(t, false)
		if _, stderr, err := runStage(t, stage(t, debs["arm64"]), root, "ARCH=arm64"); err != nil {
			t.Fatalf("00-run.sh: %v\n%s", err, stderr)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/sngate.service.d/gpio.conf")); err == nil {
			t.Errorf("gpio.conf installed in an image without a gpio group: every start would fail (216/GROUP)")
		}
	})

	t.Run("no package", func(t *testing.T) {
		_, stderr, err := runStage(t, stage(t, debs["armhf"]), rootfs(t, true), "ARCH=arm64")
		if err == nil || !strings.Contains(stderr, "make deb") {
			t.Errorf("00-run.sh without an arm64 package: %v, stderr %q; want a failure saying to run make deb", err, stderr)
		}
	})

	t.Run("wrong architecture", func(t *testing.T) {
		dir := stage(t)
		// An armhf package renamed as an arm64 one.
		copyFile(t, debs["armhf"], filepath.Join(dir, "00-sngate/files/sngate_1.0_arm64.deb"), 0o644)
		_, stderr, err := runStage(t, dir, rootfs(t, true), "ARCH=arm64")
		if err == nil || !strings.Contains(stderr, "armhf") {
			t.Errorf("00-run.sh with an armhf package named _arm64: %v, stderr %q; want a failure naming armhf", err, stderr)
		}
	})
}

// checkBootFiles checks config.txt and cmdline.txt after the stage: the
// UART on in an [all] section, once, and no serial console.
func checkBootFiles(t *testing.T, root string) {
	t.Helper()
	config := readFile(t, filepath.Join(root, "boot/firmware/config.txt"))
	if n := strings.Count(config, "\nenable_uart=1\n"); n != 1 {
		t.Errorf("config.txt has %d enable_uart=1 lines, want 1:\n%s", n, config)
	}
	section := ""
	for _, line := range strings.Split(config, "\n") {
		if strings.HasPrefix(line, "[") {
			section = line
		}
		if line == "enable_uart=1" && section != "[all]" {
			t.Errorf("enable_uart=1 is in section %s of config.txt, want [all]", section)
		}
	}
	cmdline := readFile(t, filepath.Join(root, "boot/firmware/cmdline.txt"))
	if strings.Contains(cmdline, "console=serial0") || strings.Count(cmdline, "\n") != 1 {
		t.Errorf("cmdline.txt = %q, want one line without console=serial0", cmdline)
	}
	for _, keep := range []string{"console=tty1", "root=ROOTDEV", "rootwait"} {
		if !strings.Contains(cmdline, keep) {
			t.Errorf("cmdline.txt = %q lost %s", cmdline, keep)
		}
	}
}

// TestFirstbootConfigChecks: the sample first-boot config and the
// packaged conffile pass `sngate check`.
func TestFirstbootConfigChecks(t *testing.T) {
	sngate := hostSngate(t)
	for _, p := range []string{filesDir + "/sngate.yaml", "deb/sngate.yaml"} {
		out, stderr, err := run(t, cmdSpec{}, sngate, "check", "-c", p)
		if err != nil || strings.TrimSpace(out) != "config ok" {
			t.Errorf("sngate check -c %s: %v %s%s", p, err, out, stderr)
		}
	}
}

// TestFirstbootScript runs sngate-firstboot against scratch directories: a
// valid config replaces the installed one, keeping its mode, and leaves the
// boot partition; an invalid one changes nothing installed and says why.
func TestFirstbootScript(t *testing.T) {
	sngate := hostSngate(t)
	script, err := filepath.Abs(filesDir + "/sngate-firstboot")
	if err != nil {
		t.Fatal(err)
	}
	sample := readFile(t, filesDir+"/sngate.yaml")
	setup := func(t *testing.T) (boot, src, dst string, spec cmdSpec) {
		t.Helper()
		dir := t.TempDir()
		boot = filepath.Join(dir, "boot/firmware")
		src, dst = filepath.Join(boot, "sngate.yaml"), filepath.Join(dir, "etc/sngate/sngate.yaml")
		spec = cmdSpec{env: []string{"SNGATE_FIRSTBOOT_SRC=" + src, "SNGATE_FIRSTBOOT_DST=" + dst, "SNGATE_BIN=" + sngate}}
		return boot, src, dst, spec
	}

	t.Run("valid", func(t *testing.T) {
		boot, src, dst, spec := setup(t)
		writeFile(t, src, sample, 0o755) // FAT: everything rwx
		writeFile(t, dst, "log: {level: warn}\n", 0o640)
		writeFile(t, filepath.Join(boot, "sngate-error.txt"), "stale\n", 0o755)
		out, stderr, err := run(t, spec, script)
		if err != nil {
			t.Fatalf("sngate-firstboot: %v\n%s%s", err, out, stderr)
		}
		if readFile(t, dst) != sample {
			t.Errorf("%s is not the config from the boot partition", dst)
		}
		if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %v %v, want the old file's mode 0640", dst, fi.Mode(), err)
		}
		for _, p := range []string{src, filepath.Join(boot, "sngate-error.txt")} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s still there after a successful install", p)
			}
		}
		if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
			t.Errorf("%s holds %d files, want just sngate.yaml (no temporary left)", filepath.Dir(dst), len(entries))
		}
	})

	t.Run("invalid", func(t *testing.T) {
		boot, src, dst, spec := setup(t)
		const old, bad = "log: {level: warn}\n", "log:\n  level: loud\n"
		writeFile(t, src, bad, 0o755)
		writeFile(t, dst, old, 0o640)
		out, stderr, err := run(t, spec, script)
		var exit *exec.ExitError
		if err == nil || !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("sngate-firstboot with an invalid config: %v, want exit status 1\n%s%s", err, out, stderr)
		}
		if readFile(t, dst) != old {
			t.Errorf("an invalid config replaced %s", dst)
		}
		if readFile(t, src+".invalid") != bad {
			t.Errorf("the invalid config was not kept as sngate.yaml.invalid")
		}
		if _, err := os.Stat(src); err == nil {
			t.Errorf("%s still there: it would be tried at every boot", src)
		}
		report := readFile(t, filepath.Join(boot, "sngate-error.txt"))
		for _, want := range []string{"log.level", "loud", "NOT installed"} {
			if !strings.Contains(report, want) {
				t.Errorf("sngate-error.txt lacks %q:\n%s", want, report)
			}
		}
		if !strings.Contains(stderr, "log.level") {
			t.Errorf("the reason is not logged (stderr %q)", stderr)
		}
	})

	t.Run("nothing to do", func(t *testing.T) {
		_, _, dst, spec := setup(t)
		if out, stderr, err := run(t, spec, script); err != nil {
			t.Errorf("sngate-firstboot without a file: %v\n%s%s", err, out, stderr)
		}
		if _, err := os.Stat(dst); err == nil {
			t.Errorf("%s made from nothing", dst)
		}
	})

	t.Run("no installed config", func(t *testing.T) {
		_, src, dst, spec := setup(t)
		writeFile(t, src, sample, 0o755)
		if out, stderr, err := run(t, spec, script); err != nil {
			t.Fatalf("sngate-firstboot: %v\n%s%s", err, out, stderr)
		}
		if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %v %v, want mode 0640", dst, fi.Mode(), err)
		}
	})
}

// TestFirstbootUnitVerifies runs `systemd-analyze verify` (as
// systemd/unit_test.go does for sngate.service) on the first-boot unit and
// on sngate.service with the image's gpio drop-in, installed as the image
// has them in a scratch root.
func TestFirstbootUnitVerifies(t *testing.T) {
	analyze := tool(t, "systemd-analyze", "systemd")
	units := systemdtest.UnitsDir()
	if units == "" {
		missing(t, "no systemd units (sysinit.target) in /usr/lib/systemd/system: verify cannot resolve the units' dependencies")
	}
	sngate := hostSngate(t)
	root := systemdtest.NewRoot(t, units,
		"root:x:0:0:root:/root:/bin/sh\nsngate:x:998:998:sngate:/var/lib/sngate:/usr/sbin/nologin\n",
		"root:x:0:\ndialout:x:20:sngate\ngpio:x:997:sngate\nsngate:x:998:\n")
	repo := repoRoot(t)
	copyFile(t, filepath.Join(repo, "systemd/sngate.service"), filepath.Join(root, "usr/lib/systemd/system/sngate.service"), 0o644)
	copyFile(t, filesDir+"/"+firstbootUnit, filepath.Join(root, "etc/systemd/system", firstbootUnit), 0o644)
	copyFile(t, filesDir+"/gpio.conf", filepath.Join(root, "etc/systemd/system/sngate.service.d/gpio.conf"), 0o644)
	copyFile(t, filesDir+"/sngate-firstboot", filepath.Join(root, firstbootScript), 0o755)
	copyFile(t, sngate, filepath.Join(root, "usr/bin/sngate"), 0o755)

	for _, unit := range []string{firstbootUnit, "sngate.service"} {
		stdout, stderr, err := run(t, cmdSpec{dir: root}, analyze, "verify", "--man=no", "--root="+root, unit)
		if stdout != "" {
			t.Logf("systemd-analyze verify %s stdout:\n%s", unit, stdout)
		}
		// systemd-analyze 252 reports problems on stderr and exits 0.
		if stderr != "" || err != nil {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, stderr)
		}
	}

	u := readFile(t, filesDir+"/"+firstbootUnit)
	for _, want := range []string{
		"\nBefore=sngate.service\n",
		"\nConditionPathExists=/boot/firmware/sngate.yaml\n",
		"\nType=oneshot\n",
		"\nWantedBy=multi-user.target\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("%s lacks %q", firstbootUnit, strings.TrimSpace(want))
		}
	}
	if d := readFile(t, filesDir+"/gpio.conf"); !strings.Contains(d, "[Service]\nSupplementaryGroups=gpio\n") {
		t.Errorf("gpio.conf does not add the group gpio:\n%s", d)
	}
}
