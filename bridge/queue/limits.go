package queue

// fits reports whether a record of size sz can join a queue in state m
// without exceeding a limit.
func (q *Queue) fits(m meta, sz uint64) bool {
	return (q.opts.MaxMessages == 0 || m.count < uint64(q.opts.MaxMessages)) &&
		(q.opts.MaxBytes == 0 || m.bytes+sz <= uint64(q.opts.MaxBytes))
}

// dropHead deletes records from the head of the queue until enough(n, b)
// holds, n and b being the records and bytes dropped so far, or the queue is
// empty. It updates s.m (not saved) and returns n and b.
func dropHead(s *txState, enough func(n, b uint64) bool) (n, b uint64, err error) {
	c := s.recs.Cursor()
	for !enough(n, b) {
		k, v := c.First()
		if k == nil {
			// Only a corrupted file counts records that are not there.
			s.m.count, s.m.bytes = 0, 0
			break
		}
		sz := valueSize(v)
		// First again after each Delete: a bbolt cursor skips an element
		// when Next follows Delete.
		if err := c.Delete(); err != nil {
			return n, b, err
		}
		s.deleted(sz)
		n++
		b += sz
	}
	return n, b, nil
}
