package upstream

import "sync"

// link is one connection's end: Lost and Err of the Client while it is the
// current one.
type link struct {
	lost chan struct{}
	mu   sync.Mutex
	err  error
	done bool
}

func newLink() *link { return &link{lost: make(chan struct{})} }

// endedLink is the link a Client has before its first connection.
func endedLink(err error) *link {
	l := newLink()
	l.end(err)
	return l
}

// end records why the connection ended and closes lost; only the first
// call counts.
func (l *link) end(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.done, l.err = true, err
	close(l.lost)
}

func (l *link) ended() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

// error is why the connection ended, nil while it is up.
func (l *link) error() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
