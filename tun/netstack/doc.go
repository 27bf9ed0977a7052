// Package netstack puts a user-space TCP/IP stack where the TUN device
// would be, for gateways that may not create one: unprivileged containers,
// sandboxes, hosts without a TUN driver. The stack is gVisor's
// (gvisor.dev/gvisor/pkg/tcpip); GRE, ESP, IKE and the dataplane are
// unchanged, because a Stack is one more tun.Device.
//
// The tunnel's inner traffic then starts and ends in this process: a program
// (or package proxy, on behalf of local users) dials, listens and resolves
// names on the far site through the Stack's DialContext, Listen,
// ListenPacket and LookupNetIP, much as with the net package. The stack
// answers ICMP echo requests to its addresses, so the far site can ping it.
//
// The files:
//
//	stack.go   Config, New, Stack: the stack and its tun.Device side
//	link.go    the stack's network interface: batched Read from a bounded
//	           outbound queue; Write through gVisor's GRO into the stack
//	net.go     DialContext, Listen, ListenPacket; errors as syscall.Errno
//	dns.go     LookupNetIP: a stub resolver that asks the far site's servers
//
// Read and Write follow the dataplane's use of a tun.Device: Read fills up
// to BatchSize buffers at the offset the dataplane gives (its headroom for
// ESP and GRE), and Write copies each packet, so the dataplane may reuse its
// buffers when Write returns.
package netstack
