// Command rawceil measures how fast this host moves bare packets from one
// network namespace to another: no crypto, no TUN device, no TCP. It is
// the "raw IP ceiling" row of bench/e2e/run.sh, what a raw ESP tunnel
// could reach at best on the same veth pair.
//
// Run the receiver first, then the sender, with the same -dst (the
// receiver's address):
//
//	rawceil -mode recv -dst 192.0.2.2 -size 1400 -t 10s    # in B
//	rawceil -mode send -dst 192.0.2.2 -size 1400 -t 10s    # in A
//
// With -proto esp (the default) both ends use a raw IP socket of protocol
// 50 (ip(7), raw(7)): the sender gives the kernel packets of -size bytes
// of payload (the kernel adds the IP header), in sendmmsg batches of 64;
// the receiver reads them with recvmmsg (MSG_WAITFORONE, batches of 64).
// With -proto udp the same is done with UDP datagrams of -size bytes to
// -port (no GSO, no GRO).
//
// With -tx packet (IPv4, -proto esp, sender only) the sender skips the
// kernel's IP output path: it writes whole IPv4 packets of protocol 50 to
// an AF_PACKET socket on -dev addressed to the link-layer address -dstmac
// (packet(7)), with PACKET_QDISC_BYPASS, in sendmmsg batches of 64: the
// fastest way a user-space ESP sender can hand packets to a device short
// of AF_XDP. The receiver is the same raw socket.
//
// Each side prints one JSON line to stdout:
//
//	{"mode":"recv","proto":"esp","size":1400,"packets":N,"bytes":B,"seconds":S}
//
// bytes counts payload bytes (without the IP header). The sender counts
// what sendmmsg accepted over -t. The receiver waits up to -wait for the
// first packet, then counts until no packet has come for -idle or -t has
// passed since the first one; seconds runs from its first packet to its
// last, so packets/seconds is the rate at which packets arrived. The
// receiver prints "rawceil: ready" to stderr once its socket is bound.
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"io"
	"net"
	"net/netip"
	"os"
	"time"
)

// batchSize is the number of messages per sendmmsg/recvmmsg call.
const batchSize = 64

// config is what the command line asks for, checked by parseArgs.
type config struct {
	mode  string // "send" or "recv"
	proto string // "esp" or "udp"
	tx    string // send: "socket" or "packet"
	dev   string // -tx packet: the interface
	mac   net.HardwareAddr
	dst   netip.Addr
	port  int
	size  int
	dur   time.Duration
	wait  time.Duration // recv: for the first packet
	idle  time.Duration // recv: the end of the stream
}

// result is the JSON line each side prints.
type result struct {
	Mode    string  `json:"mode"`
	Proto   string  `json:"proto"`
	Size    int     `json:"size"`
	Packets uint64  `json:"packets"`
	Bytes   uint64  `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// maxSize is the largest payload: an IPv4 packet is at most 65535 bytes,
// less its 20-byte header (and a UDP header of 8 with -proto udp).
const maxSize = 65535 - 20 - 8

func parseArgs(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("rawceil", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var dst string
	fs.StringVar(&c.mode, "mode", "", "send or recv")
	fs.StringVar(&c.proto, "proto", "esp", "esp (raw IP protocol 50) or udp")
	fs.StringVar(&c.tx, "tx", "socket", "send: socket (the protocol's own socket) or packet (AF_PACKET, IPv4 ESP only)")
	fs.StringVar(&c.dev, "dev", "", "-tx packet: the interface to send on")
	var mac string
	fs.StringVar(&mac, "dstmac", "", "-tx packet: the receiver's link-layer address")
	fs.StringVar(&dst, "dst", "", "the receiver's address (IPv4 or IPv6)")
	fs.IntVar(&c.port, "port", 4500, "UDP port of the receiver, with -proto udp")
	fs.IntVar(&c.size, "size", 1400, "payload bytes per packet (without IP and UDP headers)")
	fs.DurationVar(&c.dur, "t", 10*time.Second, "how long to send; the receiver counts at most this long")
	fs.DurationVar(&c.wait, "wait", 10*time.Second, "recv: how long to wait for the first packet")
	fs.DurationVar(&c.idle, "idle", 500*time.Millisecond, "recv: the stream has ended when no packet came for this long")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("rawceil: unexpected argument %q", fs.Arg(0))
	}
	if c.mode != "send" && c.mode != "recv" {
		return config{}, fmt.Errorf("rawceil: -mode: %q (expected send or recv)", c.mode)
	}
	if c.proto != "esp" && c.proto != "udp" {
		return config{}, fmt.Errorf("rawceil: -proto: %q (expected esp or udp)", c.proto)
	}
	a, err := netip.ParseAddr(dst)
	if err != nil || a.Zone() != "" {
		return config{}, fmt.Errorf("rawceil: -dst: %q (expected an IPv4 or IPv6 address)", dst)
	}
	c.dst = a.Unmap()
	if c.port < 1 || c.port > 65535 {
		return config{}, fmt.Errorf("rawceil: -port: %d (expected 1 to 65535)", c.port)
	}
	if c.size < 1 || c.size > maxSize {
		return config{}, fmt.Errorf("rawceil: -size: %d (expected 1 to %d)", c.size, maxSize)
	}
	if c.dur <= 0 {
		return config{}, fmt.Errorf("rawceil: -t: %v (expected a positive duration)", c.dur)
	}
	switch c.tx {
	case "socket":
	case "packet":
		if c.mode != "send" || c.proto != "esp" || !c.dst.Is4() {
			return config{}, errors.New("rawceil: -tx packet is for -mode send, -proto esp and an IPv4 -dst")
		}
		if c.dev == "" {
			return config{}, errors.New("rawceil: -tx packet needs -dev (the interface to send on)")
		}
		if c.mac, err = net.ParseMAC(mac); err != nil || len(c.mac) != 6 {
			return config{}, fmt.Errorf("rawceil: -dstmac: %q (expected an Ethernet address like 02:00:00:00:00:01)", mac)
		}
		if c.size > 65535-20 {
			return config{}, fmt.Errorf("rawceil: -size: %d (expected at most %d with -tx packet)", c.size, 65535-20)
		}
	default:
		return config{}, fmt.Errorf("rawceil: -tx: %q (expected socket or packet)", c.tx)
	}
	if c.wait <= 0 || c.idle <= 0 {
		return config{}, errors.New("rawceil: -wait and -idle must be positive durations")
	}
	return c, nil
}

func main() {
	c, err := parseArgs(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var r result
	switch {
	case c.mode == "send" && c.tx == "packet":
		r, err = sendPacket(c)
	case c.mode == "send":
		r, err = send(c)
	default:
		r, err = recv(c, func() { fmt.Fprintln(os.Stderr, "rawceil: ready") })
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r.Mode, r.Proto, r.Size = c.mode, c.proto, c.size
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
}

// ipv4Header writes an IPv4 header (RFC 791 §3.1) into h[:20]: DF, TTL
// 64, the given protocol and total length, and the checksum.
func ipv4Header(h []byte, src, dst [4]byte, protocol uint8, totalLen int) {
	ip := header.IPv4(h)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(totalLen),
		Flags:       header.IPv4FlagDontFragment,
		TTL:         64,
		Protocol:    protocol,
		SrcAddr:     tcpip.AddrFrom4(src),
		DstAddr:     tcpip.AddrFrom4(dst),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
}

// htons is v in network byte order, as the socket calls take protocol
// numbers.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
