package upstream

import (
	"bytes"
	"net"
	"testing"

	p5 "github.com/eclipse/paho.golang/packets"
	p3 "github.com/eclipse/paho.mqtt.golang/packets"
)

// fakeBroker is a minimal MQTT server answering with chosen reason codes,
// for refusals mosquitto cannot be made to give cleanly (mosquitto 2.0.11
// grants subscriptions its ACL denies, and closes the connection right
// after a PUBACK 0x87).
type fakeBroker struct {
	proto  Protocol
	suback byte // reason code for every SUBSCRIBE filter
	puback byte // MQTT 5: reason code of PUBACK (QoS 1) and PUBREC (QoS 2)
	// greet, if set, gets a QoS 1 PUBLISH (packet identifier 1) written
	// with the CONNACK, in the same write, and is sent the identifiers of
	// the PUBACKs the server receives.
	greet chan uint16
}

// start serves connections until the test ends and returns the address.
func (f fakeBroker) start(t *testing.T) string {
	return serveTCP(t, func(c net.Conn) {
		defer c.Close()
		if f.proto == MQTT5 {
			f.serve5(c)
		} else {
			f.serve3(c)
		}
	})
}

func (f fakeBroker) serve5(c net.Conn) {
	for {
		in, err := p5.ReadPacket(c)
		if err != nil {
			return
		}
		var out *p5.ControlPacket
		switch p := in.Content.(type) {
		case *p5.Connect:
			out = p5.NewControlPacket(p5.CONNACK)
			if f.greet != nil {
				var buf bytes.Buffer
				_, _ = out.WriteTo(&buf)
				pub := p5.NewControlPacket(p5.PUBLISH)
				pub.Content = &p5.Publish{QoS: 1, PacketID: 1, Topic: "greet", Payload: []byte("hi"), Properties: &p5.Properties{}}
				_, _ = pub.WriteTo(&buf)
				if _, err := c.Write(buf.Bytes()); err != nil {
					return
				}
				out = nil
			}
		case *p5.Puback:
			if f.greet != nil {
				f.greet <- p.PacketID
			}
		case *p5.Subscribe:
			out = p5.NewControlPacket(p5.SUBACK)
			sa := out.Content.(*p5.Suback)
			sa.PacketID = p.PacketID
			for range p.Subscriptions {
				sa.Reasons = append(sa.Reasons, f.suback)
			}
		case *p5.Publish:
			switch p.QoS {
			case 1:
				out = p5.NewControlPacket(p5.PUBACK)
				out.Content.(*p5.Puback).PacketID = p.PacketID
				out.Content.(*p5.Puback).ReasonCode = f.puback
			case 2:
				out = p5.NewControlPacket(p5.PUBREC)
				out.Content.(*p5.Pubrec).PacketID = p.PacketID
				out.Content.(*p5.Pubrec).ReasonCode = f.puback
			}
		case *p5.Pubrel:
			out = p5.NewControlPacket(p5.PUBCOMP)
			out.Content.(*p5.Pubcomp).PacketID = p.PacketID
		case *p5.Pingreq:
			out = p5.NewControlPacket(p5.PINGRESP)
		case *p5.Disconnect:
			return
		}
		if out != nil {
			if _, err := out.WriteTo(c); err != nil {
				return
			}
		}
	}
}

func (f fakeBroker) serve3(c net.Conn) {
	for {
		in, err := p3.ReadPacket(c)
		if err != nil {
			return
		}
		var out p3.ControlPacket
		switch p := in.(type) {
		case *p3.ConnectPacket:
			out = p3.NewControlPacket(p3.Connack)
			if f.greet != nil {
				var buf bytes.Buffer
				_ = out.Write(&buf)
				pub := p3.NewControlPacket(p3.Publish).(*p3.PublishPacket)
				pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 1, "greet", []byte("hi")
				_ = pub.Write(&buf)
				if _, err := c.Write(buf.Bytes()); err != nil {
					return
				}
				out = nil
			}
		case *p3.PubackPacket:
			if f.greet != nil {
				f.greet <- p.MessageID
			}
		case *p3.SubscribePacket:
			sa := p3.NewControlPacket(p3.Suback).(*p3.SubackPacket)
			sa.MessageID = p.MessageID
			for range p.Topics {
				sa.ReturnCodes = append(sa.ReturnCodes, f.suback)
			}
			out = sa
		case *p3.PublishPacket:
			switch p.Qos {
			case 1:
				pa := p3.NewControlPacket(p3.Puback).(*p3.PubackPacket)
				pa.MessageID = p.MessageID
				out = pa
			case 2:
				pr := p3.NewControlPacket(p3.Pubrec).(*p3.PubrecPacket)
				pr.MessageID = p.MessageID
				out = pr
			}
		case *p3.PubrelPacket:
			pc := p3.NewControlPacket(p3.Pubcomp).(*p3.PubcompPacket)
			pc.MessageID = p.MessageID
			out = pc
		case *p3.PingreqPacket:
			out = p3.NewControlPacket(p3.Pingresp)
		case *p3.DisconnectPacket:
			return
		}
		if out != nil {
			if err := out.Write(c); err != nil {
				return
			}
		}
	}
}
