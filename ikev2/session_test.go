package ikev2

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// sealRaw protects an arbitrary inner payload chain as sa's next message,
// the way the engine does for well-formed payloads.
func sealRaw(tb testing.TB, sa *ikeSA, h Header, first PayloadType, inner []byte) []byte {
	m := Message{Header: h, Payloads: []Payload{&EncryptedPayload{NextPayload: first}}}
	b, l := m.EncodeForSeal(nil, sa.out.SealedLen(len(inner)))
	copy(b[l.Data+sa.out.IVLen():], inner)
	if err := sa.out.Seal(b[l.Start:l.End], l.Data-l.Start, len(inner)); err != nil {
		tb.Fatal(err)
	}
	return b
}

// openRaw decrypts a protected message received on sa.
func openRaw(tb testing.TB, sa *ikeSA, msg []byte) (Header, []Payload) {
	msg = append([]byte(nil), msg...)
	m, err := ParseMessage(msg)
	if err != nil {
		tb.Fatal(err)
	}
	sk := m.Payloads[0].(*EncryptedPayload)
	plain, err := sa.in.Open(msg, len(msg)-len(sk.Data))
	if err != nil {
		tb.Fatal(err)
	}
	ps, err := ParsePayloadChain(sk.NextPayload, plain)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Header, ps
}

func TestNewSessionErrors(t *testing.T) {
	for _, tc := range []struct {
		mut  func(c *Config)
		want string
	}{
		{func(c *Config) { c.PSK = nil }, "pre-shared key"},
		{func(c *Config) { c.IKEProposals = nil }, "no IKE proposals"},
		{func(c *Config) { c.ESPProposals = nil }, "no ESP proposals"},
		{func(c *Config) { c.IKEProposals[0].DH = 3 }, "unsupported key exchange group 3"},
		{func(c *Config) { c.ESPProposals[0].Encr = uint16(EncrAESCBC) }, "ESP proposal 1"},
		{func(c *Config) { c.PeerAddr = netip.MustParseAddr("2001:db8::1") }, "same family"},
		{func(c *Config) { c.LocalTS = nil }, "traffic selectors"},
		{func(c *Config) { c.Role = 7 }, "role"},
		{func(c *Config) { c.FragmentSize = 100 }, "fragment size"},
	} {
		c, _ := gwConfigs(ModeTransport)
		tc.mut(c)
		_, err := NewSession(c, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "ikev2: a: ") {
			t.Errorf("error %v, want one naming %q", err, tc.want)
		}
	}
	c, _ := gwConfigs(ModeTransport)
	s, err := NewSession(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.RetransmitTimeout != 2*time.Second || s.cfg.RetransmitTries != 5 || s.cfg.NATKeepalive != 20*time.Second ||
		!s.cfg.LocalID.Equal(IdentityAddr(addrA)) || !s.cfg.PeerID.Equal(IdentityAddr(addrB)) {
		t.Errorf("defaults not applied: %+v", s.cfg)
	}
	// The session keeps its own copy.
	c.PSK[0] = 'X'
	if s.cfg.PSK[0] != 's' {
		t.Error("config PSK aliased")
	}
}

func TestPassiveDoesNotInitiate(t *testing.T) {
	_, cb := gwConfigs(ModeTransport)
	s, err := NewSession(cb, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(epoch)
	s.Tick(epoch.Add(time.Hour))
	if d, e := s.Output(); len(d)+len(e) != 0 || !s.NextTimeout().IsZero() {
		t.Errorf("passive session acted: %v %v", d, e)
	}
}

func TestNATDetectionHash(t *testing.T) {
	// RFC 7296 §2.23: SHA-1(SPIi | SPIr | IP | Port). Computed by hand
	// from the definition with crypto/sha1 over the concatenation.
	ap := netip.MustParseAddrPort("192.0.2.1:500")
	in := []byte{1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1, 0x01, 0xf4}
	want := sha1Sum(in)
	if got := natHash(0x0102030405060708, 0, ap); !bytes.Equal(got, want) {
		t.Errorf("natHash = %x, want %x", got, want)
	}
	if bytes.Equal(natHash(1, 0, ap), natHash(1, 0, netip.MustParseAddrPort("192.0.2.1:4500"))) {
		t.Error("port not hashed")
	}
}

// TestCookie: cookies follow RFC 7296 §2.6 (version | SHA-256(Ni | IPi |
// SPIi | secret)), are bound to the initiator, and stay valid across one
// change of the secret (every two minutes) but not two.
func TestCookie(t *testing.T) {
	var j cookieJar
	if err := j.init(cryptoRand); err != nil {
		t.Fatal(err)
	}
	ni := bytes.Repeat([]byte{7}, 32)
	now := epoch
	ck := j.make(ni, addrA, 42, now)
	if len(ck) != cookieLen {
		t.Fatalf("cookie of %d bytes", len(ck))
	}
	// The definition, computed by hand.
	s := j.secrets.Load()
	want := sha256.Sum256(append(append(append(append([]byte(nil), ni...), addrA.AsSlice()...), u64(42)...), s.cur[:]...))
	if ck[0] != s.version || !bytes.Equal(ck[1:], want[:]) {
		t.Errorf("cookie %x, want %02x%x", ck, s.version, want)
	}
	if !j.valid(ck, ni, addrA, 42, now) {
		t.Error("own cookie rejected")
	}
	for name, args := range map[string]struct {
		ni  []byte
		ip  netip.Addr
		spi uint64
	}{
		"other address": {ni, addrB, 42},
		"other SPI":     {ni, addrA, 43},
		"other nonce":   {bytes.Repeat([]byte{8}, 32), addrA, 42},
	} {
		if j.valid(ck, args.ni, args.ip, args.spi, now) {
			t.Errorf("%s: cookie accepted", name)
		}
	}
	if j.valid(ck[:len(ck)-1], ni, addrA, 42, now) || j.valid(nil, ni, addrA, 42, now) {
		t.Error("truncated cookie accepted")
	}
	// One rotation: the old cookie still works, new ones differ.
	now = now.Add(cookieRotation + time.Second)
	if !j.valid(ck, ni, addrA, 42, now) {
		t.Error("cookie of the previous secret rejected")
	}
	if ck2 := j.make(ni, addrA, 42, now); bytes.Equal(ck2, ck) || !j.valid(ck2, ni, addrA, 42, now) {
		t.Error("new secret makes the same cookie, or rejects its own")
	}
	// Two rotations: the first cookie is dead.
	now = now.Add(cookieRotation + time.Second)
	if j.valid(ck, ni, addrA, 42, now) {
		t.Error("cookie two secrets old accepted")
	}
	// The version octet wraps without reusing 0 or confusing generations.
	for i := 0; i < 300; i++ {
		now = now.Add(cookieRotation)
		c := j.make(ni, addrA, 42, now)
		if c[0] == 0 || !j.valid(c, ni, addrA, 42, now) {
			t.Fatalf("rotation %d: version %d", i, c[0])
		}
	}
}

func TestUnsupportedCriticalPayload(t *testing.T) {
	ca, cb := gwConfigs(ModeTransport)
	p := newPair(t, ca, cb)
	p.start()
	if !p.run(time.Minute, p.bothUp) {
		t.Fatal("no tunnel")
	}
	sa := p.a.sa
	// An INFORMATIONAL request whose only payload is of unknown type 200
	// with the critical bit set (RFC 7296 §2.5).
	inner := []byte{0, 0x80, 0, 8, 1, 2, 3, 4}
	h := sa.header(ExchangeInformational, sa.nextID, false)
	p.b.Receive(sealRaw(t, sa, h, 200, inner), netip.AddrPortFrom(addrB, 500), netip.AddrPortFrom(addrA, 500), p.now)
	dgs, _ := p.b.Output()
	if len(dgs) != 1 {
		t.Fatalf("%d answers", len(dgs))
	}
	rh, ps := openRaw(t, sa, dgs[0].Data)
	if !rh.IsResponse() || rh.MessageID != h.MessageID || len(ps) != 1 {
		t.Fatalf("answer %v %v", rh, ps)
	}
	n, ok := ps[0].(*NotifyPayload)
	if !ok || n.NotifyType != NotifyUnsupportedCriticalPayload || !bytes.Equal(n.Data, []byte{200}) {
		t.Errorf("answer %v", ps[0])
	}
	// A retransmission of the request gets the same answer from the cache;
	// an old message ID is ignored.
	p.b.Receive(sealRaw(t, sa, h, 200, inner), netip.AddrPortFrom(addrB, 500), netip.AddrPortFrom(addrA, 500), p.now)
	if again, _ := p.b.Output(); len(again) != 1 || !bytes.Equal(again[0].Data, dgs[0].Data) {
		t.Error("retransmitted request not answered from the cache")
	}
	h.MessageID = 0
	p.b.Receive(sealRaw(t, sa, h, PayloadNone, nil), netip.AddrPortFrom(addrB, 500), netip.AddrPortFrom(addrA, 500), p.now)
	if old, _ := p.b.Output(); len(old) != 0 {
		t.Error("old request answered")
	}
	if !p.b.Established() {
		t.Error("B dropped the IKE SA")
	}
}

// FuzzSessionReceive feeds random bytes and mutated genuine messages to
// sessions in every state: a fresh responder, a handshake in progress (the
// idx-th datagram replaced) and an established IKE SA (data sealed as the
// inner payloads of a request). None may panic.
func FuzzSessionReceive(f *testing.F) {
	ca, cb := fuzzConfigs()
	p := newPair(f, ca, cb)
	p.start()
	p.run(time.Minute, p.bothUp)
	for i, d := range append(append([]Datagram(nil), p.sentA...), p.sentB...) {
		f.Add(uint8(0), uint8(i), d.Data)
		f.Add(uint8(1), uint8(i), d.Data)
	}
	for _, inner := range [][]byte{
		EncodePayloadChain(nil, []Payload{&DeletePayload{Protocol: ProtocolIKE}}),
		EncodePayloadChain(nil, []Payload{&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{1, 2}}}),
		EncodePayloadChain(nil, []Payload{&NotifyPayload{NotifyType: NotifyRekeySA, Protocol: ProtocolESP, SPI: []byte{0, 0, 1, 0}},
			ESPSAPayload(ca.ESPProposals, 0x1234, true), &NoncePayload{Nonce: make([]byte, 32)}}),
		EncodePayloadChain(nil, []Payload{IKESAPayload(ca.IKEProposals, []byte{1, 2, 3, 4, 5, 6, 7, 8}), &NoncePayload{Nonce: make([]byte, 32)},
			&KEPayload{Group: DHCurve25519, Data: make([]byte, 32)}}),
	} {
		f.Add(uint8(2), uint8(PayloadDelete), inner)
	}
	f.Fuzz(func(t *testing.T, mode, idx uint8, data []byte) {
		ca, cb := fuzzConfigs()
		switch mode % 3 {
		case 0:
			b, _ := NewSession(cb, nil)
			b.Receive(data, netip.AddrPortFrom(addrB, 500), netip.AddrPortFrom(addrA, 500), epoch)
			a, _ := NewSession(ca, nil)
			a.Start(epoch)
			if len(data) >= 8 {
				d := append([]byte(nil), data...)
				copy(d, u64(a.sa.spii))
				a.Receive(d, netip.AddrPortFrom(addrA, 500), netip.AddrPortFrom(addrB, 500), epoch)
			}
			a.Tick(epoch.Add(time.Hour))
			b.Tick(epoch.Add(time.Hour))
		case 1:
			p := newPair(t, ca, cb)
			n := 0
			p.filter = func(from string, k int, d Datagram) pairAction {
				if n++; n-1 == int(idx%8) {
					m := append([]byte(nil), data...)
					copy(m, d.Data[:min(16, len(d.Data), len(m))])
					// Deliver the mutant in place of the original.
					other := p.b
					if from == "B" {
						other = p.a
					}
					other.Receive(m, d.Peer, d.Local, p.now)
					return pairAction{drop: true}
				}
				return pairAction{}
			}
			p.start()
			p.run(time.Minute, nil)
		case 2:
			p := newPair(t, ca, cb)
			p.start()
			if !p.run(time.Minute, p.bothUp) {
				t.Fatal("no tunnel")
			}
			if len(data) > 4000 {
				data = data[:4000]
			}
			sa := p.a.sa
			exchanges := []ExchangeType{ExchangeInformational, ExchangeCreateChildSA, ExchangeIKEAuth, ExchangeIKESAInit}
			h := sa.header(exchanges[int(idx)%len(exchanges)], sa.nextID, false)
			p.b.Receive(sealRaw(t, sa, h, PayloadType(idx), data), netip.AddrPortFrom(addrB, 500), netip.AddrPortFrom(addrA, 500), p.now)
			p.run(time.Minute, nil)
		}
	})
}

func fuzzConfigs() (*Config, *Config) {
	ca, cb := gwConfigs(ModeTransport)
	ike := []IKEProposal{{Encr: uint16(EncrAESGCM16), KeyBits: 128, PRF: uint16(PRFHMACSHA2_256), DH: uint16(DHCurve25519)}}
	ca.IKEProposals, cb.IKEProposals = ike, ike
	return ca, cb
}

func u64(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func sha1Sum(b []byte) []byte {
	h := sha1.Sum(b)
	return h[:]
}
