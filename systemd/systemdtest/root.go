// Package systemdtest builds scratch roots in which `systemd-analyze
// verify --root=DIR` checks units the way the target system would: with
// the distribution's units for their dependencies, a merged /usr holding
// the programs Exec lines name, and the accounts User= and Group= name.
// It is shared by the tests of sngate.service (systemd) and of the Pi
// image's units (images).
package systemdtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// UnitsDir returns the distribution's unit directory (the one holding
// sysinit.target), or "" when this machine has none: verify cannot
// resolve dependencies without it.
func UnitsDir() string {
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			return d
		}
	}
	return ""
}

// NewRoot returns a new scratch root with the units of unitsDir in
// usr/lib/systemd/system, a merged /usr (bin is a link to usr/bin) with
// usr/bin/kill for ExecReload=, and etc/passwd and etc/group as given.
func NewRoot(t testing.TB, unitsDir, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc/systemd/system", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := CopyTree(unitsDir, filepath.Join(root, "usr/lib/systemd/system")); err != nil {
		t.Fatalf("copying the distribution's units: %v", err)
	}
	kill, err := os.ReadFile("/bin/kill")
	if err != nil {
		kill = []byte("#!/bin/sh\nexit 0\n") // verify only checks that it exists
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{"usr/bin/kill", kill, 0o755},
		{"etc/passwd", []byte(passwd), 0o644},
		{"etc/group", []byte(group), 0o644},
	} {
		if err := os.WriteFile(filepath.Join(root, f.path), f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// CopyTree copies the directory src to dst, keeping symlinks as symlinks
// (units' .wants/ directories and masks are links).
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, data, 0o644)
		}
		return nil // sockets, fifos: none expected
	})
}
