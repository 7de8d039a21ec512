package serial

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Port is a serial port that survives unplugging. See the package
// documentation for what Read and Write do during an outage.
type Port struct {
	cfg  Config // with defaults
	opts Options
	log  *slog.Logger

	rmu sync.Mutex // one Read at a time: the read deadline belongs to the descriptor
	wmu sync.Mutex // one Write at a time: the same for the write deadline

	mu       sync.Mutex
	cur      *conn         // nil while down and after Close
	state    State         // Up mirrors cur != nil
	reopened chan struct{} // closed at the next reopening, then replaced
	closed   bool
	done     chan struct{} // closed by Close
	wg       sync.WaitGroup
}

// Open opens the port cfg names and sets the line. A port that is not
// there fails now, with a message listing what is there: a gateway should
// refuse to start on a typo rather than retry it forever. Later losses are
// retried until Close.
//
// ctx bounds the opening only, like net.Dialer's: the Port lives until
// Close. A nil log discards.
func (o Options) Open(ctx context.Context, cfg Config, log *slog.Logger) (*Port, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("serial: invalid configuration: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("serial: opening %s: %w", cfg.target(), err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Port{
		cfg:      cfg.withDefaults(),
		opts:     o.withDefaults(),
		log:      log,
		reopened: make(chan struct{}),
		done:     make(chan struct{}),
	}
	c, err := p.dial()
	if err != nil {
		return nil, err
	}
	p.cur = c
	p.state = State{Up: true, Device: c.path, Since: time.Now()}
	log.Info("serial port open", "port", p.String(), "line", lineString(p.cfg))
	return p, nil
}

// dial finds the device (for a USB match, again each time: the adapter
// may come back under another ttyUSBn) and opens it.
func (p *Port) dial() (*conn, error) {
	path := p.cfg.Path
	if p.cfg.USB != nil {
		var err error
		if path, err = findUSB(p.opts.ListPorts, *p.cfg.USB); err != nil {
			return nil, err
		}
	}
	return openConn(path, p.cfg)
}

// target names the port from the configuration alone.
func (c Config) target() string {
	if c.USB != nil {
		return "USB " + c.USB.String()
	}
	return c.Path
}

// Read reads what the line has received: at least one byte, or (0, nil)
// after Options.ReadTimeout of silence. Across an outage it returns
// (0, nil) once and then blocks until the port is back; after Close it
// returns ErrClosed.
func (p *Port) Read(b []byte) (int, error) {
	p.rmu.Lock()
	defer p.rmu.Unlock()
	for {
		c, back, err := p.current()
		if err != nil {
			return 0, err
		}
		if c == nil {
			select {
			case <-back:
				continue
			case <-p.done:
				return 0, ErrClosed
			}
		}
		if len(b) == 0 {
			return 0, nil
		}
		err = c.f.SetReadDeadline(time.Now().Add(p.opts.ReadTimeout))
		n := 0
		if err == nil {
			n, err = c.f.Read(b)
		}
		switch {
		case n > 0:
			return n, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return 0, nil
		}
		// EOF is how a hung-up tty (unplugged adapter, dead pty master)
		// reads; any other error is as fatal to this descriptor.
		return 0, p.failed(c, fmt.Errorf("read: %w", err))
	}
}

// Write writes b whole, or fails: with ErrPortDown during an outage (at
// once) or when the port fails under it, with ErrWriteTimeout when the line
// does not take it within Options.WriteTimeout, with ErrClosed after Close.
// n says how much went out anyway.
func (p *Port) Write(b []byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	c, _, err := p.current()
	if err != nil {
		return 0, err
	}
	if c == nil {
		return 0, ErrPortDown
	}
	if p.opts.WriteTimeout > 0 {
		err = c.f.SetWriteDeadline(time.Now().Add(p.opts.WriteTimeout))
	}
	n := 0
	if err == nil {
		n, err = c.f.Write(b)
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return n, fmt.Errorf("%w after %v with %d of %d bytes sent (flow control holding the line?)",
			ErrWriteTimeout, p.opts.WriteTimeout, n, len(b))
	}
	if err := p.failed(c, fmt.Errorf("write: %w", err)); err != nil {
		return n, err
	}
	return n, fmt.Errorf("%w: %w", ErrPortDown, err)
}

// current is the open connection (nil while down), the channel closed at
// the next reopening, or ErrClosed.
func (p *Port) current() (*conn, <-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, ErrClosed
	}
	return p.cur, p.reopened, nil
}

// failed handles an I/O error on c: ErrClosed if Close caused it, else
// the port is lost (unless that is known already) and failed returns nil.
func (p *Port) failed(c *conn, cause error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.cur != c {
		return nil // already lost, by the other direction or an earlier call
	}
	p.cur = nil
	p.state.Up = false
	p.state.Since = time.Now()
	p.state.Outages++
	p.state.Attempts = 0
	p.state.LastError = cause
	// Logged under the lock so "lost" and "back" cannot swap places.
	p.log.Warn("serial port lost", "port", p.stringLocked(), "err", cause)
	p.wg.Add(1)
	go p.reopen(c)
	return nil
}

// State returns a snapshot of the port's state.
func (p *Port) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Reopened returns a channel that is closed when the port comes back after
// an outage. Each reopening closes the channel handed out before it and
// starts a new one, so a loop calling Reopened after each wake-up sees
// every reopening (several in a row as one). After Close the channel
// never closes.
func (p *Port) Reopened() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reopened
}

// Close closes the port and stops reopening it; Reads and Writes blocked
// on it return ErrClosed. It returns promptly, also during an outage.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	c := p.cur
	p.cur = nil
	p.state.Up = false
	close(p.done)
	p.mu.Unlock()
	var err error
	if c != nil {
		err = c.close()
	}
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("serial: closing %s: %w", p, err)
	}
	return nil
}

// String names the port: its path, or for a USB match the USB ids and the
// device they resolved to.
func (p *Port) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stringLocked()
}

func (p *Port) stringLocked() string {
	if p.cfg.USB == nil {
		return p.cfg.Path
	}
	if p.state.Device == "" {
		return "USB " + p.cfg.USB.String()
	}
	return p.state.Device + " (USB " + p.cfg.USB.String() + ")"
}
