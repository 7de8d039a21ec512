package packets

import (
	"bytes"
	"errors"
	"testing"
)

// ruleTable holds, per normative statement of MQTT 3.1.1, wire examples
// that break it (kind set) or that it allows (kind nil). The MQTT_* tests
// below run the rows of their rule; rows are also fuzz seeds.
var ruleTable = []struct {
	rule, name, wire string
	kind             error
	detail           string
}{
	{"2.2.2-1", "CONNECT flags 0001", "11 0C 0004 4D515454 04 02 003C 0000", ErrProtocol, "fixed-header flags 0001, must be 0000"},
	{"2.2.2-1", "CONNACK flags 1000", "28 02 0000", ErrProtocol, "fixed-header flags 1000, must be 0000"},
	{"2.2.2-1", "PUBACK flags 0010", "42 02 0001", ErrProtocol, "fixed-header flags 0010"},
	{"2.2.2-1", "PUBREC flags 0001", "51 02 0001", ErrProtocol, "fixed-header flags 0001"},
	{"2.2.2-1", "PUBCOMP flags 1111", "7F 02 0001", ErrProtocol, "fixed-header flags 1111"},
	{"2.2.2-1", "SUBACK flags 0010", "92 03 0001 00", ErrProtocol, "fixed-header flags 0010"},
	{"2.2.2-1", "UNSUBACK flags 0100", "B4 02 0001", ErrProtocol, "fixed-header flags 0100"},
	{"2.2.2-1", "PINGREQ flags 0010", "C2 00", ErrProtocol, "fixed-header flags 0010"},
	{"2.2.2-1", "PINGRESP flags 1000", "D8 00", ErrProtocol, "fixed-header flags 1000"},

	{"3.6.1-1", "PUBREL flags 0000", "60 02 0001", ErrProtocol, "fixed-header flags 0000, must be 0010"},
	{"3.6.1-1", "PUBREL flags 0011", "63 02 0001", ErrProtocol, "must be 0010"},
	{"3.6.1-1", "PUBREL flags 1010", "6A 02 0001", ErrProtocol, "must be 0010"},
	{"3.6.1-1", "PUBREL flags 0010", "62 02 0001", nil, ""},

	{"3.8.1-1", "SUBSCRIBE flags 0000", "80 06 0001 0001 23 00", ErrProtocol, "fixed-header flags 0000, must be 0010"},
	{"3.8.1-1", "SUBSCRIBE flags 0011", "83 06 0001 0001 23 00", ErrProtocol, "must be 0010"},
	{"3.8.1-1", "SUBSCRIBE flags 0010", "82 06 0001 0001 23 00", nil, ""},

	{"3.10.1-1", "UNSUBSCRIBE flags 0000", "A0 05 0001 0001 23", ErrProtocol, "fixed-header flags 0000, must be 0010"},
	{"3.10.1-1", "UNSUBSCRIBE flags 0110", "A6 05 0001 0001 23", ErrProtocol, "must be 0010"},
	{"3.10.1-1", "UNSUBSCRIBE flags 0010", "A2 05 0001 0001 23", nil, ""},

	{"3.14.1-1", "DISCONNECT flags 0001", "E1 00", ErrProtocol, "fixed-header flags 0001, must be 0000"},
	{"3.14.1-1", "DISCONNECT flags 0010", "E2 00", ErrProtocol, "must be 0000"},
	{"3.14.1-1", "DISCONNECT flags 1000", "E8 00", ErrProtocol, "must be 0000"},
	{"3.14.1-1", "DISCONNECT flags 0000", "E0 00", nil, ""},

	{"3.3.1-4", "PUBLISH QoS 3", "36 07 0003 612F62 0001", ErrProtocol, "QoS bits 11"},
	{"3.3.1-4", "PUBLISH QoS 3 dup retain", "3F 07 0003 612F62 0001", ErrProtocol, "QoS bits 11"},

	{"3.3.1-2", "PUBLISH dup QoS 0", "38 05 0003 612F62", ErrProtocol, "DUP set on a QoS 0 message"},
	{"3.3.1-2", "PUBLISH dup QoS 0 retain", "39 05 0003 612F62", ErrProtocol, "DUP set on a QoS 0 message"},
	{"3.3.1-2", "PUBLISH dup QoS 1", "3A 07 0003 612F62 0001", nil, ""},
	{"3.3.1-2", "PUBLISH dup QoS 2", "3C 07 0003 612F62 0001", nil, ""},

	{"3.1.2-1", "name MQTX", "10 0C 0004 4D515458 04 02 003C 0000", ErrBadProtocolName, `protocol name "MQTX"`},
	{"3.1.2-1", "name mqtt", "10 0C 0004 6D717474 04 02 003C 0000", ErrBadProtocolName, `protocol name "mqtt"`},
	{"3.1.2-1", "empty name", "10 08 0000 04 02 003C 0000", ErrBadProtocolName, `protocol name ""`},
	{"3.1.2-1", "name not UTF-8", "10 0A 0002 FFFE 04 02 003C 0000", ErrBadProtocolName, `protocol name "\xff\xfe"`},
	{"3.1.2-1", "name MQIsdp", "10 0E 0006 4D5149736470 03 02 003C 0000", nil, ""},

	{"3.1.2-2", "MQTT level 5 (MQTT 5 CONNECT)", "10 0D 0004 4D515454 05 02 003C 00 0000", ErrUnsupportedLevel, "protocol level 5 for MQTT"},
	{"3.1.2-2", "MQTT level 3", "10 0C 0004 4D515454 03 02 003C 0000", ErrUnsupportedLevel, "protocol level 3 for MQTT"},
	{"3.1.2-2", "MQTT level 0", "10 0C 0004 4D515454 00 02 003C 0000", ErrUnsupportedLevel, "protocol level 0 for MQTT"},
	{"3.1.2-2", "MQIsdp level 4", "10 0E 0006 4D5149736470 04 02 003C 0000", ErrUnsupportedLevel, "protocol level 4 for MQIsdp"},
	{"3.1.2-2", "level 5, nothing after it", "10 07 0004 4D515454 05", ErrUnsupportedLevel, "protocol level 5"},
	{"3.1.2-2", "level 255 checked before the flags", "10 0C 0004 4D515454 FF 03 003C 0000", ErrUnsupportedLevel, "protocol level 255"},

	{"3.1.2-3", "connect flags 03", "10 0C 0004 4D515454 04 03 003C 0000", ErrMalformed, "reserved connect flag (bit 0) set"},
	{"3.1.2-3", "connect flags 01", "10 0C 0004 4D515454 04 01 003C 0000", ErrMalformed, "reserved connect flag"},
	{"3.1.2-3", "connect flags FF", "10 0C 0004 4D515454 04 FF 003C 0000", ErrMalformed, "reserved connect flag"},

	{"3.1.2-11", "will QoS 1 without will", "10 0C 0004 4D515454 04 0A 003C 0000", ErrMalformed, "will QoS 1 without the will flag"},
	{"3.1.2-11", "will fields without will", "10 14 0004 4D515454 04 02 003C 0000 0003 612F62 0001 78", ErrMalformed, "8 trailing bytes after the payload"},
	{"3.1.2-11", "will fields with will", "10 14 0004 4D515454 04 06 003C 0000 0003 612F62 0001 78", nil, ""},

	{"3.1.2-13", "will QoS 2 without will", "10 0C 0004 4D515454 04 12 003C 0000", ErrMalformed, "will QoS 2 without the will flag"},
	{"3.1.2-13", "will QoS 3 without will", "10 0C 0004 4D515454 04 1A 003C 0000", ErrMalformed, "will QoS 3 without the will flag"},
	{"3.1.2-13", "will QoS 2 with will", "10 14 0004 4D515454 04 16 003C 0000 0003 612F62 0001 78", nil, ""},

	{"3.1.2-14", "will QoS 3", "10 14 0004 4D515454 04 1E 003C 0000 0003 612F62 0001 78", ErrMalformed, "will QoS 3"},

	{"3.1.2-15", "will retain without will", "10 0C 0004 4D515454 04 22 003C 0000", ErrMalformed, "will retain without the will flag"},
	{"3.1.2-15", "will retain with will", "10 14 0004 4D515454 04 26 003C 0000 0003 612F62 0001 78", nil, ""},

	{"3.1.2-22", "password without user name", "10 10 0004 4D515454 04 42 003C 0000 0002 0102", ErrMalformed, "password flag without the user name flag"},
	{"3.1.2-22", "user name without password", "10 0F 0004 4D515454 04 82 003C 0000 0001 75", nil, ""},

	{"3.1.3-1", "no client identifier", "10 0A 0004 4D515454 04 02 003C", ErrMalformed, "client identifier length"},
	{"3.1.3-1", "will flag, no will topic", "10 0C 0004 4D515454 04 06 003C 0000", ErrMalformed, "will topic length"},
	{"3.1.3-1", "will flag, no will message", "10 11 0004 4D515454 04 06 003C 0000 0003 612F62", ErrMalformed, "will message length"},
	{"3.1.3-1", "user name flag, no user name", "10 0C 0004 4D515454 04 82 003C 0000", ErrMalformed, "user name length"},
	{"3.1.3-1", "password flag, no password", "10 0F 0004 4D515454 04 C2 003C 0000 0001 75", ErrMalformed, "password length"},
	{"3.1.3-1", "user name without its flag", "10 0F 0004 4D515454 04 02 003C 0000 0001 75", ErrMalformed, "3 trailing bytes after the payload"},

	{"3.1.3-6", "empty client identifier, clean session", "10 0C 0004 4D515454 04 02 003C 0000", nil, ""},
	{"3.1.3-6", "empty client identifier, persistent session", "10 0C 0004 4D515454 04 00 003C 0000", nil, ""},

	{"1.5.3-1", "client identifier not UTF-8", "10 0E 0004 4D515454 04 02 003C 0002 C328", ErrMalformed, "client identifier: not well-formed UTF-8"},
	{"1.5.3-1", "client identifier with a surrogate", "10 0F 0004 4D515454 04 02 003C 0003 EDA080", ErrMalformed, "client identifier: not well-formed UTF-8"},
	{"1.5.3-1", "user name not UTF-8", "10 0F 0004 4D515454 04 82 003C 0000 0001 FF", ErrMalformed, "user name: not well-formed UTF-8"},
	{"1.5.3-1", "will topic not UTF-8", "10 11 0004 4D515454 04 06 003C 0000 0001 FF 0000", ErrMalformed, "will topic: not well-formed UTF-8"},
	{"1.5.3-1", "topic name not UTF-8", "30 05 0003 61FF62", ErrMalformed, "topic name: not well-formed UTF-8"},
	{"1.5.3-1", "topic name overlong '/'", "30 04 0002 C0AF", ErrMalformed, "topic name: not well-formed UTF-8"},
	{"1.5.3-1", "subscribe filter not UTF-8", "82 06 0001 0001 FF 00", ErrMalformed, "topic filter: not well-formed UTF-8"},
	{"1.5.3-1", "unsubscribe filter not UTF-8", "A2 05 0001 0001 FF", ErrMalformed, "topic filter: not well-formed UTF-8"},
	{"1.5.3-1", "password is binary", "10 13 0004 4D515454 04 C2 003C 0000 0001 75 0002 FFFE", nil, ""},
	{"1.5.3-1", "will message is binary", "10 12 0004 4D515454 04 06 003C 0000 0001 74 0001 FF", nil, ""},

	{"1.5.3-2", "client identifier with U+0000", "10 0E 0004 4D515454 04 02 003C 0002 6100", ErrMalformed, "client identifier: contains U+0000"},
	{"1.5.3-2", "user name with U+0000", "10 0F 0004 4D515454 04 82 003C 0000 0001 00", ErrMalformed, "user name: contains U+0000"},
	{"1.5.3-2", "will topic with U+0000", "10 11 0004 4D515454 04 06 003C 0000 0001 00 0000", ErrMalformed, "will topic: contains U+0000"},
	{"1.5.3-2", "topic name with U+0000", "30 05 0003 610062", ErrMalformed, "topic name: contains U+0000"},
	{"1.5.3-2", "subscribe filter with U+0000", "82 06 0001 0001 00 00", ErrMalformed, "topic filter: contains U+0000"},
	{"1.5.3-2", "unsubscribe filter with U+0000", "A2 05 0001 0001 00", ErrMalformed, "topic filter: contains U+0000"},
	{"1.5.3-2", "password with 00 bytes", "10 12 0004 4D515454 04 C2 003C 0000 0000 0002 0000", nil, ""},

	{"1.5.3-3", "topic name with BOM", "30 06 0004 EFBBBF61", nil, ""},
	{"1.5.3-3", "client identifier with BOM", "10 0F 0004 4D515454 04 02 003C 0003 EFBBBF", nil, ""},
	{"1.5.3-3", "filter with BOM", "82 08 0001 0003 EFBBBF 00", nil, ""},

	{"3.3.2-2", "topic a/+", "30 05 0003 612F2B", ErrMalformed, "topic name: a topic name may not contain + or #"},
	{"3.3.2-2", "topic #", "30 03 0001 23", ErrMalformed, "topic name: a topic name may not contain"},
	{"3.3.2-2", "topic a#", "30 04 0002 6123", ErrMalformed, "topic name: a topic name may not contain"},
	{"3.3.2-2", "topic +/+ QoS 1", "32 07 0003 2B2F2B 0001", ErrMalformed, "topic name: a topic name may not contain"},

	{"4.7.1-1", "will topic a/#", "10 13 0004 4D515454 04 06 003C 0000 0003 612F23 0000", ErrMalformed, "will topic: a topic name may not contain"},
	{"4.7.1-1", "will topic a/+", "10 13 0004 4D515454 04 06 003C 0000 0003 612F2B 0000", ErrMalformed, "will topic: a topic name may not contain"},

	{"4.7.1-2", "filter a/#/b", "82 0A 0001 0005 612F232F62 00", ErrMalformed, "topic filter: + and # must fill a whole level"},
	{"4.7.1-2", "filter a#", "82 07 0001 0002 6123 00", ErrMalformed, "topic filter: + and # must fill"},
	{"4.7.1-2", "filter #/", "82 07 0001 0002 232F 00", ErrMalformed, "topic filter: + and # must fill"},
	{"4.7.1-2", "unsubscribe filter a#", "A2 06 0001 0002 6123", ErrMalformed, "topic filter: + and # must fill"},
	{"4.7.1-2", "filter a/#", "82 08 0001 0003 612F23 00", nil, ""},
	{"4.7.1-2", "filter #", "82 06 0001 0001 23 01", nil, ""},

	{"4.7.1-3", "filter a+/b", "82 09 0001 0004 612B2F62 00", ErrMalformed, "topic filter: + and # must fill"},
	{"4.7.1-3", "filter +a", "82 07 0001 0002 2B61 00", ErrMalformed, "topic filter: + and # must fill"},
	{"4.7.1-3", "unsubscribe filter a/b+", "A2 08 0001 0004 612F622B", ErrMalformed, "topic filter: + and # must fill"},
	{"4.7.1-3", "filter +/tennis/#", "82 0F 0001 000A 2B2F74656E6E69732F23 01", nil, ""},
	{"4.7.1-3", "filter /+", "82 07 0001 0002 2F2B 00", nil, ""},

	{"4.7.3-1", "empty topic name", "30 02 0000", ErrMalformed, "topic name: empty"},
	{"4.7.3-1", "empty topic name QoS 1", "32 04 0000 0001", ErrMalformed, "topic name: empty"},
	{"4.7.3-1", "empty will topic", "10 10 0004 4D515454 04 06 003C 0000 0000 0000", ErrMalformed, "will topic: empty"},
	{"4.7.3-1", "empty subscribe filter", "82 05 0001 0000 00", ErrMalformed, "topic filter: empty"},
	{"4.7.3-1", "empty unsubscribe filter", "A2 04 0001 0000", ErrMalformed, "topic filter: empty"},

	{"2.3.1-1", "PUBLISH QoS 1 id 0", "32 07 0003 612F62 0000", ErrMalformed, "packet identifier 0"},
	{"2.3.1-1", "PUBLISH QoS 2 id 0", "34 07 0003 612F62 0000", ErrMalformed, "packet identifier 0"},
	{"2.3.1-1", "SUBSCRIBE id 0", "82 06 0000 0001 23 00", ErrMalformed, "packet identifier 0"},
	{"2.3.1-1", "UNSUBSCRIBE id 0", "A2 05 0000 0001 23", ErrMalformed, "packet identifier 0"},
	{"2.3.1-1", "PUBLISH QoS 0 has no id", "30 05 0003 612F62", nil, ""},

	{"3.8.3-3", "SUBSCRIBE without filters", "82 02 0001", ErrMalformed, "no topic filter"},

	{"3-8.3-4", "requested QoS 3", "82 06 0001 0001 23 03", ErrMalformed, "requested QoS byte 0x03"},
	{"3-8.3-4", "requested QoS reserved bit 2", "82 06 0001 0001 23 04", ErrMalformed, "requested QoS byte 0x04"},
	{"3-8.3-4", "requested QoS reserved bit 7", "82 06 0001 0001 23 80", ErrMalformed, "requested QoS byte 0x80"},
	{"3-8.3-4", "requested QoS 1 with reserved bit 6", "82 06 0001 0001 23 41", ErrMalformed, "requested QoS byte 0x41"},
	{"3-8.3-4", "second filter requested QoS FD", "82 0A 0001 0001 23 00 0001 24 FD", ErrMalformed, "requested QoS byte 0xFD"},
	{"3-8.3-4", "requested QoS 2", "82 06 0001 0001 23 02", nil, ""},

	{"3.10.3-2", "UNSUBSCRIBE without filters", "A2 02 0001", ErrMalformed, "no topic filter"},

	{"3.9.3-2", "SUBACK code 03", "90 03 0001 03", ErrMalformed, "return code 0x03"},
	{"3.9.3-2", "SUBACK code 81", "90 03 0001 81", ErrMalformed, "return code 0x81"},
	{"3.9.3-2", "SUBACK second code FF", "90 04 0001 00 FF", ErrMalformed, "return code 0xFF"},
	{"3.9.3-2", "SUBACK code 80", "90 03 0001 80", nil, ""},

	{"3.2.2-4", "session present with code 1", "20 02 01 01", ErrProtocol, "session present with return code 1"},
	{"3.2.2-4", "no session with code 1", "20 02 00 01", nil, ""},

	{"3.2.2.1", "CONNACK flags 02", "20 02 02 00", ErrMalformed, "acknowledge flags 0x02: bits 7-1 are reserved"},
	{"3.2.2.1", "CONNACK flags 80", "20 02 80 00", ErrMalformed, "acknowledge flags 0x80"},
	{"3.2.2.1", "CONNACK flags FF", "20 02 FF 00", ErrMalformed, "acknowledge flags 0xFF"},
}

// runRule runs the ruleTable rows of rule.
func runRule(t *testing.T, rule string) {
	t.Helper()
	n := 0
	for _, tt := range ruleTable {
		if tt.rule != rule {
			continue
		}
		n++
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			if tt.kind != nil {
				checkDecodeError(t, wire, tt.kind, tt.detail)
				return
			}
			p, err := decodeWire(t, wire)
			if err != nil {
				t.Fatalf("Decode(% X): %v", wire, err)
			}
			if got := p.Append(nil); !bytes.Equal(got, wire) {
				t.Fatalf("Decode(% X) = %s; Append = % X", wire, dump(p), got)
			}
		})
	}
	if n == 0 {
		t.Fatalf("no examples of MQTT-%s", rule)
	}
}

func TestMQTT_2_2_2_1_ReservedFlags(t *testing.T)          { runRule(t, "2.2.2-1") }
func TestMQTT_3_6_1_1_PubrelFlags(t *testing.T)            { runRule(t, "3.6.1-1") }
func TestMQTT_3_8_1_1_SubscribeFlags(t *testing.T)         { runRule(t, "3.8.1-1") }
func TestMQTT_3_10_1_1_UnsubscribeFlags(t *testing.T)      { runRule(t, "3.10.1-1") }
func TestMQTT_3_14_1_1_DisconnectFlags(t *testing.T)       { runRule(t, "3.14.1-1") }
func TestMQTT_3_3_1_4_PublishQoS3(t *testing.T)            { runRule(t, "3.3.1-4") }
func TestMQTT_3_3_1_2_DupWithQoS0(t *testing.T)            { runRule(t, "3.3.1-2") }
func TestMQTT_3_1_2_1_ProtocolName(t *testing.T)           { runRule(t, "3.1.2-1") }
func TestMQTT_3_1_2_2_ProtocolLevel(t *testing.T)          { runRule(t, "3.1.2-2") }
func TestMQTT_3_1_2_3_ReservedConnectFlag(t *testing.T)    { runRule(t, "3.1.2-3") }
func TestMQTT_3_1_2_11_WillFlagClear(t *testing.T)         { runRule(t, "3.1.2-11") }
func TestMQTT_3_1_2_13_WillQoSWithoutWill(t *testing.T)    { runRule(t, "3.1.2-13") }
func TestMQTT_3_1_2_14_WillQoS3(t *testing.T)              { runRule(t, "3.1.2-14") }
func TestMQTT_3_1_2_15_WillRetainWithoutWill(t *testing.T) { runRule(t, "3.1.2-15") }
func TestMQTT_3_1_2_22_PasswordWithoutUser(t *testing.T)   { runRule(t, "3.1.2-22") }
func TestMQTT_3_1_3_1_PayloadFieldsPerFlags(t *testing.T)  { runRule(t, "3.1.3-1") }
func TestMQTT_3_1_3_6_EmptyClientIDIsTheBrokers(t *testing.T) {
	runRule(t, "3.1.3-6")
}
func TestMQTT_1_5_3_1_WellFormedUTF8(t *testing.T)          { runRule(t, "1.5.3-1") }
func TestMQTT_1_5_3_2_NoNUL(t *testing.T)                   { runRule(t, "1.5.3-2") }
func TestMQTT_3_3_2_2_PublishTopicNoWildcards(t *testing.T) { runRule(t, "3.3.2-2") }
func TestMQTT_4_7_1_1_NoWildcardsInNames(t *testing.T)      { runRule(t, "4.7.1-1") }
func TestMQTT_4_7_1_2_MultiLevelWildcard(t *testing.T)      { runRule(t, "4.7.1-2") }
func TestMQTT_4_7_1_3_SingleLevelWildcard(t *testing.T)     { runRule(t, "4.7.1-3") }
func TestMQTT_4_7_3_1_TopicsNotEmpty(t *testing.T)          { runRule(t, "4.7.3-1") }
func TestMQTT_2_3_1_1_NonZeroPacketID(t *testing.T)         { runRule(t, "2.3.1-1") }
func TestMQTT_3_8_3_3_SubscribeNeedsFilter(t *testing.T)    { runRule(t, "3.8.3-3") }

// The standard prints this rule's id as "MQTT-3-8.3-4".
func TestMQTT_3_8_3_4_RequestedQoS(t *testing.T)                { runRule(t, "3-8.3-4") }
func TestMQTT_3_10_3_2_UnsubscribeNeedsFilter(t *testing.T)     { runRule(t, "3.10.3-2") }
func TestMQTT_3_9_3_2_SubackReturnCodes(t *testing.T)           { runRule(t, "3.9.3-2") }
func TestMQTT_3_2_2_4_SessionPresentOnlyOnSuccess(t *testing.T) { runRule(t, "3.2.2-4") }

// §3.2.2.1: CONNACK acknowledge flags bits 7-1 are reserved (no rule id).
func TestConnackReservedFlags(t *testing.T) { runRule(t, "3.2.2.1") }

// TestMQTT_1_5_3_3_BOMKept: a U+FEFF must not be skipped or stripped.
func TestMQTT_1_5_3_3_BOMKept(t *testing.T) {
	runRule(t, "1.5.3-3")
	p, err := decodeWire(t, unhex(t, "30 06 0004 EFBBBF61"))
	if err != nil || string(p.(*PublishPacket).Topic) != "\uFEFFa" {
		t.Fatalf("topic with BOM decoded as %s, %v", dump(p), err)
	}
	p, err = decodeWire(t, unhex(t, "10 0F 0004 4D515454 04 02 003C 0003 EFBBBF"))
	if err != nil || p.(*ConnectPacket).ClientID != "\uFEFF" {
		t.Fatalf("client identifier BOM decoded as %s, %v", dump(p), err)
	}
}

// TestMQTT_2_2_2_2_InvalidFlagsExhaustive decodes a valid body of every type
// under all 16 flag values: exactly the flags of §2.2.2 table 2.2 (and, for
// PUBLISH, MQTT-3.3.1-2 and -4) are accepted, anything else is ErrProtocol.
func TestMQTT_2_2_2_2_InvalidFlagsExhaustive(t *testing.T) {
	bodies := map[Type]string{
		TypeConnect:     "0004 4D515454 04 02 003C 0000",
		TypeConnack:     "00 00",
		TypePublish:     "0003 612F62 000A 6869", // valid at every QoS
		TypePuback:      "0001",
		TypePubrec:      "0001",
		TypePubrel:      "0001",
		TypePubcomp:     "0001",
		TypeSubscribe:   "0001 0001 23 00",
		TypeSuback:      "0001 00",
		TypeUnsubscribe: "0001 0001 23",
		TypeUnsuback:    "0001",
		TypePingreq:     "",
		TypePingresp:    "",
		TypeDisconnect:  "",
	}
	for typ := TypeConnect; typ <= TypeDisconnect; typ++ {
		body := unhex(t, bodies[typ])
		for flags := byte(0); flags < 16; flags++ {
			var valid bool
			switch typ {
			case TypePublish:
				qos := flags >> 1 & 3
				valid = qos != 3 && !(flags&8 != 0 && qos == 0)
			case TypePubrel, TypeSubscribe, TypeUnsubscribe:
				valid = flags == 2
			default:
				valid = flags == 0
			}
			_, err := Decode(FixedHeader{Type: typ, Flags: flags, Remaining: len(body)}, body)
			if valid && err != nil {
				t.Errorf("%v flags %04b: %v", typ, flags, err)
			}
			if !valid && !errors.Is(err, ErrProtocol) {
				t.Errorf("%v flags %04b: %v, want ErrProtocol", typ, flags, err)
			}
		}
	}
}
