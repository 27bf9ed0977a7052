package nstest

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Zone is what a test DNS server answers. Names are lower case and end in
// a dot.
type Zone struct {
	Addrs    map[string][]netip.Addr // A and AAAA records
	CNAMEs   map[string]string       // name → canonical name
	Truncate map[string]bool         // over UDP, answer with TC set and no records
	// StrayFirst makes the server send, before each UDP answer, one with
	// another ID: a resolver must ignore it.
	StrayFirst bool
	// Fail makes the server answer every query with SERVFAIL.
	Fail bool

	Queries atomic.Int64 // queries received, over UDP and TCP
}

// ServeDNS answers queries from zone on pc (UDP) and, when l is not nil,
// on l (TCP), until they are closed; the test's cleanup closes them.
func ServeDNS(t testing.TB, zone *Zone, pc net.PacketConn, l net.Listener) {
	t.Cleanup(func() {
		pc.Close()
		if l != nil {
			l.Close()
		}
	})
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			zone.Queries.Add(1)
			resp, stray := zone.answer(buf[:n], true)
			if resp == nil {
				continue
			}
			if zone.StrayFirst {
				pc.WriteTo(stray, from)
			}
			pc.WriteTo(resp, from)
		}
	}()
	if l == nil {
		return
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var lb [2]byte
				if _, err := io.ReadFull(c, lb[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(lb[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				zone.Queries.Add(1)
				resp, _ := zone.answer(q, false)
				if resp != nil {
					c.Write(binary.BigEndian.AppendUint16(nil, uint16(len(resp))))
					c.Write(resp)
				}
			}()
		}
	}()
}

// answer builds the response to query, and the same with another ID.
func (z *Zone) answer(query []byte, udp bool) (resp, stray []byte) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, nil
	}
	q, err := p.Question()
	if err != nil {
		return nil, nil
	}
	name := strings.ToLower(q.Name.String())
	rh := dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	type rr struct {
		name   dnsmessage.Name
		cname  dnsmessage.Name
		addr   netip.Addr
		isName bool
	}
	var answers []rr
	switch {
	case z.Fail:
		rh.RCode = dnsmessage.RCodeServerFailure
	case udp && z.Truncate[name]:
		rh.Truncated = true
	default:
		target := name
		for range 8 {
			c, ok := z.CNAMEs[target]
			if !ok {
				break
			}
			answers = append(answers, rr{name: dnsmessage.MustNewName(target), cname: dnsmessage.MustNewName(c), isName: true})
			target = c
		}
		addrs, ok := z.Addrs[target]
		if !ok && len(answers) == 0 {
			rh.RCode = dnsmessage.RCodeNameError
		}
		for _, a := range addrs {
			if (a.Is4() && q.Type == dnsmessage.TypeA) || (a.Is6() && q.Type == dnsmessage.TypeAAAA) {
				answers = append(answers, rr{name: dnsmessage.MustNewName(target), addr: a})
			}
		}
	}
	build := func(id uint16) []byte {
		rh.ID = id
		b := dnsmessage.NewBuilder(nil, rh)
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		for _, a := range answers {
			res := dnsmessage.ResourceHeader{Name: a.name, Class: dnsmessage.ClassINET, TTL: 60}
			switch {
			case a.isName:
				b.CNAMEResource(res, dnsmessage.CNAMEResource{CNAME: a.cname})
			case a.addr.Is4():
				b.AResource(res, dnsmessage.AResource{A: a.addr.As4()})
			default:
				b.AAAAResource(res, dnsmessage.AAAAResource{AAAA: a.addr.As16()})
			}
		}
		msg, _ := b.Finish()
		return msg
	}
	return build(h.ID), build(h.ID ^ 0x5555)
}
