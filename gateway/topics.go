package gateway

// topicTable is one client's normal topic ids (specification §7.3: a table
// per client, so that a wrong id from one client cannot reach another's
// topic). Ids run 1..0xFFFE; 0x0000 and 0xFFFF are reserved.
type topicTable struct {
	byName map[string]uint16
	byID   map[uint16]string
	next   uint16
	max    int

	gen  uint64    // counts changes, for persist.go
	disk diskState // what the stored record of a persistent session says
}

func newTopicTable(max int) *topicTable {
	return &topicTable{byName: map[string]uint16{}, byID: map[uint16]string{}, max: max}
}

// idFor returns name's id, assigning the next free one if it has none; false
// when the table is full.
func (t *topicTable) idFor(name string) (uint16, bool) {
	if id, ok := t.byName[name]; ok {
		return id, true
	}
	if len(t.byID) >= t.max {
		return 0, false
	}
	for {
		t.next++
		if t.next == 0 || t.next == 0xFFFF {
			t.next = 1
		}
		if _, used := t.byID[t.next]; !used {
			break
		}
	}
	t.byName[name] = t.next
	t.byID[t.next] = name
	t.gen++
	return t.next, true
}

func (t *topicTable) name(id uint16) (string, bool) {
	name, ok := t.byID[id]
	return name, ok
}

func (t *topicTable) idOf(name string) (uint16, bool) {
	id, ok := t.byName[name]
	return id, ok
}

func (t *topicTable) forget(id uint16) {
	if name, ok := t.byID[id]; ok {
		delete(t.byID, id)
		delete(t.byName, name)
		t.gen++
	}
}
