package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/broker/packets"
)

// writeUsers writes a password file of user:password pairs (MinCost).
func writeUsers(t *testing.T, path string, pairs ...string) {
	t.Helper()
	var b strings.Builder
	for i := 0; i+1 < len(pairs); i += 2 {
		h, err := auth.HashPassword([]byte(pairs[i+1]), auth.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(pairs[i] + ":" + h + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func login(id, user, pw string) *packets.ConnectPacket {
	return &packets.ConnectPacket{ClientID: id, KeepAlive: 60, CleanSession: true,
		UsernameFlag: true, Username: user, PasswordFlag: true, Password: []byte(pw)}
}

// TestReloadAuthUsers: a reloaded password file admits new users at once,
// disconnects connected clients whose user was removed or whose password
// changed, and leaves the others connected with their sessions.
func TestReloadAuthUsers(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "passwd")
	writeUsers(t, pw, "keep", "k1", "gone", "g1", "moved", "m1")
	cfg := auth.Config{PasswordFile: pw}
	s, addr := startBroker(t, Config{Auth: cfg}, "")

	keep := dial(t, addr)
	keep.connectOK(login("keep-c", "keep", "k1"))
	keep.mustSubscribe(1, "news/#", 1)
	gone := dial(t, addr)
	gone.connectOK(login("gone-c", "gone", "g1"))
	moved := dial(t, addr)
	moved.connectOK(login("moved-c", "moved", "m1"))
	newcomer := dial(t, addr)
	newcomer.send(login("new-c", "new", "n1"))
	newcomer.expectRefused(packets.ConnRefusedBadUsernamePassword)

	// keep's line is copied as it was: same hash.
	old, err := os.ReadFile(pw)
	if err != nil {
		t.Fatal(err)
	}
	keepLine := strings.SplitN(string(old), "\n", 2)[0] + "\n"
	h1, _ := auth.HashPassword([]byte("m2"), auth.MinCost)
	h2, _ := auth.HashPassword([]byte("n1"), auth.MinCost)
	if err := os.WriteFile(pw, []byte(keepLine+"moved:"+h1+"\nnew:"+h2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := s.ReloadAuth(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Users != 3 || rep.Disconnected != 2 {
		t.Errorf("reload report %+v, want 3 users and 2 disconnected", rep)
	}
	gone.expectClosedSilently()
	moved.expectClosedSilently()

	// keep is still connected, its subscription working.
	newcomer = dial(t, addr)
	newcomer.connectOK(login("new-c", "new", "n1"))
	newcomer.pub("news/a", "hello", 1, false, 7)
	keep.expectMsg("news/a", "hello", 1, false)
	again := dial(t, addr)
	again.send(login("moved-c", "moved", "m1"))
	again.expectRefused(packets.ConnRefusedBadUsernamePassword)
}

// TestReloadAuthBadFileChangesNothing: a password file that does not load
// leaves the running users and ACL in place.
func TestReloadAuthBadFileChangesNothing(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "passwd")
	writeUsers(t, pw, "u", "p")
	cfg := auth.Config{PasswordFile: pw}
	s, addr := startBroker(t, Config{Auth: cfg}, "")
	if err := os.WriteFile(pw, []byte("u:not-a-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReloadAuth(cfg); err == nil || !strings.Contains(err.Error(), pw+":1") {
		t.Fatalf("reload of a bad file: %v, want an error naming %s:1", err, pw)
	}
	c := dial(t, addr)
	c.connectOK(login("c", "u", "p"))
}

// TestReloadAuthACL: a new ACL applies to connected clients at once: a
// publish it denies goes nowhere, a subscription it no longer allows is
// removed (so nothing more is read through it), and one it now allows can
// be made, all without reconnecting. Stored sessions of absent clients
// lose such subscriptions too.
func TestReloadAuthACL(t *testing.T) {
	open := auth.Config{ACL: []auth.Rule{{Pattern: true, Topic: "#"}}}
	s, addr := startBroker(t, Config{Auth: open}, t.TempDir())
	reader := dial(t, addr)
	reader.connectOK(&packets.ConnectPacket{ClientID: "reader", KeepAlive: 60, CleanSession: true})
	reader.mustSubscribe(1, "secret/#", 1)
	reader.mustSubscribe(2, "public/#", 1)
	away := dial(t, addr)
	away.connectOK(&packets.ConnectPacket{ClientID: "away", KeepAlive: 60})
	away.mustSubscribe(1, "secret/#", 1)
	away.disconnect()
	writer := dial(t, addr)
	writer.connectOK(&packets.ConnectPacket{ClientID: "writer", KeepAlive: 60, CleanSession: true})

	tight := auth.Config{ACL: []auth.Rule{
		{Anonymous: true, Topic: "public/#"},
		{Anonymous: true, Topic: "open/#"},
		{Anonymous: true, Topic: "secret/#", Access: auth.AccessWrite},
	}}
	rep, err := s.ReloadAuth(tight)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Revoked != 2 || rep.Rules != 3 {
		t.Errorf("reload report %+v, want 2 subscriptions revoked (reader's and away's secret/#)", rep)
	}
	// Writing secret/ is still allowed, reading it no longer: the old
	// subscriptions must not deliver it.
	writer.pub("secret/x", "unread", 1, false, 1)
	writer.pub("public/x", "ok", 1, false, 2)
	reader.expectMsg("public/x", "ok", 1, false)
	if sub := reader.subscribe(3, packets.Subscription{Filter: "open/#", QoS: 1}); sub.ReturnCodes[0] != 1 {
		t.Errorf("SUBACK %v for open/#, now allowed", sub.ReturnCodes)
	}
	if sub := reader.subscribe(4, packets.Subscription{Filter: "secret/#", QoS: 1}); sub.ReturnCodes[0] != 0x80 {
		t.Errorf("SUBACK %v for secret/#, now refused", sub.ReturnCodes)
	}
	writer.pub("secret/z", "unread", 1, false, 3)
	reader.expectNothing(200 * time.Millisecond)

	away = dial(t, addr)
	away.connectOK(&packets.ConnectPacket{ClientID: "away", KeepAlive: 60})
	writer.pub("secret/y", "unread", 0, false, 0)
	away.expectNothing(200 * time.Millisecond)
}

// TestReloadAuthAnonymous: adding a password file where there was none
// disconnects the anonymous clients of a listener without allow_anonymous.
func TestReloadAuthAnonymous(t *testing.T) {
	s, addr := startBroker(t, Config{}, "")
	anon := connected(t, addr, "anon", true)
	pw := filepath.Join(t.TempDir(), "passwd")
	writeUsers(t, pw, "u", "p")
	rep, err := s.ReloadAuth(auth.Config{PasswordFile: pw})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Disconnected != 1 {
		t.Errorf("reload report %+v, want the anonymous client disconnected", rep)
	}
	anon.expectClosedSilently()
	c := dial(t, addr)
	c.send(&packets.ConnectPacket{ProtocolName: "MQTT", ProtocolLevel: 4, ClientID: "anon2", KeepAlive: 60, CleanSession: true})
	c.expectRefused(packets.ConnRefusedNotAuthorized)
}
