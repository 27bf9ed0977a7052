//go:build linux

// Package attack makes the hostile traffic of greipsec's attack and fault
// runs (issue 6): spoofed IKE_SA_INIT floods, malformed IKE, and ESP with
// unknown SPIs or garbage, sent at a fixed rate from a raw IPv4 socket
// (IP_HDRINCL), so that any source address can be forged. It is for tests
// and bench/attack only, inside network namespaces.
package attack

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/greipsec/greipsec/ikev2"
)

// Raw is a raw IPv4 socket that sends whole IP packets (IPPROTO_RAW
// implies IP_HDRINCL): the source address is whatever the packet says.
type Raw struct{ fd int }

// OpenRaw opens a Raw socket in the calling thread's network namespace
// (call it inside lab.Lab.Do). It needs CAP_NET_RAW.
func OpenRaw() (*Raw, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("attack: raw socket: %w", err)
	}
	return &Raw{fd: fd}, nil
}

// Send sends one IPv4 packet to its destination address.
func (r *Raw) Send(pkt []byte) error {
	if len(pkt) < 20 {
		return errors.New("attack: packet shorter than an IPv4 header")
	}
	sa := &unix.SockaddrInet4{Addr: [4]byte(pkt[16:20])}
	return unix.Sendto(r.fd, pkt, 0, sa)
}

// Close closes the socket.
func (r *Raw) Close() error { return unix.Close(r.fd) }

// Flood sends the packets make returns, rate per second, until ctx ends,
// and returns how many it sent and how many the kernel refused (a full
// queue: ENOBUFS). next gets the packet's number from 0 and a buffer it
// may reuse.
func (r *Raw) Flood(ctx context.Context, rate int, next func(i int, buf []byte) []byte) (sent, failed int) {
	start := time.Now()
	buf := make([]byte, 0, 2048)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; ; {
		due := int(time.Since(start).Seconds() * float64(rate))
		for ; i < due; i++ {
			if r.Send(next(i, buf[:0])) != nil {
				failed++
			} else {
				sent++
			}
		}
		select {
		case <-ctx.Done():
			return sent, failed
		case <-tick.C:
		}
	}
}

// IPv4 appends to b an IPv4 header from src to dst with protocol proto,
// then payload. The kernel fills in the checksum and, if 0, the ID.
func IPv4(b []byte, src, dst netip.Addr, proto byte, payload []byte) []byte {
	n := 20 + len(payload)
	s, d := src.As4(), dst.As4()
	b = append(b, 0x45, 0, byte(n>>8), byte(n), 0, 0, 0x40, 0, 64, proto, 0, 0)
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return append(b, payload...)
}

// UDP4 appends an IPv4 UDP datagram (checksum 0: none, RFC 768).
func UDP4(b []byte, src, dst netip.AddrPort, payload []byte) []byte {
	n := 8 + len(payload)
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(b, 0x45, 0, byte((20+n)>>8), byte(20+n), 0, 0, 0x40, 0, 64, unix.IPPROTO_UDP, 0, 0)
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = append(b, 0, 0)
	return append(b, payload...)
}

// RandomSource returns a random unicast IPv4 address outside 192.0.2.0/24
// (the lab's link) and the reserved ranges: a spoofed source.
func RandomSource() netip.Addr {
	var a [4]byte
	for {
		rand.Read(a[:])
		if a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224 || a[0] == 192 && a[1] == 0 && a[2] == 2 {
			continue
		}
		return netip.AddrFrom4(a)
	}
}

// InitTemplate returns the IKE_SA_INIT request a session with cfg starts
// with: a well-formed request whose KE a responder has to compute with.
// SetSPI gives each copy a new IKE SA.
func InitTemplate(cfg *ikev2.Config) ([]byte, error) {
	c := *cfg
	s, err := ikev2.NewSession(&c, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close(time.Now())
	s.Start(time.Now())
	dgrams, _ := s.Output()
	if len(dgrams) == 0 {
		return nil, errors.New("attack: the session sent no IKE_SA_INIT")
	}
	return dgrams[0].Data, nil
}

// SetSPI sets the initiator SPI of an IKE message to spi.
func SetSPI(msg []byte, spi uint64) { binary.BigEndian.PutUint64(msg, spi) }

// Malformed returns the i-th (modulo their number) of the malformed IKE
// messages of issue 6: truncated, wrong lengths, broken payload chains, a
// huge proposal list, unknown SPIs, version 3, random bytes. Each one is
// dropped and counted by a correct receiver; none changes anything.
func Malformed(i int, valid []byte) []byte {
	hdr := func(next byte, exch ikev2.ExchangeType, flags byte, spiR uint64, length int) []byte {
		b := binary.BigEndian.AppendUint64(nil, randU64())
		b = binary.BigEndian.AppendUint64(b, spiR)
		b = append(b, next, 0x20, byte(exch), flags)
		b = binary.BigEndian.AppendUint32(b, 0)
		return binary.BigEndian.AppendUint32(b, uint32(length))
	}
	switch i % NumMalformed {
	case 0: // truncated: half of a valid request
		return append([]byte(nil), valid[:len(valid)/2]...)
	case 1: // header length larger than the datagram
		b := append([]byte(nil), valid...)
		binary.BigEndian.PutUint32(b[24:], uint32(len(b)+100))
		return b
	case 2: // header length smaller than the payloads
		b := append([]byte(nil), valid...)
		binary.BigEndian.PutUint32(b[24:], 28)
		return b
	case 3: // a payload chain whose first payload claims 60000 bytes
		b := hdr(byte(ikev2.PayloadSA), ikev2.ExchangeIKESAInit, 0x08, 0, 28+8)
		return append(b, 0, 0, 0xea, 0x60, 1, 2, 3, 4)
	case 4: // a payload chain that loops on unknown critical payloads
		b := hdr(200, ikev2.ExchangeIKESAInit, 0x08, 0, 28+4*8)
		for range 4 {
			b = append(b, 200, 0x80, 0, 8, 0, 0, 0, 0)
		}
		return b
	case 5: // a huge proposal list: 250 proposals of 30 transforms
		var props []ikev2.Proposal
		for n := range 250 {
			p := ikev2.Proposal{Number: uint8(n + 1), Protocol: ikev2.ProtocolIKE}
			for t := range 30 {
				p.Transforms = append(p.Transforms, ikev2.Transform{Type: ikev2.TransformENCR, ID: ikev2.TransformID(1000 + t)})
			}
			props = append(props, p)
		}
		m := ikev2.Message{Header: ikev2.Header{SPIi: randU64(), Exchange: ikev2.ExchangeIKESAInit, Flags: ikev2.FlagInitiator},
			Payloads: []ikev2.Payload{&ikev2.SAPayload{Proposals: props}}}
		return m.Encode(nil)
	case 6: // an IKE_AUTH for an IKE SA nobody has
		b := hdr(byte(ikev2.PayloadSK), ikev2.ExchangeIKEAuth, 0x08, randU64(), 28+4+64)
		b = append(b, 0, 0, 0, 68)
		return append(b, randBytes(64)...)
	case 7: // major version 3
		b := append([]byte(nil), valid...)
		b[17] = 0x30
		return b
	case 8: // an INFORMATIONAL response for an unknown SA
		return hdr(0, ikev2.ExchangeInformational, 0x20, randU64(), 28)
	default: // random bytes
		return randBytes(40 + int(randU64()%400))
	}
}

// NumMalformed is the number of kinds Malformed makes.
const NumMalformed = 10

// ESP appends an ESP packet (RFC 4303 §2) with spi and seq and n bytes of
// garbage where the IV, payload and ICV go: no key opens it.
func ESP(b []byte, spi, seq uint32, n int) []byte {
	b = binary.BigEndian.AppendUint32(b, spi)
	b = binary.BigEndian.AppendUint32(b, seq)
	return append(b, randBytes(n)...)
}

func randU64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
