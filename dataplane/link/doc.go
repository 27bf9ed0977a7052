// Package link provides the outer transports of the dataplane: the sockets
// that carry ESP packets between the two gateways. Each implements
// wireguard-go's conn.Bind, so the dataplane moves batches of outer packets
// the same way whichever transport a tunnel uses.
//
//   - NewRawESP: ESP directly over IP (protocol 50, RFC 4303), on raw sockets
//     with batched receive and send (recvmmsg/sendmmsg on Linux).
//   - NewMemoryPair: two Binds joined by an in-memory cable, for tests and
//     the in-process throughput benchmark.
//
// ESP in UDP (RFC 3948) needs nothing from this package: it uses
// conn.NewStdNetBind, with its UDP GSO/GRO offloads, unchanged.
//
// Both transports use *Endpoint as their conn.Endpoint and accept no other
// type.
package link
