package ikev2

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"
)

// Helpers of the attack tests (attack_test.go, flood_test.go,
// recovery_test.go): crafting spoofed messages and following what the
// runners would have installed.

// constReader reads an endless run of one byte: a session that draws its
// nonce from it has the highest (0xff) or lowest (0x00) nonce possible.
type constReader byte

func (c constReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(c)
	}
	return len(b), nil
}

var _ io.Reader = constReader(0)

// spoofInit returns the IKE_SA_INIT request a session with cfg (made
// active) and random source r sends first: what an attacker who knows the
// peer's proposals sends with the peer's source address.
func spoofInit(t testing.TB, cfg *Config, r io.Reader) []byte {
	t.Helper()
	c := *cfg
	c.Role = RoleActive
	s, err := NewSession(&c, r)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(epoch)
	dgs, _ := s.Output()
	if len(dgs) != 1 {
		t.Fatalf("spoofInit: %d datagrams", len(dgs))
	}
	return dgs[0].Data
}

// initMutator turns one IKE_SA_INIT request into many distinct ones: a new
// SPIi and nonce each time, the rest (the KE value) the same, which is all
// a flood needs since a responder that asks for cookies computes nothing.
type initMutator struct {
	msg      []byte
	nonceOff int
}

func newInitMutator(t testing.TB, msg []byte) *initMutator {
	m, err := ParseMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Payloads {
		if n, ok := p.(*NoncePayload); ok {
			off := bytes.Index(msg, n.Nonce)
			if off < 0 {
				t.Fatal("nonce not found")
			}
			return &initMutator{msg: append([]byte(nil), msg...), nonceOff: off}
		}
	}
	t.Fatal("no nonce")
	return nil
}

// next returns the i-th variant (i > 0), in the mutator's buffer.
func (m *initMutator) next(i uint64) []byte {
	binary.BigEndian.PutUint64(m.msg[hdrSPIi:], i)
	binary.BigEndian.PutUint64(m.msg[m.nonceOff:], i*0x9e3779b97f4a7c15)
	return m.msg
}

// runnerView follows the events of one session as the runner does: the
// inbound SAs installed and the one outbound SA (the last ChildSAUp's,
// until a ChildSADown names it).
type runnerView struct {
	in     map[uint32][]byte
	outSPI uint32
	outKey []byte
	seen   int // events consumed
}

func (v *runnerView) follow(evs []Event) {
	if v.in == nil {
		v.in = make(map[uint32][]byte)
	}
	for _, e := range evs[v.seen:] {
		switch e := e.(type) {
		case ChildSAUp:
			v.in[e.InSPI] = e.InKey
			v.outSPI, v.outKey = e.OutSPI, e.OutKey
		case ChildSADown:
			delete(v.in, e.InSPI)
			if v.outSPI == e.OutSPI {
				v.outSPI, v.outKey = 0, nil
			}
		}
	}
	v.seen = len(evs)
}

// flows reports whether ESP sent by either runner would be accepted by the
// other: each one's outbound SA is installed inbound on the other side,
// with the same key.
func flows(a, b *runnerView) bool {
	ka, okA := b.in[a.outSPI]
	kb, okB := a.in[b.outSPI]
	return a.outSPI != 0 && b.outSPI != 0 && okA && okB && bytes.Equal(ka, a.outKey) && bytes.Equal(kb, b.outKey)
}

// views returns the runner views of both sides of p, brought up to date.
func (p *pair) views(va, vb *runnerView) bool {
	va.follow(p.evA)
	vb.follow(p.evB)
	return flows(va, vb)
}

// deliverTo hands msg to s as if it came from peer to local and returns
// what s sent and emitted.
func deliverTo(s *Session, msg []byte, local, peer netip.AddrPort, now time.Time) ([]Datagram, []Event) {
	s.Receive(msg, local, peer, now)
	return s.Output()
}

// ap500 returns addr:500.
func ap500(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, 500) }
