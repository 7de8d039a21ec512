package auth

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"golang.org/x/crypto/bcrypt"

	"github.com/sngate/sngate/internal/topic"
)

// Password hashing parameters.
const (
	DefaultCost    = 10 // bcrypt cost of new hashes
	MinCost        = bcrypt.MinCost
	MaxCost        = bcrypt.MaxCost
	MaxPasswordLen = 72 // bcrypt ignores bytes after these
)

// dummyHash is compared against when the user is unknown, so that a wrong
// user name costs as much time as a wrong password. It is the hash of a
// password nobody can send (Check refuses it anyway: the user is unknown).
const (
	dummyHash = "$2a$10$9azS4vi.UihN6HYjJwGN7.J9nMq.alEXGOBbjdb7i/1NIyJV4pwDi"
	dummyCost = 10
)

// bcryptRE is a bcrypt hash in modular crypt format: $2$, $2a$, $2b$, $2x$
// or $2y$, two cost digits, then 22 characters of salt and 31 of hash.
var bcryptRE = regexp.MustCompile(`^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

// Users checks user names and passwords against a password file. It is safe
// for concurrent use, Reload included.
//
// The file has one "user:hash" line per user, the hash a bcrypt hash as
// 'sngate passwd' or 'htpasswd -B' write it. Lines starting with '#' are
// comments; blank lines are ignored.
type Users struct {
	path  string
	mu    sync.Mutex // serialises Reload
	table atomic.Pointer[userTable]
}

type userTable struct {
	hashes map[string][]byte
	// dummy returns the hash to compare against for unknown users, of the
	// cost most of the file's hashes have.
	dummy func() []byte
}

// FileError is a problem on one line of a password file.
type FileError struct {
	Path string
	Line int
	Msg  string
}

func (e *FileError) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// LoadUsers reads the password file at path. Errors about the contents are
// *FileError (several joined), naming path and line. An empty path gives
// Users without users.
func LoadUsers(path string) (*Users, error) {
	u := &Users{path: path}
	if path == "" {
		u.table.Store(newTable(map[string][]byte{}))
		return u, nil
	}
	t, err := readUsers(path)
	if err != nil {
		return nil, err
	}
	u.table.Store(t)
	return u, nil
}

// Reload reads the file again and, if it is good, switches to it at once
// for every later Check. On error the users stay as they were.
func (u *Users) Reload() error {
	if u.path == "" {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	t, err := readUsers(u.path)
	if err != nil {
		return err
	}
	u.table.Store(t)
	return nil
}

// Path returns the password file's name.
func (u *Users) Path() string { return u.path }

// Len returns the number of users.
func (u *Users) Len() int {
	if u == nil {
		return 0
	}
	return len(u.table.Load().hashes)
}

// Hash returns user's password hash as the file has it; false for an
// unknown user or a nil *Users. The broker keeps it for each connected
// client, to tell after a reload whose password changed.
func (u *Users) Hash(user string) (string, bool) {
	if u == nil {
		return "", false
	}
	h, ok := u.table.Load().hashes[user]
	return string(h), ok
}

// Check reports whether password is user's. It takes about as long whether
// the user exists or not: an unknown user still costs a bcrypt comparison.
// Passwords longer than MaxPasswordLen bytes are refused (bcrypt would
// ignore the excess). A nil *Users knows no one.
func (u *Users) Check(user string, password []byte) bool {
	if u == nil {
		return false
	}
	t := u.table.Load()
	hash, ok := t.hashes[user]
	if !ok {
		hash = t.dummy()
	}
	if len(password) > MaxPasswordLen {
		ok = false
	}
	err := bcrypt.CompareHashAndPassword(hash, password)
	return ok && err == nil
}

func readUsers(path string) (*userTable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	hashes := map[string][]byte{}
	firstLine := map[string]int{}
	var errs []error
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		user, hash, entry := SplitLine(line)
		if !entry {
			continue
		}
		if msg := checkEntry(line, user, hash); msg != "" {
			errs = append(errs, &FileError{path, n, msg})
			continue
		}
		if first, dup := firstLine[user]; dup {
			errs = append(errs, &FileError{path, n, fmt.Sprintf("user %q again (first on line %d)", user, first)})
			continue
		}
		firstLine[user] = n
		hashes[user] = []byte(hash)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return newTable(hashes), nil
}

func checkEntry(line, user, hash string) string {
	if !strings.Contains(line, ":") {
		return "not user:hash (no ':')"
	}
	if err := ValidateUsername(user); err != nil {
		return fmt.Sprintf("user name %q: %v", user, err)
	}
	if !bcryptRE.MatchString(hash) {
		if strings.HasPrefix(hash, "$6$") || strings.HasPrefix(hash, "$7$") {
			return fmt.Sprintf("user %q: mosquitto_passwd hashes ($6$, $7$) are not supported; set the password again with sngate passwd", user)
		}
		return fmt.Sprintf("user %q: the hash is not a bcrypt hash ($2a$, $2b$ or $2y$)", user)
	}
	if cost, err := bcrypt.Cost([]byte(hash)); err != nil || cost < MinCost || cost > MaxCost {
		return fmt.Sprintf("user %q: bcrypt cost outside %d..%d", user, MinCost, MaxCost)
	}
	return ""
}

func newTable(hashes map[string][]byte) *userTable {
	costs := map[int]int{}
	for _, h := range hashes {
		if c, err := bcrypt.Cost(h); err == nil {
			costs[c]++
		}
	}
	cost := dummyCost
	for c, n := range costs {
		if n > costs[cost] || (n == costs[cost] && c > cost) {
			cost = c
		}
	}
	t := &userTable{hashes: hashes}
	if cost == dummyCost {
		h := []byte(dummyHash)
		t.dummy = func() []byte { return h }
	} else {
		t.dummy = sync.OnceValue(func() []byte {
			h, err := bcrypt.GenerateFromPassword([]byte("sngate dummy password"), cost)
			if err != nil {
				return []byte(dummyHash)
			}
			return h
		})
	}
	return t
}

// SplitLine splits one line of a password file (without its "\n") into
// user name and hash. entry is false for blank lines and comments, which
// name no user. A line without ':' is all user name with an empty hash; a
// trailing "\r" and trailing blanks after the hash are dropped.
func SplitLine(line string) (user, hash string, entry bool) {
	if strings.TrimSpace(line) == "" || line[0] == '#' {
		return "", "", false
	}
	user, hash, _ = strings.Cut(line, ":")
	if !strings.Contains(line, ":") {
		user = strings.TrimRight(user, "\r")
	}
	return user, strings.TrimRight(hash, " \t\r"), true
}

// ValidateUsername checks that name can be a user in a password file: a
// non-empty MQTT string without ':' or control characters, not starting
// with '#'.
func ValidateUsername(name string) error {
	if name == "" {
		return errors.New("empty")
	}
	if err := topic.ValidateString(name); err != nil {
		return err
	}
	if strings.ContainsRune(name, ':') {
		return errors.New("contains ':'")
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return errors.New("contains a control character")
	}
	if name[0] == '#' {
		return errors.New("starts with '#' (the line would be a comment)")
	}
	return nil
}

// ErrPasswordTooLong is returned by HashPassword for passwords longer than
// MaxPasswordLen bytes.
var ErrPasswordTooLong = fmt.Errorf("longer than %d bytes", MaxPasswordLen)

// HashPassword returns the bcrypt hash of password at cost (MinCost to
// MaxCost; DefaultCost is a good choice), for a password file line.
func HashPassword(password []byte, cost int) (string, error) {
	if cost < MinCost || cost > MaxCost {
		return "", fmt.Errorf("bcrypt cost %d is outside %d..%d", cost, MinCost, MaxCost)
	}
	if len(password) > MaxPasswordLen {
		return "", ErrPasswordTooLong
	}
	h, err := bcrypt.GenerateFromPassword(password, cost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}
