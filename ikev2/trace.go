package ikev2

import (
	"fmt"
	"strings"
)

// Message tracing for debug logs, one line per IKE message as `iked -dv`
// and charon's "parsed ... [ ... ]" / "generating ... [ ... ]" lines show
// them: exchange, message ID, request or response, and the payload types,
// the ones inside SK too. Nothing secret is described: no keys, nonces,
// KE values, AUTH data or identities, only types.

// MessageInfo describes one IKE message for a log line.
type MessageInfo struct {
	Exchange   ExchangeType
	MessageID  uint32
	Response   bool
	Initiator  bool // the I flag: sent by the original initiator
	SPIi, SPIr uint64
	// Payloads lists the payload types in order, notifies and deletes with
	// their type, e.g. "SA KE Nonce N(NAT_DETECTION_SOURCE_IP)"; the
	// content of an SK payload, when it could be decrypted, as
	// "SK{IDi AUTH SA TSi TSr}", else "SK"; a fragment as "SKF(1/3)".
	Payloads string
	// Err says why the message could not be parsed; the other fields are
	// then those that could.
	Err string
}

// Describe describes msg, an IKE message (without the non-ESP marker)
// that the session received (inbound) or sent. It changes nothing in the
// session: the SK payload of a message on one of the session's IKE SAs is
// decrypted on a copy, with the SA's inbound keys for an inbound message and
// its outbound keys for ours, only to list the payloads inside. An inbound
// message is described before [Session.Receive] sees it, an outbound one
// after [Session.Output]; one on an IKE SA the session no longer has is
// described without its SK content.
func (s *Session) Describe(msg []byte, inbound bool) MessageInfo {
	hdr, err := ParseHeader(msg)
	if err != nil {
		return MessageInfo{Err: err.Error()}
	}
	info := MessageInfo{
		Exchange:  hdr.Exchange,
		MessageID: hdr.MessageID,
		Response:  hdr.IsResponse(),
		Initiator: hdr.IsInitiator(),
		SPIi:      hdr.SPIi,
		SPIr:      hdr.SPIr,
	}
	buf := append([]byte(nil), msg...)
	m, err := ParseMessage(buf)
	if err != nil {
		info.Err = err.Error()
		return info
	}
	var b strings.Builder
	for i, p := range m.Payloads {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch p := p.(type) {
		case *EncryptedPayload:
			b.WriteString("SK")
			if inner := s.openSK(hdr, buf, p, inbound); inner != "" {
				b.WriteString("{" + inner + "}")
			}
		case *EncryptedFragmentPayload:
			fmt.Fprintf(&b, "SKF(%d/%d)", p.FragmentNumber, p.TotalFragments)
		default:
			b.WriteString(payloadName(p))
		}
	}
	info.Payloads = b.String()
	return info
}

// openSK decrypts sk, the SK payload of buf (a copy of the message), with
// the keys of the session's IKE SA it belongs to and lists its payloads;
// "" if there is no such SA or the payload does not open.
func (s *Session) openSK(hdr Header, buf []byte, sk *EncryptedPayload, inbound bool) string {
	sa := s.findSA(hdr)
	if sa == nil {
		return ""
	}
	c := sa.out
	if inbound {
		c = sa.in
	}
	if c == nil {
		return ""
	}
	plain, err := c.Open(buf, len(buf)-len(sk.Data))
	if err != nil {
		return ""
	}
	payloads, err := ParsePayloadChain(sk.NextPayload, plain)
	if err != nil {
		return ""
	}
	names := make([]string, len(payloads))
	for i, p := range payloads {
		names[i] = payloadName(p)
	}
	return strings.Join(names, " ")
}

// payloadName names a decoded payload for a trace: its type, and for a
// Notify or Delete what it notifies or deletes.
func payloadName(p Payload) string {
	switch p := p.(type) {
	case *NotifyPayload:
		return "N(" + p.NotifyType.String() + ")"
	case *DeletePayload:
		return "D(" + p.Protocol.String() + ")"
	}
	return p.Type().String()
}
