package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"github.com/sngate/sngate/broker/auth"
)

// maxPasswordInput bounds the line read from a standard input that is not
// a terminal.
const maxPasswordInput = 4096

func cmdPasswd(ctx context.Context, args []string, s streams) int {
	fs := newFlagSet("passwd", "[-c] [--cost N] FILE USER\n"+
		"       sngate passwd -b [-c] [--cost N] FILE USER PASSWORD\n"+
		"       sngate passwd -D FILE USER",
		"Add a user to the broker's password file, change a user's password or\n"+
			"delete a user, as mosquitto_passwd does. The password is asked for twice\n"+
			"on the terminal, or read as one line from standard input if that is not\n"+
			"a terminal. Other users and comments in FILE are kept; FILE is replaced\n"+
			"atomically and left readable by its owner only (mode 0600).", s)
	var (
		batch, create, del bool
		cost               int
	)
	fs.boolVar(&batch, "batch", "b", "take the password from the command line (it shows in ps and the shell history)")
	fs.boolVar(&create, "create", "c", "create FILE, or overwrite it with just USER")
	fs.boolVar(&del, "delete", "D", "delete USER")
	fs.intVar(&cost, "cost", "", auth.DefaultCost, fmt.Sprintf("bcrypt cost `N`, %d to %d: each step doubles the time a login takes", auth.MinCost, auth.MaxCost))
	if code, ok := parse(fs, args, s); !ok {
		return code
	}
	want := "FILE USER"
	if batch {
		want = "FILE USER PASSWORD"
	}
	switch {
	case del && (batch || create):
		return usageError(fs, s, errors.New("-D cannot be used with -b or -c"))
	case fs.NArg() != len(strings.Fields(want)):
		return usageError(fs, s, fmt.Errorf("want %s, got %d argument%s", want, fs.NArg(), plural(fs.NArg())))
	case cost < auth.MinCost || cost > auth.MaxCost:
		return usageError(fs, s, fmt.Errorf("--cost %d is outside %d..%d", cost, auth.MinCost, auth.MaxCost))
	}
	file, user := fs.Arg(0), fs.Arg(1)
	if err := auth.ValidateUsername(user); err != nil {
		return usageError(fs, s, fmt.Errorf("user name %q: %v", user, err))
	}

	var old []byte
	if !create {
		var err error
		old, err = os.ReadFile(file)
		if errors.Is(err, os.ErrNotExist) && !del {
			return failure("passwd", s, fmt.Errorf("%s does not exist (use -c to create it)", file))
		}
		if err != nil {
			return failure("passwd", s, err)
		}
	}

	if del {
		data, found := editUsers(old, user, "")
		if !found {
			return failure("passwd", s, fmt.Errorf("%s: no user %q", file, user))
		}
		if err := writeFileAtomic(file, data); err != nil {
			return failure("passwd", s, err)
		}
		return exitOK
	}

	var password []byte
	if batch {
		password = []byte(fs.Arg(2))
		if err := checkPassword(password); err != nil {
			return usageError(fs, s, err)
		}
	} else {
		var err error
		if password, err = readPassword(s); err == nil {
			err = checkPassword(password)
		}
		if err != nil {
			return failure("passwd", s, err)
		}
	}
	hash, err := auth.HashPassword(password, cost)
	if err != nil {
		return failure("passwd", s, err)
	}
	line := user + ":" + hash
	var data []byte
	if create {
		data = []byte(line + "\n")
	} else {
		data, _ = editUsers(old, user, line)
	}
	if err := writeFileAtomic(file, data); err != nil {
		return failure("passwd", s, err)
	}
	return exitOK
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func checkPassword(p []byte) error {
	switch {
	case len(p) == 0:
		return errors.New("empty password")
	case len(p) > auth.MaxPasswordLen:
		return fmt.Errorf("password longer than %d bytes", auth.MaxPasswordLen)
	}
	return nil
}

// readPassword asks for the password twice on the terminal without echo, or
// reads one line from standard input if it is not a terminal.
func readPassword(s streams) ([]byte, error) {
	if f, ok := s.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		fmt.Fprint(s.err, "Password: ")
		p1, err := term.ReadPassword(fd)
		fmt.Fprintln(s.err)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(s.err, "Reenter password: ")
		p2, err := term.ReadPassword(fd)
		fmt.Fprintln(s.err)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if !bytes.Equal(p1, p2) {
			return nil, errors.New("passwords do not match")
		}
		return p1, nil
	}
	line, err := bufio.NewReader(io.LimitReader(s.in, maxPasswordInput)).ReadBytes('\n')
	switch {
	case err == io.EOF && len(line) == 0:
		return nil, errors.New("no password on standard input")
	case err != nil && err != io.EOF:
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

// editUsers returns the password file data with user's line replaced by
// line, or deleted if line is "", and reports whether user was there. Other
// lines are kept as they are; further lines for user are dropped. A new
// user is appended.
func editUsers(data []byte, user, line string) (out []byte, found bool) {
	var b bytes.Buffer
	text := strings.TrimSuffix(string(data), "\n")
	if text != "" {
		for l := range strings.SplitSeq(text, "\n") {
			if u, _, entry := auth.SplitLine(l); entry && u == user {
				if !found && line != "" {
					b.WriteString(line + "\n")
				}
				found = true
				continue
			}
			b.WriteString(l + "\n")
		}
	}
	if !found && line != "" {
		b.WriteString(line + "\n")
	}
	return b.Bytes(), found
}

// writeFileAtomic replaces the file at path (or, if path is a symbolic
// link, the file it points to) with data, mode 0600: it writes a temporary
// file in the same directory, syncs it and renames it over path, so that a
// reader sees the old file or the new one, never a part.
func writeFileAtomic(path string, data []byte) (err error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if path, err = filepath.EvalSymlinks(path); err != nil {
			return err
		}
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// Make the rename itself durable. Not every file system can sync a
	// directory; the file is in place either way.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
