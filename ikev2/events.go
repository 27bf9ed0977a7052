package ikev2

import (
	"net/netip"
	"time"
)

// A Datagram is an IKE message to send. The runner sends it from Local to
// Peer; when either port is 4500 it prefixes the 4-byte non-ESP marker
// (RFC 3948 §2.2).
type Datagram struct {
	Local netip.AddrPort
	Peer  netip.AddrPort
	Data  []byte
}

// An Event tells the runner what changed. It is one of the types below.
type Event interface{ isEvent() }

// ChildSAUp: a Child SA was established (IKE_AUTH or CREATE_CHILD_SA),
// also when it replaces a rekeyed one. The runner installs the inbound SA
// first, then switches the outbound SA, then (for a rekey) removes the old
// SAs when ChildSADown for them arrives. When Rekeyed is set, the peer may
// not have the new SA's inbound half yet (a responder installs its SAs as
// it answers, an initiator as the answer arrives: make before break): the
// runner goes on sending with the replaced SA until [ChildSAOutbound] for
// this SA, or a packet authenticated by the new inbound SA shows that the
// peer has it, or a few seconds passed. The keys are the only copies of
// the KEYMAT: the runner clears them (clear(ev.InKey), and the three
// others) once the SAs are installed. If installing fails, it calls
// [Session.ChildInstallFailed].
type ChildSAUp struct {
	InSPI, OutSPI uint32 // inbound: chosen by us; outbound: by the peer
	Encr          uint16 // ENCR_AES_GCM_16, ENCR_CHACHA20_POLY1305, ENCR_AES_CBC or ENCR_NULL
	KeyBits       int
	Integ         uint16 // AUTH_HMAC_*; 0 (NONE) with an AEAD
	InKey, OutKey []byte // encryption keys from KEYMAT: key ‖ salt for an AEAD, the AES key for CBC, empty for NULL
	// InAuthKey, OutAuthKey are the integrity keys from KEYMAT, which
	// follow each direction's encryption key (RFC 7296 §2.17); empty with
	// an AEAD.
	InAuthKey, OutAuthKey []byte
	ESN                   bool
	Transport             bool           // transport mode; false: tunnel mode
	Encap                 bool           // ESP-in-UDP (NAT seen or forced)
	Peer                  netip.AddrPort // where to send ESP: port 4500 with Encap, else the address
	LocalTS               []Selector     // as negotiated
	PeerTS                []Selector
	Lifetime              time.Duration // when the SA is rekeyed (the runner need not act)
	// Hard is the hard lifetime: the session emits ChildSADown for the SA
	// then at the latest (the runner need not act).
	Hard    time.Duration
	Rekeyed *ChildSADown // the SA this one replaces, if any
}

// ChildSAOutbound: the peer has the rekeyed Child SA InSPI/OutSPI (the
// DELETE exchange of the SA it replaced is done, §1.4.1, so both sides
// have processed the rekey): send with it from now on. It comes just
// before the replaced SA's ChildSADown.
type ChildSAOutbound struct{ InSPI, OutSPI uint32 }

// ChildSADown: a Child SA was deleted (by us or the peer) or replaced.
type ChildSADown struct {
	InSPI, OutSPI uint32
	Reason        string
}

// IKESAUp: the IKE SA is established (after IKE_AUTH) or rekeyed.
type IKESAUp struct {
	SPIi, SPIr uint64
	Initiator  bool
	NAT        bool // a NAT was detected (or faked by either side)
}

// IKESADown: the IKE SA is gone: deleted, failed (with the error a person
// can act on, e.g. "ikev2: peer answered AUTHENTICATION_FAILED: check the
// PSK and IDs"), or the peer stopped answering. An active gateway starts
// again after a back-off.
type IKESADown struct {
	Reason string
	Err    error
}

// SendKeepalive: send a NAT keepalive (one 0xFF byte, RFC 3948 §2.3) from
// Local to Peer on port 4500.
type SendKeepalive struct{ Local, Peer netip.AddrPort }

// PeerMoved: an authenticated IKE message came from a new address or port
// (a NAT gave the peer a new mapping); ESP-in-UDP goes to Peer from now on.
type PeerMoved struct{ Peer netip.AddrPort }

func (PeerMoved) isEvent()       {}
func (ChildSAUp) isEvent()       {}
func (ChildSADown) isEvent()     {}
func (ChildSAOutbound) isEvent() {}
func (IKESAUp) isEvent()         {}
func (IKESADown) isEvent()       {}
func (SendKeepalive) isEvent()   {}
