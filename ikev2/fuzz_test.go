package ikev2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fuzzChunks splits fuzz input into (mode, datagram) pairs: each chunk is
// a mode octet, a 16-bit length and that many octets (fewer at the end).
func fuzzChunks(data []byte, fn func(mode byte, b []byte)) {
	for len(data) >= 3 {
		mode, n := data[0], int(binary.BigEndian.Uint16(data[1:]))
		data = data[3:]
		n = min(n, len(data))
		fn(mode, data[:n])
		data = data[n:]
	}
}

// fuzzChunk encodes one chunk for a seed.
func fuzzChunk(mode byte, b []byte) []byte {
	return append(binary.BigEndian.AppendUint16([]byte{mode}, uint16(len(b))), b...)
}

// FuzzResponderSession drives a whole responder Session: an IKE SA with
// the peer is established first, and a half-open IKE SA of an attacker
// who completed IKE_SA_INIT from the peer's address (so has keys, but not
// the PSK). Then arbitrary datagrams arrive: as they are, with the
// established IKE SA's SPIs, protected with the attacker's keys, or as
// IKE_SA_INIT requests, while time passes. Nothing unauthenticated may
// change the established IKE SA (its SPIs, keys, peer endpoint, Child SA),
// emit an event about it, or stop it from answering the peer.
func FuzzResponderSession(f *testing.F) {
	ca, cb := fuzzConfigs()
	p := newPair(f, ca, cb)
	p.start()
	p.run(time.Minute, p.bothUp)
	for _, d := range append(append([]Datagram(nil), p.sentA...), p.sentB...) {
		for mode := range byte(4) {
			f.Add(fuzzChunk(mode, d.Data))
		}
	}
	for _, ps := range [][]Payload{
		{&DeletePayload{Protocol: ProtocolIKE}},
		{&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{1, 0x12345678}}},
		{&NotifyPayload{NotifyType: NotifyAuthenticationFailed}},
		{&NotifyPayload{NotifyType: NotifyInitialContact}, &IDPayload{Identity: IdentityAddr(addrA)}, &AuthPayload{Method: AuthSharedKeyMIC, Data: make([]byte, 48)}},
	} {
		inner := EncodePayloadChain(nil, ps)
		f.Add(fuzzChunk(2, append([]byte{byte(ExchangeInformational), 1, byte(ps[0].Type())}, inner...)))
		f.Add(fuzzChunk(2, append([]byte{byte(ExchangeIKEAuth), 1, byte(ps[0].Type())}, inner...)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ca, cb := fuzzConfigs()
		p := newPair(t, ca, cb)
		p.start()
		if !p.run(time.Minute, p.bothUp) {
			t.Fatal("no tunnel")
		}
		b := p.b
		sa, child := b.sa, b.sa.child
		spii, spir, skd := sa.spii, sa.spir, append([]byte(nil), sa.skd...)
		in, out, local, peer := child.inSPI, child.outSPI, sa.local, sa.peer
		ups := childUps(p.evB)
		upB := ups[len(ups)-1]
		nb := len(p.evB)

		// The attacker's half-open IKE SA.
		x, err := NewSession(ca, nil)
		if err != nil {
			t.Fatal(err)
		}
		x.Start(p.now)
		req, _ := x.Output()
		resp, _ := deliverTo(b, req[0].Data, ap500(addrB), ap500(addrA), p.now)
		x.Receive(resp[0].Data, ap500(addrA), ap500(addrB), p.now)
		x.Output()
		if x.sa == nil || x.sa.out == nil {
			t.Fatal("attacker has no keys")
		}

		fuzzChunks(data, func(mode byte, d []byte) {
			from := ap500(addrA)
			if mode&0x80 != 0 {
				from = netip.AddrPortFrom(addrA, 4500+uint16(mode&0x30))
			}
			var msg []byte
			switch mode & 3 {
			case 0:
				msg = d
			case 1: // the established IKE SA's SPIs
				msg = append([]byte(nil), d...)
				if len(msg) >= 16 {
					binary.BigEndian.PutUint64(msg, spii)
					binary.BigEndian.PutUint64(msg[8:], spir)
				}
			case 2: // protected with the attacker's keys: exchange, message ID, first payload, inner payloads
				if len(d) < 3 {
					return
				}
				h := x.sa.header(ExchangeType(d[0]), uint32(d[1]), mode&0x40 != 0)
				msg = sealRaw(t, x.sa, h, PayloadType(d[2]), d[3:])
			case 3: // an IKE_SA_INIT request with these payloads
				if len(d) < 1 {
					return
				}
				m := Message{Header: Header{SPIi: 0x5a5a, Exchange: ExchangeIKESAInit, Flags: FlagInitiator}}
				msg = m.Encode(nil)
				msg[hdrNextPayload] = d[0]
				msg = append(msg, d[1:]...)
				binary.BigEndian.PutUint32(msg[hdrLength:], uint32(len(msg)))
			}
			b.Receive(msg, ap500(addrB), from, p.now)
			p.now = p.now.Add(time.Duration(mode&0x0c) * time.Second)
			b.Tick(p.now)
		})
		p.collect()
		for _, e := range p.evB[nb:] {
			switch e := e.(type) {
			case IKESADown:
				if !halfOpenNote(e) {
					t.Fatalf("event %#v", e)
				}
			default:
				t.Fatalf("event %#v", e)
			}
		}
		if b.sa != sa || sa.state != stateEstablished || sa.spii != spii || sa.spir != spir || !bytes.Equal(sa.skd, skd) ||
			sa.local != local || sa.peer != peer || sa.child != child || child.inSPI != in || child.outSPI != out || len(sa.extra) != 0 {
			t.Fatalf("unauthenticated input changed the established IKE SA")
		}
		// It still answers the peer, with the same keys.
		p.flight = nil
		p.a.sendRequest(p.a.sa, ExchangeInformational, nil, ignoreResponse, p.now)
		if !p.run(time.Second, func() bool { return p.a.sa.req == nil }) {
			t.Fatal("the established IKE SA no longer answers")
		}
		if ua := childUps(p.evA); ua[len(ua)-1].OutSPI != upB.InSPI || !bytes.Equal(ua[len(ua)-1].OutKey, upB.InKey) {
			t.Fatal("Child SA keys differ")
		}
	})
}

// halfOpenNote reports whether e is a rate-limited note about
// unauthenticated input (a half-open IKE SA, an IKE_SA_INIT we refused),
// not about the current IKE SA.
func halfOpenNote(e IKESADown) bool {
	return strings.HasPrefix(e.Reason, "half-open IKE SA: ") || strings.Contains(e.Reason, "offered no IKE proposal we accept")
}

// FuzzPayloadDecode: every payload decoder, fed any body, returns a value
// or a *SyntaxError, never panics, and what it decodes encodes back to a
// body that decodes to the same value.
func FuzzPayloadDecode(f *testing.F) {
	for _, p := range append(samplePayloads(),
		&EncryptedPayload{NextPayload: PayloadIDi, Data: seq(0, 50)},
		&EncryptedFragmentPayload{NextPayload: PayloadNone, FragmentNumber: 3, TotalFragments: 7, Data: seq(0, 20)}) {
		f.Add(byte(p.Type()), p.Encode(nil))
	}
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		var p Payload
		switch PayloadType(typ) {
		case PayloadSK:
			p = &EncryptedPayload{}
		case PayloadSKF:
			p = &EncryptedFragmentPayload{}
		default:
			if p = newPayload(PayloadType(typ)); p == nil {
				return
			}
		}
		if err := p.Decode(body); err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("%v: untyped error %T: %v", PayloadType(typ), err, err)
			}
			return
		}
		again := p.Encode(nil)
		q, err := decodeAs(p, again)
		if err != nil {
			t.Fatalf("%v: re-encoded body does not decode: %v\n%x", PayloadType(typ), err, again)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("%v: round trip differs:\n%+v\n%+v", PayloadType(typ), p, q)
		}
	})
}

// FuzzReassembler: fragments with any numbers, totals and content, sealed
// with the right keys or not, never panic the reassembler or grow it past
// its limits; a message whose fragments all came from one sender's
// Fragment call reassembles to what was fragmented.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{1, 3, 0, 5, 'h', 'e', 'l', 'l', 'o', 2, 3, 0, 2, 'a', 'b'})
	f.Add([]byte{64, 64, 1, 0, 0x40, 1, 200, 0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		send, recv := skPair(t, skSuites[0], 1)
		r := Reassembler{MaxFragments: 16, MaxSize: 4096}
		h := Header{SPIi: 1, SPIr: 2, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1}
		for len(data) >= 4 {
			num, total, flags, n := uint16(data[0]), uint16(data[1]), data[2], int(data[3])
			data = data[4:]
			n = min(n, len(data))
			piece := data[:n]
			data = data[n:]
			hh := h
			hh.MessageID += uint32(flags & 3)
			frag := &EncryptedFragmentPayload{FragmentNumber: num, TotalFragments: total, NextPayload: PayloadNotify}
			m := Message{Header: hh, Payloads: []Payload{frag}}
			sealed := send.SealedLen(len(piece))
			msg, l := m.EncodeForSeal(nil, sealed)
			copy(msg[l.Data+send.IVLen():], piece)
			if err := send.Seal(msg[l.Start:l.End], l.Data-l.Start, len(piece)); err != nil {
				t.Fatal(err)
			}
			if flags&4 != 0 && len(msg) > 0 {
				msg[len(msg)-1] ^= 1 // tampered
			}
			pm, err := ParseMessage(msg)
			if err != nil {
				continue
			}
			sk, ok := pm.Payloads[0].(*EncryptedFragmentPayload)
			if !ok {
				continue
			}
			done, _, inner, err := r.Add(msg, pm.Header, sk, recv)
			if flags&4 != 0 && err == nil && done {
				t.Fatal("a tampered fragment completed a message")
			}
			if done && len(inner) > 4096 {
				t.Fatalf("reassembled %d bytes past the limit", len(inner))
			}
			if r.size > 4096 || len(r.frags) > 16 || r.have > r.total {
				t.Fatalf("reassembler past its limits: size %d, %d slots, have %d of %d", r.size, len(r.frags), r.have, r.total)
			}
		}
		// A genuine fragmented message still reassembles afterwards.
		_, inner := innerChain(5)
		frags, err := Fragment(h, PayloadNotify, inner, send, 128)
		if err != nil {
			t.Fatal(err)
		}
		r.Reset()
		var got []byte
		for _, fm := range frags {
			pm, err := ParseMessage(fm)
			if err != nil {
				t.Fatal(err)
			}
			done, _, p, err := r.Add(fm, pm.Header, pm.Payloads[0].(*EncryptedFragmentPayload), recv)
			if err != nil {
				t.Fatal(err)
			}
			if done {
				got = p
			}
		}
		if !bytes.Equal(got, inner) {
			t.Fatal("genuine message not reassembled")
		}
	})
}

// FuzzGateAdmit: the Gate, fed any datagram from the peer's address or
// another, never panics; it answers only IKE_SA_INIT requests, never with
// more bytes than the request (no amplification), and every answer is a
// well-formed IKE response; and it agrees with the header: only a message
// of a known SPI goes to the priority queue.
func FuzzGateAdmit(f *testing.F) {
	ca, _ := gwConfigs(ModeTransport)
	init := spoofInit(f, ca, nil)
	f.Add(init, false, uint8(0))
	f.Add(init, true, uint8(5))
	v3 := append([]byte(nil), init...)
	v3[hdrVersion] = 0x30
	f.Add(v3, false, uint8(0))
	f.Fuzz(func(t *testing.T, msg []byte, otherPeer bool, halfOpen uint8) {
		g, err := NewGate(GateConfig{})
		if err != nil {
			t.Fatal(err)
		}
		gp := g.register(addrA)
		g.setSPI(0x1122334455667788, addrA, false)
		for range halfOpen % 12 {
			g.addHalfOpen(gp, 1)
		}
		from := ap500(addrA)
		if otherPeer {
			from = ap500(addrB)
		}
		v, reply := g.Admit(msg, ap500(addrB), from, epoch)
		h, herr := ParseHeader(msg)
		switch v {
		case VerdictReply:
			if len(reply) > len(msg) {
				t.Fatalf("answer of %d bytes to a request of %d", len(reply), len(msg))
			}
			m, err := ParseMessage(reply)
			if err != nil || !m.IsResponse() || m.Exchange != ExchangeIKESAInit {
				t.Fatalf("answer %v %v", m, err)
			}
		case VerdictEstablished:
			if herr != nil || otherPeer || isInitRequest(h) {
				t.Fatalf("priority for %x", msg)
			}
			spi := h.SPIi
			if h.IsInitiator() {
				spi = h.SPIr
			}
			if spi != 0x1122334455667788 {
				t.Fatalf("priority for SPI %x", spi)
			}
		case VerdictInit:
			if herr != nil || otherPeer {
				t.Fatalf("init queue for %x", msg)
			}
		}
	})
}

// FuzzScanInit: the cheap scan the cookie check relies on agrees with the
// full parser: for an IKE_SA_INIT request that ParseMessage and
// CheckPayloads accept, it finds the same nonce and cookie.
func FuzzScanInit(f *testing.F) {
	ca, _ := gwConfigs(ModeTransport)
	init := spoofInit(f, ca, nil)
	f.Add(init)
	m, _ := ParseMessage(init)
	m.Payloads = append([]Payload{&NotifyPayload{NotifyType: NotifyCookie, Data: make([]byte, 33)}}, m.Payloads...)
	f.Add(m.Encode(nil))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if _, err := ParseHeader(msg); err != nil {
			return
		}
		cookie, nonce, ok := scanInit(msg)
		m, err := ParseMessage(msg)
		if err != nil || CheckPayloads(ExchangeIKESAInit, false, false, m.Payloads) != nil {
			return
		}
		var wantNonce, wantCookie []byte
		for i, p := range m.Payloads {
			switch p := p.(type) {
			case *NoncePayload:
				wantNonce = p.Nonce
			case *NotifyPayload:
				if i == 0 && p.NotifyType == NotifyCookie {
					wantCookie = p.Data
				}
			}
		}
		if !ok || !bytes.Equal(nonce, wantNonce) || !bytes.Equal(cookie, wantCookie) {
			t.Fatalf("scanInit = %x, %x, %v; parser: %x, %x", cookie, nonce, ok, wantCookie, wantNonce)
		}
	})
}
