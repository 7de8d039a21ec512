package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/broker/persist"
	"github.com/sngate/sngate/broker/topics"
	"github.com/sngate/sngate/internal/storage"
	"go.etcd.io/bbolt"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("broker: server closed")

// clientIdentity is what ACL rules see of a client.
type clientIdentity = auth.Client

// Options are what a Server needs besides its Config.
type Options struct {
	// DataDir holds the store (sngate.db). Empty: nothing is persisted,
	// for tests and benchmarks.
	DataDir string
	Logger  *slog.Logger
	Version string // shown in $SYS/broker/version
}

// Server is the broker.
type Server struct {
	cfg     Config
	log     *slog.Logger
	version string
	store   *persist.Store // nil: in memory only
	// users (nil: no password file) and acl are replaced by ReloadAuth
	// (reload.go) while clients are connected.
	users   atomic.Pointer[auth.Users]
	acl     atomic.Pointer[auth.ACL]
	authMu  sync.Mutex // serialises ReloadAuth
	started time.Time
	metrics metrics

	subs     *topics.Tree[*session]
	retained *topics.Retained[*Message]

	ctx    context.Context // lives until Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // connection and listener goroutines

	mu        sync.Mutex
	sessions  map[string]*session
	conns     map[*conn]struct{}
	listeners []net.Listener
	closed    bool
}

// New builds a server from cfg, opens its store in opts.DataDir and loads
// the persistent sessions and retained messages kept there.
func New(cfg Config, opts Options) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("broker config: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		version:  opts.Version,
		subs:     topics.NewTree[*session](),
		retained: topics.NewRetained[*Message](),
		started:  time.Now(),
		sessions: map[string]*session{},
		conns:    map[*conn]struct{}{},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.acl.Store(auth.NewACL(cfg.Auth.ACL))
	if cfg.Auth.PasswordFile != "" {
		users, err := auth.LoadUsers(cfg.Auth.PasswordFile)
		if err != nil {
			return nil, err
		}
		s.users.Store(users)
	}
	if opts.DataDir != "" {
		store, err := persist.Open(opts.DataDir, storage.Options{CommitWindow: cfg.CommitWindow, Logger: log})
		if err != nil {
			return nil, err
		}
		s.store = store
		if err := s.load(); err != nil {
			store.Close()
			return nil, err
		}
	}
	s.wg.Add(1)
	go s.publishSys()
	return s, nil
}

// Storage is the broker's database, for the gateway to keep its own state
// of persistent sessions beside the broker's; nil for an in-memory broker.
// The broker owns it: Shutdown closes it.
func (s *Server) Storage() *storage.DB {
	if s.store == nil {
		return nil
	}
	return s.store.DB()
}

// load restores the persistent sessions and retained messages.
func (s *Server) load() error {
	st, err := s.store.Load()
	if err != nil {
		return fmt.Errorf("load broker state: %w", err)
	}
	for _, r := range st.Retained {
		m := &Message{Topic: r.Topic, Payload: r.Payload, QoS: r.QoS, Retain: true}
		s.retained.Set(m.Topic, m)
	}
	for _, ss := range st.Sessions {
		sess := newSession(s, ss.Session.ClientID, true)
		for _, sub := range ss.Session.Subscriptions {
			sess.subs[sub.Filter] = sub.QoS
			s.subs.Subscribe(sub.Filter, sess, sub.QoS)
		}
		for _, q := range ss.Queue {
			s.loadQueued(sess, q)
		}
		for _, pid := range ss.InboundQoS2 {
			sess.inbound2[pid] = struct{}{}
		}
		s.sessions[sess.id] = sess
	}
	s.log.Info("broker state loaded", "sessions", len(st.Sessions), "retained", len(st.Retained))
	return nil
}

// loadQueued restores one stored delivery of sess; they come in Seq order.
// A delivery gets its packet id when it is stored, and the session sends
// its deliveries in Seq order, so those that may have been sent before the
// restart are the first max_inflight ones: they go back in flight, in their
// state, for resume to send again with DUP set and the same id, or their
// PUBREL (MQTT-4.4.0-1); the others are queued behind, keeping their ids.
func (s *Server) loadQueued(sess *session, q persist.Queued) {
	m := &Message{Topic: q.Msg.Topic, Payload: q.Msg.Payload, QoS: q.Msg.QoS}
	d := &delivery{msg: m, qos: q.Msg.QoS, retain: q.Msg.Retain, seq: q.Seq}
	sess.nextSeq = max(sess.nextSeq, q.Seq+1)
	if q.PacketID == 0 || d.qos == 0 {
		sess.queue = append(sess.queue, d)
		sess.queuedBytes += d.size()
		return
	}
	d.pid = q.PacketID
	sess.nextPID = d.pid // go on from the last id given; allocPID skips those in flight
	if !q.Released && len(sess.inflight) >= s.cfg.MaxInflight {
		sess.queue = append(sess.queue, d) // beyond the window: never sent
		sess.queuedBytes += d.size()
		return
	}
	switch {
	case d.qos == 1:
		d.state = stateAwaitAck
	case q.Released:
		d.state = stateAwaitComp
	default:
		d.state = stateAwaitRec
	}
	if i := sess.inflightIndex(d.pid); i >= 0 {
		// The broker reuses a packet id only after the delivery that had it
		// was acknowledged, so the older record is one whose Dequeue was
		// lost to a failed write: finish it now.
		old := sess.inflight[i]
		sess.inflight = append(sess.inflight[:i], sess.inflight[i+1:]...)
		s.log.Warn("stored delivery superseded by a later one with its packet id: removed",
			"client", sess.id, "packet_id", d.pid, "seq", old.seq, "by_seq", d.seq)
		s.apply(nil, persist.Dequeue(sess.id, old.seq))
	}
	sess.inflight = append(sess.inflight, d)
}

// Serve accepts plain MQTT connections on ln until Shutdown, with the
// settings (allow_anonymous) of the first configured tcp listener, or the
// defaults. It returns ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	lc := ListenerConfig{Type: "tcp"}
	for _, l := range s.cfg.Listeners {
		if l.Type == "tcp" {
			lc = l
			break
		}
	}
	return s.serve(ln, lc)
}

func (s *Server) serve(ln net.Listener, lc ListenerConfig) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return ErrServerClosed
			}
			// EMFILE and the like: wait and go on rather than stop serving.
			s.log.Warn("accept failed", "listener", ln.Addr(), "err", err)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-s.ctx.Done():
				return ErrServerClosed
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		c := newConn(s, nc, lc.AllowAnonymous)
		if !s.track(c) {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// track registers a connection; false once the server is closing.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops the listeners, closes every connection (their wills are
// not published: the broker, not the clients, is going away), waits for
// their goroutines and closes the store after everything submitted to it
// is durable.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	for _, ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.shutdown()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if s.store != nil {
		if cerr := s.store.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// attach binds a connecting client to its session: the stored one when it
// asks for a persistent session and one exists, else a new one. An existing
// connection with the same client id is closed (MQTT-3.1.4-2). It returns
// the session, the generation of this attachment and whether a session was
// present (MQTT-3.2.2-1..3). The outlet is set by session.resume, after
// CONNACK has been written.
// trusted marks an in-process client that the ACL does not bind.
func (s *Server) attach(id string, clean bool, who clientIdentity, trusted bool) (*session, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.sessions[id]
	if old != nil {
		old.mu.Lock()
		if old.out != nil {
			old.out.kick()
		}
		old.gen++ // the old connection can no longer detach or resume
		old.mu.Unlock()
	}
	var sess *session
	present := false
	switch {
	case old != nil && !clean && old.persistent:
		sess, present = old, true
	default:
		if old != nil {
			s.discardLocked(old)
		}
		sess = newSession(s, id, !clean)
		s.sessions[id] = sess
		if !clean {
			s.apply(nil, persist.PutSession(persist.Session{ClientID: id}))
		}
	}
	sess.mu.Lock()
	sess.gen++
	gen := sess.gen
	sess.user = who
	sess.trusted = trusted
	sess.attached = true
	sess.mu.Unlock()
	return sess, gen, present
}

// attached reports whether a client with this id is connected now.
func (s *Server) attached(id string) bool {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.attached
}

// discardLocked forgets a session: its subscriptions, and its stored state.
// s.mu is held.
func (s *Server) discardLocked(sess *session) {
	sess.mu.Lock()
	for f := range sess.subs {
		s.subs.Unsubscribe(f, sess)
	}
	clear(sess.subs)
	sess.mu.Unlock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	if sess.persistent {
		s.apply(nil, persist.DeleteSession(sess.id))
	}
}

// release ends an attachment: a clean session goes away with its
// connection, a persistent one stays.
func (s *Server) release(sess *session, gen uint64) {
	if !sess.detach(gen) {
		return
	}
	if !sess.persistent {
		s.mu.Lock()
		s.discardLocked(sess)
		s.mu.Unlock()
	}
}

// maxPersistentClientID is the longest client id a persistent session may
// have: the store keys sessions by client id, and its keys are limited. A
// longer id is rejected at CONNECT (MQTT-3.1.3-9) rather than accepted for
// a session every store write of which would fail, and with it the
// acknowledgement of every QoS 1/2 message published to its subscriptions.
const maxPersistentClientID = bbolt.MaxKeySize

// assignClientID makes up an id for a client that sent an empty one with
// clean session 1 (MQTT-3.1.3-6).
func assignClientID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "auto-" + hex.EncodeToString(b[:])
}
