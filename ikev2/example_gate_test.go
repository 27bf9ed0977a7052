package ikev2_test

import (
	"net/netip"
	"time"

	"github.com/greipsec/greipsec/ikev2"
)

// datagram is one IKE message on its way from a receive goroutine to a
// session goroutine.
type datagram struct {
	data        []byte
	local, peer netip.AddrPort
}

// peerQueues are the two queues of one session: established IKE SAs'
// traffic is never dropped behind a flood of IKE_SA_INIT requests.
type peerQueues struct {
	prio, init chan datagram
}

// This is how a runner puts a Gate in front of its sessions: one Gate for
// all, given to every session's Config; on each receive goroutine (port
// 500, and port 4500 after the non-ESP marker), Admit before queueing; the
// session goroutine serves the priority queue first.
func ExampleGate() {
	gate, err := ikev2.NewGate(ikev2.GateConfig{})
	if err != nil {
		panic(err)
	}
	var cfg ikev2.Config // one tunnel's, filled in from its configuration
	cfg.Gate = gate
	cfg.SPIInUse = func(spi uint32) bool { return false } // ask the dataplane's inbound SA table
	queues := map[netip.Addr]*peerQueues{cfg.PeerAddr: {prio: make(chan datagram, 64), init: make(chan datagram, 64)}}
	send := func(local, peer netip.AddrPort, b []byte) {} // out of the socket the request came in on

	// On a receive goroutine, for each datagram pkt from peer on local:
	receive := func(pkt []byte, local, peer netip.AddrPort) {
		verdict, reply := gate.Admit(pkt, local, peer, time.Now())
		q := queues[peer.Addr().Unmap()]
		d := datagram{append([]byte(nil), pkt...), local, peer}
		switch {
		case verdict == ikev2.VerdictReply:
			send(local, peer, reply)
		case q == nil || verdict == ikev2.VerdictDrop:
		case verdict == ikev2.VerdictEstablished:
			select {
			case q.prio <- d:
			default:
				gate.QueueFull(verdict, peer.Addr(), time.Now())
			}
		case verdict == ikev2.VerdictInit:
			select {
			case q.init <- d:
			default:
				gate.QueueFull(verdict, peer.Addr(), time.Now())
			}
		}
	}
	_ = receive

	// On the session goroutine: established traffic first.
	serve := func(s *ikev2.Session, q *peerQueues, stop <-chan struct{}) {
		for {
			var d datagram
			select {
			case d = <-q.prio:
			default:
				select {
				case d = <-q.prio:
				case d = <-q.init:
				case <-stop:
					return
				}
			}
			s.Receive(d.data, d.local, d.peer, time.Now())
			// ... then Output, as before.
		}
	}
	_ = serve
}
