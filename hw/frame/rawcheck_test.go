package frame

import "testing"

// TestCheckHeader lists the verdicts of the sanity checks: which bytes can
// start a message, how long it is, and when more bytes are needed to say.
func TestCheckHeader(t *testing.T) {
	tests := []struct {
		name  string
		wire  string
		total int // 0 with need-more or bad
		state headerState
	}{
		{"empty", "", 0, headerNeedMore},
		{"one byte", "09", 0, headerNeedMore},
		{"length 0x00", "00", 0, headerBad},
		{"length 0x00 with a type", "00 0C", 0, headerBad},
		{"PUBLISH header only", "09 0C", 9, headerOK},
		{"PUBLISH too short", "06 0C", 0, headerBad},
		{"PUBLISH 7", "07 0C", 7, headerOK},
		{"PUBLISH 255", "FF 0C", 255, headerOK},
		{"reserved 0x03", "05 03", 0, headerBad},
		{"reserved 0x11", "05 11", 0, headerBad},
		{"reserved 0x19", "05 19", 0, headerBad},
		{"reserved 0x1E", "05 1E", 0, headerBad},
		{"reserved 0xFF", "05 FF", 0, headerBad},
		{"ADVERTISE 5", "05 00", 5, headerOK},
		{"ADVERTISE 6", "06 00", 0, headerBad},
		{"SEARCHGW 3", "03 01", 3, headerOK},
		{"SEARCHGW 2", "02 01", 0, headerBad},
		{"GWINFO 2", "02 02", 0, headerBad},
		{"GWINFO 9", "09 02", 9, headerOK},
		{"CONNECT 6", "06 04", 0, headerBad},
		{"CONNECT 7", "07 04", 7, headerOK},
		{"CONNACK 3", "03 05", 3, headerOK},
		{"CONNACK 4", "04 05", 0, headerBad},
		{"WILLTOPICREQ 2", "02 06", 2, headerOK},
		{"WILLTOPICREQ 3", "03 06", 0, headerBad},
		{"WILLTOPIC 2", "02 07", 2, headerOK},
		{"WILLMSGREQ 3", "03 08", 0, headerBad},
		{"WILLMSG 2", "02 09", 2, headerOK},
		{"REGISTER 6", "06 0A", 0, headerBad},
		{"REGISTER 7", "07 0A", 7, headerOK},
		{"REGACK 7", "07 0B", 7, headerOK},
		{"REGACK 8", "08 0B", 0, headerBad},
		{"PUBACK 6", "06 0D", 0, headerBad},
		{"PUBACK 7", "07 0D", 7, headerOK},
		{"PUBCOMP 4", "04 0E", 4, headerOK},
		{"PUBREC 5", "05 0F", 0, headerBad},
		{"PUBREL 4", "04 10", 4, headerOK},
		{"SUBSCRIBE 5", "05 12", 0, headerBad},
		{"SUBSCRIBE 6", "06 12", 6, headerOK},
		{"SUBACK 8", "08 13", 8, headerOK},
		{"SUBACK 7", "07 13", 0, headerBad},
		{"UNSUBSCRIBE 6", "06 14", 6, headerOK},
		{"UNSUBACK 4", "04 15", 4, headerOK},
		{"UNSUBACK 2", "02 15", 0, headerBad},
		{"PINGREQ 2", "02 16", 2, headerOK},
		{"PINGREQ with id", "19 16", 25, headerOK},
		{"PINGRESP 2", "02 17", 2, headerOK},
		{"PINGRESP 3", "03 17", 0, headerBad},
		{"DISCONNECT 2", "02 18", 2, headerOK},
		{"DISCONNECT 3", "03 18", 0, headerBad},
		{"DISCONNECT 4", "04 18", 4, headerOK},
		{"DISCONNECT 5", "05 18", 0, headerBad},
		{"WILLTOPICUPD 2", "02 1A", 2, headerOK},
		{"WILLTOPICRESP 2 (v1.1)", "02 1B", 2, headerOK},
		{"WILLTOPICRESP 3", "03 1B", 3, headerOK},
		{"WILLTOPICRESP 4", "04 1B", 0, headerBad},
		{"WILLMSGUPD 2", "02 1C", 2, headerOK},
		{"WILLMSGRESP 3", "03 1D", 3, headerOK},
		{"WILLMSGRESP 4", "04 1D", 0, headerBad},
		{"long form, 1 byte", "01", 0, headerNeedMore},
		{"long form, 2 bytes", "01 00", 0, headerNeedMore},
		{"long form below its header", "01 00 03", 0, headerBad},
		{"long form, no type yet", "01 00 04", 0, headerNeedMore},
		{"long form PINGRESP", "01 00 04 17", 4, headerOK},
		{"long form PINGRESP 5", "01 00 05 17", 0, headerBad},
		{"long form PUBACK 9", "01 00 09 0D", 9, headerOK},
		{"long form PUBLISH 65535", "01 FF FF 0C", 65535, headerOK},
		{"long form reserved", "01 00 10 03", 0, headerBad},
		{"encapsulated, no inner yet", "05 FE 00 00 01", 0, headerNeedMore},
		{"encapsulated, half an inner header", "05 FE 00 00 01 02", 0, headerNeedMore},
		{"encapsulated PINGREQ", "05 FE 00 00 01 02 16", 7, headerOK},
		{"encapsulated long inner", "05 FE 00 00 01 01 01 00 0C", 5 + 256, headerOK},
		{"encapsulated long inner, partial", "05 FE 00 00 01 01 01", 0, headerNeedMore},
		{"encapsulated bad inner", "05 FE 00 00 01 03 17", 0, headerBad},
		{"encapsulated inner length 0", "05 FE 00 00 01 00", 0, headerBad},
		{"encapsulated nested", "05 FE 00 00 01 05 FE", 0, headerBad},
		{"encapsulated header of 2", "02 FE 02 17", 0, headerBad},
		{"encapsulated header of 3", "03 FE 00 02 17", 5, headerOK},
		{"encapsulated long-form header", "01 00 05 FE 00 02 17", 0, headerBad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total, st := checkHeader(unhex(t, tt.wire))
			if total != tt.total || st != tt.state {
				t.Fatalf("checkHeader(%s) = %d, %d; want %d, %d", tt.wire, total, st, tt.total, tt.state)
			}
		})
	}
}
