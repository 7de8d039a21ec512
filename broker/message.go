package broker

// Message is an application message as the broker routes it. Once
// published it is never changed: every delivery shares it.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool

	// from is the session of a NoLocal publisher, which does not get the
	// message back.
	from *session
}

// Delivery states of an outgoing QoS 1/2 message.
const (
	stateQueued    = iota // not sent yet
	stateAwaitAck         // QoS 1 sent, waiting for PUBACK
	stateAwaitRec         // QoS 2 sent, waiting for PUBREC
	stateReleasing        // QoS 2 PUBREC received, PUBREL waiting for the store
	stateAwaitComp        // QoS 2 released, waiting for PUBCOMP
)

// delivery is one message on its way to one session.
type delivery struct {
	msg    *Message
	qos    byte   // min(published QoS, granted QoS)
	retain bool   // the retain flag on the wire: set only for a new subscription's retained messages
	seq    uint64 // key in the store; 0 when the delivery is not persisted
	pid    uint16 // packet id, once sent at QoS > 0 (stored with the message when seq != 0)
	state  byte
}

func (d *delivery) size() int64 { return int64(len(d.msg.Payload)) }
