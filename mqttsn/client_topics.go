package mqttsn

import (
	"strconv"
	"sync"
)

// Topic names a topic the way MQTT-SN can address it: by name (registered
// for a topic id as needed), by predefined id, or by a two-character short
// name.
type Topic struct {
	Type TopicIDType
	Name string // TopicNormal: the name or filter; TopicShort: the two characters
	ID   uint16 // TopicPredefined: the id
}

// TopicName addresses a topic by its name (or, to Subscribe, a filter).
func TopicName(name string) Topic { return Topic{Type: TopicNormal, Name: name} }

// PredefinedTopic addresses a topic by an id both ends know in advance.
func PredefinedTopic(id uint16) Topic { return Topic{Type: TopicPredefined, ID: id} }

// ShortTopic addresses a topic by a two-character short name.
func ShortTopic(name string) Topic { return Topic{Type: TopicShort, Name: name} }

func (t Topic) String() string {
	switch t.Type {
	case TopicPredefined:
		return "predefined id " + strconv.Itoa(int(t.ID))
	case TopicShort:
		return "short name " + t.Name
	}
	return t.Name
}

// id returns the value of the 2-byte id field for a predefined or short
// topic.
func (t Topic) id() (uint16, error) {
	switch t.Type {
	case TopicPredefined:
		return t.ID, nil
	case TopicShort:
		id, ok := ShortTopicID(t.Name)
		if !ok {
			return 0, &RejectedError{Op: "short topic " + t.Name, ReturnCode: RejectedInvalidID}
		}
		return id, nil
	}
	return 0, nil
}

// topicTable holds the client's view of its session's topic ids: those it
// registered, those the gateway registered or returned in SUBACK, and the
// predefined ones from the configuration.
type topicTable struct {
	mu         sync.Mutex
	byName     map[string]uint16
	byID       map[uint16]string
	predefined map[uint16]string
}

func newTopicTable(predefined map[uint16]string) topicTable {
	return topicTable{byName: map[string]uint16{}, byID: map[uint16]string{}, predefined: predefined}
}

func (t *topicTable) reset() {
	t.mu.Lock()
	clear(t.byName)
	clear(t.byID)
	t.mu.Unlock()
}

func (t *topicTable) add(name string, id uint16) {
	t.mu.Lock()
	if old, ok := t.byID[id]; ok {
		delete(t.byName, old)
	}
	t.byName[name] = id
	t.byID[id] = name
	t.mu.Unlock()
}

func (t *topicTable) idOf(name string) (uint16, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ok := t.byName[name]
	return id, ok
}

func (t *topicTable) forgetID(id uint16) {
	t.mu.Lock()
	if name, ok := t.byID[id]; ok {
		delete(t.byName, name)
		delete(t.byID, id)
	}
	t.mu.Unlock()
}

// name resolves the topic of an incoming PUBLISH. It reports false for a
// normal id the client does not know.
func (t *topicTable) name(typ TopicIDType, id uint16) (string, bool) {
	switch typ {
	case TopicShort:
		return ShortTopicName(id), true
	case TopicPredefined:
		return t.predefined[id], true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	name, ok := t.byID[id]
	return name, ok
}
