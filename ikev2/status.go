package ikev2

import (
	"net/netip"
	"time"
)

// Status snapshots: a read-only view of a Session for `greipsec show`, the
// control API and metrics, in the terms of swanctl --list-sas. Taking one
// changes nothing; like every Session method it must be called from the
// goroutine that owns the session.

// IKEState is where an IKE SA is in its life, as swanctl names the states.
type IKEState string

const (
	// IKEConnecting: IKE_SA_INIT or IKE_AUTH under way, as initiator or
	// responder.
	IKEConnecting IKEState = "CONNECTING"
	// IKEEstablished: IKE_AUTH done.
	IKEEstablished IKEState = "ESTABLISHED"
	// IKERekeying: established, and our CREATE_CHILD_SA rekeying it is
	// under way (§2.18).
	IKERekeying IKEState = "REKEYING"
	// IKERekeyed: replaced by a rekeyed IKE SA, or by a new one from a
	// restarted peer; waiting for its DELETE.
	IKERekeyed IKEState = "REKEYED"
)

// SessionStatus is a snapshot of a Session.
type SessionStatus struct {
	Role    Role
	LocalID Identity // as sent in IDi/IDr
	PeerID  Identity // what the peer must present, and did if IKE is established
	// Closed is set once Close was called.
	Closed bool
	// IKE is the current IKE SA, being set up or established; nil when
	// there is none.
	IKE *IKESAStatus
	// Others are the other IKE SAs the session holds: our own attempt
	// beside the peer's established one (both set one up at once), an IKE
	// SA on its way out (replaced by rekeying or reauthentication, or the
	// redundant one of a crossing) that waits for its DELETE, and the
	// half-open responder SAs (at most GateConfig.BlockThresholdPeer).
	Others []IKESAStatus
	// RestartAt is when an active session that lost its IKE SA starts
	// again; zero when no restart is scheduled.
	RestartAt time.Time
}

// IKESAStatus is a snapshot of one IKE SA.
type IKESAStatus struct {
	State IKEState
	// Phase says in words where a CONNECTING SA is: "IKE_SA_INIT sent",
	// "IKE_AUTH sent", "waiting for IKE_AUTH". Empty otherwise.
	Phase string
	// Initiator: we are the original initiator of this IKE SA (§2.2).
	Initiator  bool
	SPIi, SPIr uint64
	// Proposal is the negotiated IKE proposal; zero before IKE_SA_INIT has
	// completed.
	Proposal IKEProposal
	// Local and Peer are the addresses and ports IKE uses now: port 4500
	// once a NAT was seen (§2.23).
	Local, Peer netip.AddrPort
	// NATLocal: this side is behind a NAT (or claims to be, ForceEncap);
	// NATPeer: the peer is (or claims to be).
	NATLocal, NATPeer bool
	Created           time.Time // IKE_SA_INIT sent or received
	Established       time.Time // IKE_AUTH done; zero before
	LastReceived      time.Time // last authenticated message (or ESP, PeerAlive)
	// RekeyAt is when this side rekeys the IKE SA; zero if not established.
	RekeyAt time.Time
	// Request is the exchange of our outstanding request, if any, and
	// Retransmits how often it was sent again.
	Request     ExchangeType
	Retransmits int
	// Child is the IKE SA's Child SA; nil when it has none. Retiring are
	// Child SAs replaced by rekeying, until their DELETE exchange is done.
	Child    *ChildSAStatus
	Retiring []ChildSAStatus
	// ChildRekeying: our CREATE_CHILD_SA rekeying Child is under way.
	ChildRekeying bool
	// ChildError is why the Child SA of IKE_AUTH failed, if it did.
	ChildError string
}

// ChildSAStatus is a snapshot of one Child SA, an ESP SA pair.
type ChildSAStatus struct {
	InSPI, OutSPI   uint32
	Proposal        ESPProposal // as negotiated; DH is the PFS group of rekeys
	Transport       bool        // transport mode; false: tunnel mode
	Encap           bool        // ESP in UDP
	LocalTS, PeerTS []Selector
	Installed       time.Time
	RekeyAt         time.Time // when this side rekeys it
}

// Status returns a snapshot of the session at now.
func (s *Session) Status(now time.Time) SessionStatus {
	st := SessionStatus{
		Role:      s.cfg.Role,
		LocalID:   s.cfg.LocalID,
		PeerID:    s.cfg.PeerID,
		Closed:    s.closed,
		RestartAt: s.restartAt,
	}
	if sa := s.sa; sa != nil && sa.state != stateDead {
		x := saStatus(sa)
		st.IKE = &x
	}
	for _, sa := range append([]*ikeSA{s.own, s.old}, s.half...) {
		if sa != nil && sa.state != stateDead && sa != s.sa {
			st.Others = append(st.Others, saStatus(sa))
		}
	}
	return st
}

func saStatus(sa *ikeSA) IKESAStatus {
	x := IKESAStatus{
		Initiator:    sa.initiator,
		SPIi:         sa.spii,
		SPIr:         sa.spir,
		Proposal:     sa.prop,
		Local:        sa.local,
		Peer:         sa.peer,
		NATLocal:     sa.natLocal,
		NATPeer:      sa.natPeer,
		Created:      sa.created,
		Established:  sa.upAt,
		LastReceived: sa.lastRecv,
		ChildError:   sa.childErr,
	}
	switch sa.state {
	case stateInitSent:
		x.State, x.Phase = IKEConnecting, "IKE_SA_INIT sent"
	case stateAuthSent:
		x.State, x.Phase = IKEConnecting, "IKE_AUTH sent"
	case stateInitDone:
		x.State, x.Phase = IKEConnecting, "waiting for IKE_AUTH"
	case stateEstablished:
		x.State = IKEEstablished
		switch {
		case sa.retired:
			x.State = IKERekeyed
		case sa.ikeRekey != nil:
			x.State = IKERekeying
		default:
			x.RekeyAt = sa.ikeRekeyAt
		}
	}
	if r := sa.req; r != nil {
		x.Request, x.Retransmits = r.exchange, r.tries
	}
	if c := sa.child; c != nil {
		cs := childStatus(sa, c)
		x.Child = &cs
	}
	for _, c := range sa.extra {
		x.Retiring = append(x.Retiring, childStatus(sa, c))
	}
	x.ChildRekeying = sa.childRekey != nil
	return x
}

func childStatus(sa *ikeSA, c *childSA) ChildSAStatus {
	return ChildSAStatus{
		InSPI:     c.inSPI,
		OutSPI:    c.outSPI,
		Proposal:  c.prop,
		Transport: c.transport,
		Encap:     sa.nat(),
		LocalTS:   append([]Selector(nil), c.localTS...),
		PeerTS:    append([]Selector(nil), c.peerTS...),
		Installed: c.upAt,
		RekeyAt:   c.rekeyAt,
	}
}
