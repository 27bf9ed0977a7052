// Package proxy gives local programs a way into a tunnel whose inner side is
// a user-space network stack (package tun/netstack), where no TUN device
// routes their traffic: a SOCKS5 server (RFC 1928, with UDP ASSOCIATE, and
// RFC 1929 username/password), an HTTP proxy (CONNECT and absolute-URI
// requests), and port forwards both ways, TCP and UDP.
//
// Each server takes its far side as small interfaces (Dialer,
// PacketListener, Resolver) that a *netstack.Stack implements, and its
// local side as a net.Listener or net.PacketConn, so that the same code
// forwards a local port to the far site (listen on the host, dial the
// stack) and a port of the tunnel address to a local service (listen on
// the stack, dial the host). Serve runs until its context ends, then closes
// everything it opened.
//
// Every listener is bounded (Limits): a maximum of connections or UDP flows
// beyond which new ones are refused and counted, idle timeouts, a handshake
// timeout, a dial timeout; each connection copies through two fixed 32 KiB
// buffers. What was refused or dropped is counted in Stats, not logged.
//
// The files:
//
//	proxy.go        the interfaces, Limits, Stats; the bounded listener and the relay
//	socks5_wire.go  SOCKS5 messages and their parsers
//	socks5.go       the SOCKS5 server: negotiation, CONNECT, UDP ASSOCIATE
//	http.go         the HTTP proxy
//	forward.go      TCP and UDP port forwards
package proxy
