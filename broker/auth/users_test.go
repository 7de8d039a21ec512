package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// hash hashes at the lowest cost, to keep the tests fast.
func hash(t testing.TB, password string) string {
	t.Helper()
	h, err := HashPassword([]byte(password), MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUsersCheck(t *testing.T) {
	path := writeFile(t, "# sngate users\n\n"+
		"alice:"+hash(t, "wonderland")+"\n"+
		"   \n"+
		"bob:"+hash(t, "builder")+"\r\n"+ // CRLF
		"carol smith:"+hash(t, "")+"  \n"+ // trailing blanks, empty password
		"dave:"+hash(t, strings.Repeat("x", 72))) // no final newline
	u, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 4 || u.Path() != path {
		t.Errorf("Len %d, Path %q", u.Len(), u.Path())
	}
	tests := []struct {
		user, password string
		want           bool
	}{
		{"alice", "wonderland", true},
		{"alice", "Wonderland", false},
		{"alice", "wonderland ", false},
		{"alice", "", false},
		{"bob", "builder", true},
		{"bob", "wonderland", false},
		{"carol smith", "", true},
		{"carol smith", "x", false},
		{"dave", strings.Repeat("x", 72), true},
		{"dave", strings.Repeat("x", 73), false}, // bcrypt would accept it
		{"Alice", "wonderland", false},
		{"eve", "wonderland", false},
		{"", "", false},
		{"# sngate users", "", false},
	}
	for _, tt := range tests {
		if got := u.Check(tt.user, []byte(tt.password)); got != tt.want {
			t.Errorf("Check(%q, %q) = %v, want %v", tt.user, tt.password, got, tt.want)
		}
	}
	var nilUsers *Users
	if nilUsers.Check("alice", []byte("wonderland")) || nilUsers.Len() != 0 {
		t.Error("nil Users knows someone")
	}
}

func TestUsersForeignHashes(t *testing.T) {
	// $2y$ (htpasswd -B, PHP) and $2b$ hashes of "secret".
	h, _ := bcrypt.GenerateFromPassword([]byte("secret"), MinCost)
	y := "$2y$" + string(h[4:])
	b := "$2b$" + string(h[4:])
	u, err := LoadUsers(writeFile(t, "y:"+y+"\nb:"+b+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !u.Check("y", []byte("secret")) || !u.Check("b", []byte("secret")) {
		t.Error("$2y$ or $2b$ hash refused")
	}
}

func TestUnknownUserCostsACompare(t *testing.T) {
	// The dummy hash has the cost most users' hashes have.
	u, err := LoadUsers(writeFile(t, "a:"+hash(t, "x")+"\nb:"+hash(t, "y")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost(u.table.Load().dummy()); err != nil || c != MinCost {
		t.Errorf("dummy cost %d, %v; want %d", c, err, MinCost)
	}
	if u.Check("nobody", []byte("x")) {
		t.Error("unknown user accepted")
	}
	// With no users, or users of the default cost, the built-in one.
	for _, path := range []string{"", writeFile(t, "# nobody\n")} {
		u, err := LoadUsers(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(u.table.Load().dummy()); got != dummyHash {
			t.Errorf("%q: dummy %q", path, got)
		}
		if u.Check("", nil) || u.Check("x", []byte("x")) {
			t.Error("accepted without users")
		}
	}
	if c, err := bcrypt.Cost([]byte(dummyHash)); err != nil || c != dummyCost || dummyCost != DefaultCost {
		t.Errorf("dummyHash cost %d, %v", c, err)
	}
}

func TestLoadUsersErrors(t *testing.T) {
	good := hash(t, "pw")
	tests := []struct {
		content string
		want    []string // each "line: message part"
	}{
		{"alice\n", []string{":1: not user:hash (no ':')"}},
		{"# c\nalice:\n", []string{":2: user \"alice\": the hash is not a bcrypt hash"}},
		{"alice:secret\n", []string{":1: user \"alice\": the hash is not a bcrypt hash"}},
		{":" + good + "\n", []string{`:1: user name "": empty`}},
		{"a\tb:" + good + "\n", []string{`:1: user name "a\tb": contains a control character`}},
		{"a\xffb:" + good + "\n", []string{`:1: user name "a\xffb": not well-formed UTF-8`}},
		{"alice:$6$salt$abcdef\n", []string{":1: user \"alice\": mosquitto_passwd hashes ($6$, $7$) are not supported"}},
		{"alice:$7$101$abc$def\n", []string{"mosquitto_passwd hashes"}},
		{"alice:$2a$99$" + good[7:] + "\n", []string{":1: user \"alice\": bcrypt cost outside 4..31"}},
		{"alice:$2a$03$" + good[7:] + "\n", []string{"bcrypt cost outside"}},
		{"alice:" + good + "x\n", []string{"not a bcrypt hash"}},
		{"alice:" + good + "\n\nbob:" + good + "\nalice:" + good + "\n", []string{`:4: user "alice" again (first on line 1)`}},
		{"x\nalice:" + good + "\ny:z\n", []string{":1: not user:hash", `:3: user "y": the hash is not`}},
	}
	for _, tt := range tests {
		path := writeFile(t, tt.content)
		u, err := LoadUsers(path)
		if err == nil {
			t.Errorf("%q: no error", tt.content)
			continue
		}
		if u != nil {
			t.Errorf("%q: Users with the error", tt.content)
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tt.want) {
			t.Errorf("%q: %d errors, want %d:\n%v", tt.content, len(lines), len(tt.want), err)
			continue
		}
		for i, want := range tt.want {
			if !strings.HasPrefix(lines[i], path+":") || !strings.Contains(lines[i], want) {
				t.Errorf("%q: error %q, want %s%s", tt.content, lines[i], path, want)
			}
		}
		var fe *FileError
		if !errors.As(err, &fe) || fe.Path != path || fe.Line == 0 {
			t.Errorf("%q: not a *FileError with path and line: %#v", tt.content, err)
		}
	}
	if _, err := LoadUsers(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestReload(t *testing.T) {
	path := writeFile(t, "alice:"+hash(t, "one")+"\n")
	u, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("alice:"+hash(t, "two")+"\nbob:"+hash(t, "b")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !u.Check("alice", []byte("one")) {
		t.Error("changed before Reload")
	}
	if err := u.Reload(); err != nil {
		t.Fatal(err)
	}
	if u.Check("alice", []byte("one")) || !u.Check("alice", []byte("two")) || !u.Check("bob", []byte("b")) {
		t.Error("Reload did not switch")
	}

	// A bad file is reported and the users stay.
	if err := os.WriteFile(path, []byte("alice:nothash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Reload(); err == nil || !strings.HasPrefix(err.Error(), path+":1: ") {
		t.Errorf("Reload of a bad file: %v", err)
	}
	if !u.Check("alice", []byte("two")) {
		t.Error("failed Reload changed the users")
	}
	os.Remove(path)
	if err := u.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a missing file: %v", err)
	}
	if !u.Check("bob", []byte("b")) {
		t.Error("failed Reload changed the users")
	}

	empty, _ := LoadUsers("")
	if err := empty.Reload(); err != nil || empty.Len() != 0 {
		t.Errorf("Reload without a file: %v", err)
	}
}

func TestReloadWhileChecking(t *testing.T) {
	path := writeFile(t, "alice:"+hash(t, "pw")+"\n")
	u, err := LoadUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if !u.Check("alice", []byte("pw")) {
					t.Error("refused during reloads")
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := u.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

func TestValidateUsername(t *testing.T) {
	for _, ok := range []string{"alice", "a b", "ü", "a#", "-x", strings.Repeat("x", 1000)} {
		if err := ValidateUsername(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a:b", ":", "a\tb", "a\nb", "a\rb", "a\x7fb", "a\u0085b", "a\x00b", "#a", "a\xff"} {
		if err := ValidateUsername(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSplitLine(t *testing.T) {
	tests := []struct {
		line, user, hash string
		entry            bool
	}{
		{"", "", "", false},
		{"  \t", "", "", false},
		{"\r", "", "", false},
		{"# comment: x", "", "", false},
		{"alice:$2a$x", "alice", "$2a$x", true},
		{"alice:$2a$x \r", "alice", "$2a$x", true},
		{"a b:h:i", "a b", "h:i", true},
		{"alice\r", "alice", "", true},
		{" #x:h", " #x", "h", true},
	}
	for _, tt := range tests {
		user, hash, entry := SplitLine(tt.line)
		if user != tt.user || hash != tt.hash || entry != tt.entry {
			t.Errorf("SplitLine(%q) = %q, %q, %v; want %q, %q, %v", tt.line, user, hash, entry, tt.user, tt.hash, tt.entry)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword([]byte("pw"), MinCost)
	if err != nil || bcrypt.CompareHashAndPassword([]byte(h), []byte("pw")) != nil || !bcryptRE.MatchString(h) {
		t.Errorf("%q, %v", h, err)
	}
	if _, err := HashPassword(make([]byte, 73), MinCost); !errors.Is(err, ErrPasswordTooLong) {
		t.Errorf("73 bytes: %v", err)
	}
	for _, cost := range []int{0, 3, 32} {
		if _, err := HashPassword([]byte("pw"), cost); err == nil {
			t.Errorf("cost %d accepted", cost)
		}
	}
}
