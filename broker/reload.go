package broker

import (
	"fmt"

	"github.com/sngate/sngate/broker/auth"
)

// admission is what a network client was admitted with, for ReloadAuth.
type admission struct {
	who  clientIdentity
	hash string // its password hash in the file then; "" without one
}

// AuthReload says what ReloadAuth changed for the clients already there.
type AuthReload struct {
	Users int // users in the password file now
	Rules int // ACL rules now
	// Disconnected counts network clients whose admission no longer holds:
	// their user was removed or their password changed, or they have no
	// user name and anonymous clients are no longer admitted.
	Disconnected int
	// Revoked counts subscriptions removed because the new ACL no longer
	// lets their client read them.
	Revoked int
}

// anonymousAllowed says whether a listener admits clients without a user
// name: its allow_anonymous if set, else only while there is no password
// file.
func (s *Server) anonymousAllowed(listener *bool, users *auth.Users) bool {
	if listener != nil {
		return *listener
	}
	return users == nil
}

// ReloadAuth replaces the password file (read again, even under the same
// path) and the ACL while clients stay connected (SIGHUP). Connected
// clients keep their sessions; from now on each publish, subscribe and will
// is checked against the new ACL, and subscriptions the new ACL would
// refuse are removed (as mosquitto checks reads on delivery, a client must
// not keep reading what it may no longer). A network client whose
// admission no longer holds is disconnected; in-process clients have no
// passwords. On error (a bad password file, say) nothing changes.
func (s *Server) ReloadAuth(cfg auth.Config) (AuthReload, error) {
	if err := cfg.Validate(); err != nil {
		return AuthReload{}, fmt.Errorf("broker: reload auth: %w", err)
	}
	var users *auth.Users
	if cfg.PasswordFile != "" {
		var err error
		if users, err = auth.LoadUsers(cfg.PasswordFile); err != nil {
			return AuthReload{}, fmt.Errorf("broker: reload auth: %w", err)
		}
	}
	acl := auth.NewACL(cfg.ACL)

	s.authMu.Lock()
	defer s.authMu.Unlock()
	s.users.Store(users)
	s.acl.Store(acl)
	rep := AuthReload{Users: users.Len(), Rules: len(cfg.ACL)}
	rep.Disconnected = s.dropUnadmitted(users)
	rep.Revoked = s.revokeSubscriptions(acl)
	return rep, nil
}

// dropUnadmitted disconnects the network clients the new password file
// would not admit as they were admitted.
func (s *Server) dropUnadmitted(users *auth.Users) int {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	n := 0
	for _, c := range conns {
		a := c.authed.Load()
		if a == nil {
			continue // not admitted yet: it will be checked against the new file
		}
		rc := admit(users, s.anonymousAllowed(c.allowAnon, users), a.who.HasUsername, func() bool {
			hash, ok := users.Hash(a.who.Username)
			return ok && hash == a.hash
		})
		if rc == 0 {
			continue
		}
		reason := "user removed, password changed, or no password file where the listener requires one"
		if rc == 0x05 {
			reason = "anonymous clients are no longer admitted"
		}
		s.log.Warn("client disconnected by auth reload: "+reason, "client", a.who.ClientID, "user", a.who.Username)
		c.kick()
		n++
	}
	return n
}

// revokeSubscriptions removes from every session bound by the ACL the
// subscriptions acl does not allow, stored sessions of absent clients
// included (checked with the identity they last connected with).
func (s *Server) revokeSubscriptions(acl *auth.ACL) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sess := range s.sessions {
		sess.mu.Lock()
		if sess.trusted {
			sess.mu.Unlock()
			continue
		}
		perms := acl.For(sess.user)
		changed := false
		for f := range sess.subs {
			if perms.CanSubscribe(f) {
				continue
			}
			s.subs.Unsubscribe(f, sess)
			delete(sess.subs, f)
			changed = true
			n++
			s.log.Warn("subscription removed: the reloaded ACL does not allow it", "client", sess.id, "filter", f)
		}
		if changed {
			sess.saveLocked(nil)
		}
		sess.mu.Unlock()
	}
	return n
}
