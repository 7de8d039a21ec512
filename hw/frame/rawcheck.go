package frame

import "github.com/sngate/sngate/mqttsn"

// The raw framing has no start byte and no checksum, so the only way to tell a
// message boundary from a byte in the middle of a message is to ask whether
// the bytes there could be the header of a message. checkHeader is that test.
// It is deliberately limited to what a header can prove (Length form, a known
// MsgType, a size that type can have): field contents are left to
// mqttsn.Decode, so that the gateway can log why a well-framed but invalid
// message (say, a CONNECT from an MQTT-SN 2.0 client) was refused.

// headerState is the verdict on the bytes at a candidate message start.
type headerState uint8

const (
	headerNeedMore headerState = iota // too few bytes to judge yet
	headerBad                         // cannot be the start of a message
	headerOK                          // plausible; total is the message length
)

// sizeRule lists the sizes a message type's variable part (the bytes after
// the MsgType) may have: either any size from min up, or one of the small
// exact sizes whose bits are set in exact.
// The zero rule allows nothing: the rule of a reserved type.
type sizeRule struct {
	open  bool   // min and anything longer
	min   int    // with open
	exact uint16 // bit n set: exactly n bytes allowed
}

func atLeast(n int) sizeRule { return sizeRule{open: true, min: n} }

func exactly(ns ...int) sizeRule {
	var r sizeRule
	for _, n := range ns {
		r.exact |= 1 << n
	}
	return r
}

func (r sizeRule) allows(n int) bool {
	if r.open {
		return n >= r.min
	}
	return n >= 0 && n < 16 && r.exact&(1<<n) != 0
}

// sizeRules returns the rule for a message type (specification table 3 and
// §5.4, as the mqttsn codec reads them; the reserved codes are not known).
// A switch rather than a package-level table: there is no mutable state, and
// the compiler turns it into a jump table.
func sizeRules(t mqttsn.MsgType) sizeRule {
	switch t {
	case mqttsn.TypeAdvertise:
		return exactly(3) // GwId, Duration
	case mqttsn.TypeSearchGW:
		return exactly(1) // Radius
	case mqttsn.TypeGWInfo:
		return atLeast(1) // GwId, GwAdd when a client answers
	case mqttsn.TypeConnect:
		return atLeast(5) // Flags, ProtocolId, Duration, ClientId of 1 or more
	case mqttsn.TypeConnack:
		return exactly(1) // ReturnCode
	case mqttsn.TypeWillTopicResp, mqttsn.TypeWillMsgResp:
		return exactly(0, 1) // v1.1 had no ReturnCode
	case mqttsn.TypeWillTopicReq, mqttsn.TypeWillMsgReq, mqttsn.TypePingresp:
		return exactly(0)
	case mqttsn.TypeWillTopic, mqttsn.TypeWillMsg, mqttsn.TypeWillTopicUpd, mqttsn.TypeWillMsgUpd, mqttsn.TypePingreq:
		return atLeast(0) // empty forms exist; PINGREQ may carry a ClientId
	case mqttsn.TypeRegister, mqttsn.TypePublish:
		return atLeast(5)
	case mqttsn.TypeRegack, mqttsn.TypePuback:
		return exactly(5)
	case mqttsn.TypePubcomp, mqttsn.TypePubrec, mqttsn.TypePubrel, mqttsn.TypeUnsuback:
		return exactly(2) // MsgId
	case mqttsn.TypeSubscribe, mqttsn.TypeUnsubscribe:
		return atLeast(4) // Flags, MsgId, a topic name or id
	case mqttsn.TypeSuback:
		return exactly(6)
	case mqttsn.TypeDisconnect:
		return exactly(0, 2) // 2: sleep Duration
	}
	return sizeRule{}
}

// MaxRawLen is the longest message the raw framing can carry: an
// encapsulation header (1-byte Length, so at most 255 bytes) around a message
// with a 3-byte Length. A RawReader given a buffer this long never returns
// ErrTooLong, and noise that looks like the header of a long message is then
// always resolved by the next idle gap instead of by skipping.
const MaxRawLen = 255 + mqttsn.MaxMessageLen

// checkHeader judges whether p starts with an MQTT-SN message and, if so,
// returns its total length (for an encapsulated message: header plus inner
// message). It needs at most 4 bytes, or the encapsulation header plus 4, and
// never reads past len(p).
func checkHeader(p []byte) (int, headerState) {
	total, hdr, t, st := parseLength(p)
	if st != headerOK {
		return 0, st
	}
	if t == mqttsn.TypeEncapsulated {
		return checkEncapsulated(p, total, hdr)
	}
	if !sizeRules(t).allows(total - hdr) {
		return 0, headerBad
	}
	return total, headerOK
}

// parseLength reads the Length field (both forms) and the MsgType.
func parseLength(p []byte) (total, hdr int, t mqttsn.MsgType, st headerState) {
	if len(p) == 0 {
		return 0, 0, 0, headerNeedMore
	}
	switch p[0] {
	case 0x00:
		return 0, 0, 0, headerBad
	case 0x01:
		if len(p) < 3 {
			return 0, 0, 0, headerNeedMore
		}
		total = int(p[1])<<8 | int(p[2])
		if total < 4 {
			return 0, 0, 0, headerBad // shorter than its own header
		}
		if len(p) < 4 {
			return 0, 0, 0, headerNeedMore
		}
		return total, 4, mqttsn.MsgType(p[3]), headerOK
	default:
		if len(p) < 2 {
			return 0, 0, 0, headerNeedMore
		}
		return int(p[0]), 2, mqttsn.MsgType(p[1]), headerOK
	}
}

// checkEncapsulated handles the forwarder encapsulation (§1.7): its Length
// counts only its own header (1-byte form, at least Length, MsgType and
// Ctrl), and a complete, not itself encapsulated, message follows.
func checkEncapsulated(p []byte, hlen, hdr int) (int, headerState) {
	if hdr != 2 || hlen < 3 {
		return 0, headerBad
	}
	if len(p) <= hlen {
		return 0, headerNeedMore
	}
	inner, ihdr, t, st := parseLength(p[hlen:])
	if st != headerOK {
		return 0, st
	}
	if t == mqttsn.TypeEncapsulated || !sizeRules(t).allows(inner-ihdr) {
		return 0, headerBad
	}
	return hlen + inner, headerOK
}
