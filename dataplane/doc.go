// Package dataplane moves a gateway's packets: inner packets from the TUN
// device through GRE and ESP to the outer socket, and back. It does the
// encryption itself, with batched I/O and one encryption and one decryption
// worker per core, modelled on wireguard-go's device package.
//
// One packet's path reads top to bottom in two files:
//
//	send.go      TUN device → selectors → GRE → ESP seal → socket (outbound, three stages)
//	receive.go   socket → SPI lookup → outer source → ESP open → anti-replay → GRE →
//	             selectors → TUN (inbound, three stages)
//
// and around them:
//
//	device.go    Device: the tunnels, the shared outer sockets, the inbound SA table, the workers
//	tunnel.go    Tunnel: one tunnel's SAs, outer path and counters; the IKE-facing methods
//	remove.go    Device.RemoveTunnel: one tunnel out of a running Device (reload)
//	config.go    TunnelConfig: mode (gre-transport, gre-tunnel, route) and transport (esp, udp)
//	selector.go  traffic selectors (RFC 4301 §4.4.1) and the prefix table that checks them
//	mtu.go       the per-packet overhead and the inner MTU and MSS derived from it
//	pathmtu.go   the outer path MTU learned from the kernel, and stage 1b: what a
//	             packet too large for it becomes (ICMP, fragments before encryption)
//	icmp.go      the ICMP "fragmentation needed" / "packet too big" sent to inner senders
//	inline.go    small batches sealed and opened by the goroutine that read them
//	pools.go     the buffers: what holds memory, and the bounds per tunnel and core
//	gso.go       staging the first packet of each UDP GSO run in a large buffer
//	gro.go       staging the first packet of each TUN GRO run in a large buffer
//	errlog.go    summaries of repeated errors (nothing is logged per packet)
//
// The outer sockets are wireguard-go conn.Binds: its StdNetBind for
// ESP-in-UDP (sendmmsg/recvmmsg with UDP GSO/GRO), and package link's raw
// ESP socket and in-memory link. TCP MSS clamping is in package mss.
//
// The dataplane knows nothing of IKE message formats: IKE installs and
// removes SAs, with their negotiated traffic selectors, through
// Tunnel.SetOutboundSA, AddInboundSA, RemoveInboundSA and SetOuter, and
// exchanges its messages on the ESP-in-UDP socket through Options.IKE and
// Device.SendUDP.
package dataplane
