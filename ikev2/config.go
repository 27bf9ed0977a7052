package ikev2

import (
	"net/netip"
	"time"
)

// Role says whether a gateway starts the IKE SA itself (iked.conf "active")
// or only answers (iked.conf "passive"). An active gateway also answers.
type Role uint8

const (
	RoleActive Role = iota
	RolePassive
)

// ChildMode is the IPsec mode a Child SA is negotiated for.
type ChildMode uint8

const (
	// ModeTransport asks for transport mode (USE_TRANSPORT_MODE, RFC 7296
	// §1.3.1), as GRE over ESP transport mode needs.
	ModeTransport ChildMode = iota
	// ModeTransportOrTunnel asks for transport mode and accepts tunnel mode
	// when the peer does not agree (Cisco IOS's default "mode tunnel").
	ModeTransportOrTunnel
	// ModeTunnel negotiates tunnel mode only.
	ModeTunnel
)

// IKEProposal is one proposal for the IKE SA, in IANA numbers
// (strongSwan notation "aes256-sha384-prfsha384-ecp384", "aes256gcm16-prfsha384-ecp384").
type IKEProposal struct {
	Encr    uint16 // ENCR_* transform ID
	KeyBits int    // key length attribute; 0 for fixed-length ciphers
	Integ   uint16 // INTEG_*; 0 (NONE) with AEAD
	PRF     uint16 // PRF_*
	DH      uint16 // key exchange group
}

// ESPProposal is one proposal for a Child SA ("aes256gcm16-ecp384-esn").
type ESPProposal struct {
	Encr    uint16 // ENCR_AES_GCM_16, ENCR_CHACHA20_POLY1305, ENCR_AES_CBC or ENCR_NULL
	KeyBits int    // 128 or 256 for AES-GCM; 128, 192, 256 for AES-CBC; 0 (256 implied) for ChaCha20-Poly1305, 0 for NULL
	Integ   uint16 // AUTH_HMAC_*: required with AES-CBC and NULL, 0 (NONE) with an AEAD
	DH      uint16 // PFS group for CREATE_CHILD_SA; 0: no PFS
	ESN     bool   // extended sequence numbers
}

// Selector is one traffic selector of a Child SA: an address range as a
// prefix, and an IP protocol (0: any). Ports are always the full range.
type Selector struct {
	Prefix   netip.Prefix
	Protocol uint8
}

// Config is one IKE peer: what this gateway proposes and accepts for the
// IKE SA with that peer and its one Child SA.
type Config struct {
	Name string // tunnel name, for logs

	Role                Role
	LocalAddr, PeerAddr netip.Addr
	LocalID, PeerID     Identity // zero Identity: the address (IPV4_ADDR/IPV6_ADDR)
	// PSK is the pre-shared key (RFC 7296 §2.15), never logged; PubKey is
	// public-key authentication (auth_pubkey.go, cert.go). Exactly one of
	// the two is set.
	PSK    []byte
	PubKey *PubKeyAuth

	IKEProposals []IKEProposal // in order of preference
	ESPProposals []ESPProposal // in order of preference

	Mode ChildMode
	// LocalTS and PeerTS are the traffic selectors of the Child SA: for
	// GRE, LocalAddr/32 ↔ PeerAddr/32 with protocol 47; for route mode
	// 0.0.0.0/0 ↔ 0.0.0.0/0 and/or ::/0, or configured subnets.
	LocalTS, PeerTS []Selector
	// AllowNarrowing accepts a responder's narrower selectors (RFC 7296
	// §2.9) as long as they are inside LocalTS/PeerTS.
	AllowNarrowing bool

	// ForceEncap makes the gateway claim to be behind a NAT, so ESP goes in
	// UDP (strongSwan's "encap = yes"). NAT detection does the same by itself.
	ForceEncap bool
	// NATTPort and PeerNATTPort are the UDP ports of ESP-in-UDP here and at
	// the peer, where IKE moves from port 500 once a NAT is seen (RFC 7296
	// §2.23, RFC 3948); 0 means 4500. Only a port 500 moves: an IKE SA
	// that a NAT or the configuration put on another port stays there, as
	// strongSwan's port floating does.
	NATTPort, PeerNATTPort uint16
	// StartNATT makes an IKE SA this side initiates start on the NAT-T
	// ports, from NATTPort to PeerNATTPort behind the non-ESP marker,
	// instead of on port 500 (RFC 7296 §2.23: "An initiator can use port
	// 4500 for both IKE and ESP, regardless of whether or not there is a
	// NAT, even at the beginning of IKE"). Neither side then needs port
	// 500, which only root may open.
	StartNATT bool
	// NATKeepalive is the interval of NAT keepalives when a NAT is seen
	// (RFC 3948 §4); 0 means 20 s.
	NATKeepalive time.Duration

	IKELifetime   time.Duration // rekey the IKE SA after this; 0 means 24 h
	ChildLifetime time.Duration // rekey the Child SA after this; 0 means 1 h
	ChildBytes    uint64        // and after this many bytes; 0 means no limit
	// IKEHardLifetime and ChildHardLifetime are the hard lifetimes: an SA
	// that has not been rekeyed by then (the peer keeps refusing) is
	// deleted, its keys are no longer used. 0 means 1.1 times the time
	// this side rekeys at (strongSwan's default); otherwise they must be
	// longer than IKELifetime and ChildLifetime.
	IKEHardLifetime   time.Duration
	ChildHardLifetime time.Duration

	// DPD is the liveness check interval (an empty INFORMATIONAL request
	// when nothing was received for that long); 0 disables it.
	DPD time.Duration
	// RetransmitTimeout is the first retransmission timeout (doubling
	// each time, RFC 7296 §2.1); 0 means 2 s. RetransmitTries is how many
	// retransmissions before giving up; 0 means 5.
	RetransmitTimeout time.Duration
	RetransmitTries   int
	// Fragmentation offers IKEv2 fragmentation (RFC 7383); FragmentSize is
	// the largest IKE datagram it sends (0 means 1280).
	Fragmentation bool
	FragmentSize  int

	// Gate is the pre-authentication filter the runner shares between its
	// sessions (gate.go); the session publishes its half-open SAs and SPIs
	// to it. nil: the session makes its own, with the default thresholds.
	Gate *Gate
	// SPIInUse reports whether an inbound ESP SPI is already used in the
	// dataplane (by another tunnel or an SA not yet removed); the session
	// chooses no such SPI for a new Child SA. It is called on the session's
	// goroutine. nil: only the session's own SPIs are avoided.
	SPIInUse func(spi uint32) bool
}
