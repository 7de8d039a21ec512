package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/auth"
)

// passwd runs sngate passwd at the lowest bcrypt cost with stdin as
// standard input.
func passwd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args = append([]string{"passwd", "--cost", "4"}, args...)
	code = run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// mustPasswd runs sngate passwd and fails the test unless it succeeds
// silently.
func mustPasswd(t *testing.T, stdin string, args ...string) {
	t.Helper()
	if code, out, errOut := passwd(t, stdin, args...); code != 0 || out != "" || errOut != "" {
		t.Fatalf("passwd %v: code %d, stdout %q, stderr %q", args, code, out, errOut)
	}
}

// checkUsers loads file and checks that exactly the users in want exist,
// with those passwords.
func checkUsers(t *testing.T, file string, want map[string]string) {
	t.Helper()
	u, err := auth.LoadUsers(file)
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != len(want) {
		t.Errorf("%d users, want %d", u.Len(), len(want))
	}
	for user, pw := range want {
		if !u.Check(user, []byte(pw)) {
			t.Errorf("user %q password %q refused", user, pw)
		}
		if u.Check(user, []byte(pw+"x")) {
			t.Errorf("user %q: wrong password accepted", user)
		}
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(file))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestPasswdAddUpdateDelete(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")

	mustPasswd(t, "", "-b", "-c", file, "alice", "wonderland")
	checkUsers(t, file, map[string]string{"alice": "wonderland"})

	// Password from standard input (not a terminal), CRLF tolerated.
	mustPasswd(t, "builder\r\n", file, "bob")
	checkUsers(t, file, map[string]string{"alice": "wonderland", "bob": "builder"})

	// Without a final newline, and with long options.
	mustPasswd(t, "p w", "--batch", file, "carol smith", "p w")
	mustPasswd(t, "", "--batch", file, "dave", "x")

	// Comments, blank lines and other users' lines survive edits, in place.
	data, _ := os.ReadFile(file)
	data = append([]byte("# broker users\n\n"), data...)
	data = bytes.Replace(data, []byte("\nbob:"), []byte("\n# bob is the builder\nbob:"), 1)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	mustPasswd(t, "", "-b", file, "alice", "looking-glass") // update
	checkUsers(t, file, map[string]string{"alice": "looking-glass", "bob": "builder", "carol smith": "p w", "dave": "x"})
	after, _ := os.ReadFile(file)
	lines := strings.Split(string(after), "\n")
	wantShape := []string{"# broker users", "", "alice:", "# bob is the builder", "bob:", "carol smith:", "dave:", ""}
	if len(lines) != len(wantShape) {
		t.Fatalf("file after update:\n%s", after)
	}
	for i, w := range wantShape {
		if !strings.HasPrefix(lines[i], w) || (w == "" && lines[i] != "") {
			t.Errorf("line %d %q, want %q...", i+1, lines[i], w)
		}
	}
	// Other users' lines are byte for byte the same.
	for _, user := range []string{"bob:", "carol smith:", "dave:"} {
		if lineOf(data, user) != lineOf(after, user) {
			t.Errorf("%s line changed", user)
		}
	}

	mustPasswd(t, "", "-D", file, "bob")
	checkUsers(t, file, map[string]string{"alice": "looking-glass", "carol smith": "p w", "dave": "x"})
	if got, _ := os.ReadFile(file); !strings.Contains(string(got), "# bob is the builder\n") {
		t.Errorf("comment lost on delete:\n%s", got)
	}
	mustPasswd(t, "", "--delete", file, "dave")
	checkUsers(t, file, map[string]string{"alice": "looking-glass", "carol smith": "p w"})

	// -c starts over.
	mustPasswd(t, "", "-c", "-b", file, "eve", "e")
	checkUsers(t, file, map[string]string{"eve": "e"})
	if got, _ := os.ReadFile(file); strings.Contains(string(got), "#") {
		t.Errorf("-c kept old content:\n%s", got)
	}
	// -c also reads the password from standard input.
	mustPasswd(t, "frank's\n", "-c", file, "frank")
	checkUsers(t, file, map[string]string{"frank": "frank's"})
}

func lineOf(data []byte, prefix string) string {
	for l := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestPasswdDuplicatesCollapse(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	mustPasswd(t, "", "-b", "-c", file, "alice", "a")
	data, _ := os.ReadFile(file)
	// A hand-edited file with alice twice: the update keeps one line.
	if err := os.WriteFile(file, append(append(data, "bob:x\n"...), data...), 0o600); err != nil {
		t.Fatal(err)
	}
	mustPasswd(t, "", "-b", file, "alice", "new")
	got, _ := os.ReadFile(file)
	if strings.Count(string(got), "alice:") != 1 || !strings.Contains(string(got), "\nbob:x\n") {
		t.Errorf("file:\n%s", got)
	}
}

func TestPasswdSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real")
	link := filepath.Join(dir, "link")
	mustPasswd(t, "", "-b", "-c", target, "alice", "a")
	if err := os.Symlink("real", link); err != nil {
		t.Skip(err)
	}
	mustPasswd(t, "", "-b", link, "bob", "b")
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link replaced: %v", err)
	}
	checkUsers(t, target, map[string]string{"alice": "a", "bob": "b"})
}

func TestPasswdUsageErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{}, "want FILE USER, got 0 arguments"},
		{[]string{file}, "want FILE USER, got 1 argument\n"},
		{[]string{file, "alice", "pw"}, "want FILE USER, got 3 arguments"},
		{[]string{"-b", file, "alice"}, "want FILE USER PASSWORD, got 2 arguments"},
		{[]string{"-b", file, "alice", "pw", "x"}, "want FILE USER PASSWORD, got 4"},
		{[]string{"-D", file}, "want FILE USER, got 1"},
		{[]string{"-D", "-b", file, "alice", "pw"}, "-D cannot be used with -b or -c"},
		{[]string{"-D", "-c", file, "alice"}, "-D cannot be used with -b or -c"},
		{[]string{"--cost", "3", "-c", "-b", file, "alice", "pw"}, "--cost 3 is outside 4..31"},
		{[]string{"--cost", "32", "-c", "-b", file, "alice", "pw"}, "--cost 32 is outside"},
		{[]string{"-c", "-b", file, "a:b", "pw"}, `user name "a:b": contains ':'`},
		{[]string{"-c", "-b", file, "", "pw"}, `user name "": empty`},
		{[]string{"-c", "-b", file, "a\tb", "pw"}, "contains a control character"},
		{[]string{"-c", "-b", file, "a\nb", "pw"}, "contains a control character"},
		{[]string{"-c", "-b", file, "#a", "pw"}, "starts with '#'"},
		{[]string{"-c", "-b", file, "a\xff", "pw"}, "not well-formed UTF-8"},
		{[]string{"-D", file, "a:b"}, "contains ':'"},
		{[]string{"-c", "-b", file, "alice", ""}, "empty password"},
		{[]string{"-c", "-b", file, "alice", strings.Repeat("x", 73)}, "password longer than 72 bytes"},
		{[]string{"--bogus", file, "alice"}, "flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		code, out, errOut := passwd(t, "pw\n", tt.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tt.msg) || !strings.Contains(errOut, "Usage: sngate passwd") {
			t.Errorf("%q: code %d, stdout %q, stderr:\n%s", tt.args, code, out, errOut)
		}
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("a usage error wrote the file")
	}
}

func TestPasswdFailures(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "passwd")
	missing := filepath.Join(dir, "missing")
	mustPasswd(t, "", "-b", "-c", file, "alice", "a")
	before, _ := os.ReadFile(file)
	tests := []struct {
		stdin string
		args  []string
		msg   string
	}{
		{"", []string{"-b", missing, "alice", "a"}, missing + " does not exist (use -c to create it)"},
		{"a\n", []string{missing, "alice"}, "does not exist (use -c"},
		{"", []string{"-D", missing, "alice"}, "no such file or directory"},
		{"", []string{"-D", file, "bob"}, file + `: no user "bob"`},
		{"", []string{file, "bob"}, "no password on standard input"},
		{"\n", []string{file, "bob"}, "empty password"},
		{strings.Repeat("x", 73) + "\n", []string{file, "bob"}, "password longer than 72 bytes"},
		{"", []string{"-b", "-c", filepath.Join(dir, "no", "such", "dir"), "bob", "b"}, "no such file or directory"},
		{"", []string{"-b", dir, "bob", "b"}, "is a directory"},
	}
	for _, tt := range tests {
		code, out, errOut := passwd(t, tt.stdin, tt.args...)
		if code != exitError || out != "" || !strings.Contains(errOut, tt.msg) ||
			!strings.HasPrefix(errOut, "sngate passwd: ") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: code %d, stdout %q, stderr %q", tt.args, code, out, errOut)
		}
	}
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Error("a failure changed the file")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a failure created a file")
	}
}

func TestPasswdDefaultCost(t *testing.T) {
	file := filepath.Join(t.TempDir(), "passwd")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"passwd", "-c", "-b", file, "alice", "a"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("code %d: %s", code, errb.String())
	}
	data, _ := os.ReadFile(file)
	if !strings.HasPrefix(string(data), "alice:$2a$10$") {
		t.Errorf("file %q, want cost 10", data)
	}
}
