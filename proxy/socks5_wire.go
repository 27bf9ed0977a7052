package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// SOCKS version 5 (RFC 1928) and its username/password subnegotiation
// (RFC 1929): the messages, their constants, and codecs that read them from
// a stream or a datagram. Every length on the wire is one byte, so no
// message read here is longer than 515 bytes.

const socksVersion = 5

// Authentication methods (RFC 1928 §3).
const (
	methodNone         = 0x00
	methodUserPass     = 0x02
	methodNoAcceptable = 0xff
)

// Commands (RFC 1928 §4).
const (
	cmdConnect      = 0x01
	cmdBind         = 0x02
	cmdUDPAssociate = 0x03
)

// Address types (RFC 1928 §5).
const (
	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// Reply codes (RFC 1928 §6).
const (
	repSucceeded           = 0x00
	repGeneralFailure      = 0x01
	repNotAllowed          = 0x02
	repNetworkUnreachable  = 0x03
	repHostUnreachable     = 0x04
	repConnectionRefused   = 0x05
	repTTLExpired          = 0x06
	repCommandNotSupported = 0x07
	repAddressNotSupported = 0x08
)

// Username/password subnegotiation (RFC 1929 §2).
const (
	userPassVersion = 0x01
	userPassSuccess = 0x00
	userPassFailure = 0x01
)

// errAddressType is a request or datagram with an address type other than
// IPv4, domain name or IPv6: the server replies repAddressNotSupported.
var errAddressType = errors.New("proxy: SOCKS5 address type not supported")

// socksAddr is DST.ADDR and DST.PORT of a request or datagram: an IP
// address or a domain name, and a port.
type socksAddr struct {
	IP   netip.Addr // valid unless Name is set
	Name string     // a domain name, 1 to 255 bytes
	Port uint16
}

func (a socksAddr) String() string {
	if a.Name != "" {
		return a.Name + ":" + strconv.Itoa(int(a.Port))
	}
	return netip.AddrPortFrom(a.IP, a.Port).String()
}

// readGreeting reads the client's version identifier/method selection
// message (RFC 1928 §3):
//
//	+----+----------+----------+
//	|VER | NMETHODS | METHODS  |
//	+----+----------+----------+
//	| 1  |    1     | 1 to 255 |
//	+----+----------+----------+
func readGreeting(r io.Reader) (methods []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	if h[0] != socksVersion {
		return nil, fmt.Errorf("proxy: SOCKS version %d, want 5", h[0])
	}
	if h[1] == 0 {
		return nil, errors.New("proxy: SOCKS5 greeting offers no methods")
	}
	methods = make([]byte, h[1])
	if _, err := io.ReadFull(r, methods); err != nil {
		return nil, err
	}
	return methods, nil
}

// readUserPass reads a username/password request (RFC 1929 §2):
//
//	+----+------+----------+------+----------+
//	|VER | ULEN |  UNAME   | PLEN |  PASSWD  |
//	+----+------+----------+------+----------+
//	| 1  |  1   | 1 to 255 |  1   | 1 to 255 |
//	+----+------+----------+------+----------+
func readUserPass(r io.Reader) (user, password string, err error) {
	var b [256]byte
	if _, err := io.ReadFull(r, b[:2]); err != nil {
		return "", "", err
	}
	if b[0] != userPassVersion {
		return "", "", fmt.Errorf("proxy: SOCKS5 username/password version %d, want 1", b[0])
	}
	ulen := int(b[1])
	if _, err := io.ReadFull(r, b[:ulen+1]); err != nil {
		return "", "", err
	}
	user = string(b[:ulen])
	plen := int(b[ulen])
	if _, err := io.ReadFull(r, b[:plen]); err != nil {
		return "", "", err
	}
	return user, string(b[:plen]), nil
}

// readRequest reads a request (RFC 1928 §4):
//
//	+----+-----+-------+------+----------+----------+
//	|VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
//	+----+-----+-------+------+----------+----------+
//	| 1  |  1  | X'00' |  1   | Variable |    2     |
//	+----+-----+-------+------+----------+----------+
//
// An unknown address type is errAddressType, after which the request's end
// cannot be known.
func readRequest(r io.Reader) (cmd byte, addr socksAddr, err error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, socksAddr{}, err
	}
	if h[0] != socksVersion {
		return 0, socksAddr{}, fmt.Errorf("proxy: SOCKS version %d in request, want 5", h[0])
	}
	addr, err = readAddr(r, h[3])
	return h[1], addr, err
}

// readAddr reads DST.ADDR and DST.PORT of address type atyp (RFC 1928 §5).
func readAddr(r io.Reader, atyp byte) (socksAddr, error) {
	var b [257]byte
	var a socksAddr
	switch atyp {
	case atypIPv4:
		if _, err := io.ReadFull(r, b[:4+2]); err != nil {
			return a, err
		}
		a.IP = netip.AddrFrom4([4]byte(b[:4]))
		a.Port = binary.BigEndian.Uint16(b[4:])
	case atypIPv6:
		if _, err := io.ReadFull(r, b[:16+2]); err != nil {
			return a, err
		}
		a.IP = netip.AddrFrom16([16]byte(b[:16])).Unmap()
		a.Port = binary.BigEndian.Uint16(b[16:])
	case atypDomain:
		if _, err := io.ReadFull(r, b[:1]); err != nil {
			return a, err
		}
		n := int(b[0])
		if _, err := io.ReadFull(r, b[:n+2]); err != nil {
			return a, err
		}
		if n == 0 {
			return a, errors.New("proxy: SOCKS5 empty domain name")
		}
		a.Name = string(b[:n])
		a.Port = binary.BigEndian.Uint16(b[n:])
		// A name that is an address literal is the address.
		if ip, err := netip.ParseAddr(a.Name); err == nil {
			a.IP, a.Name = ip.Unmap(), ""
		}
	default:
		return a, errAddressType
	}
	return a, nil
}

// appendAddr appends ATYP, the address and the port of ap.
func appendAddr(b []byte, ap netip.AddrPort) []byte {
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		a := ip.As4()
		b = append(append(b, atypIPv4), a[:]...)
	} else {
		a := ip.As16() // the zero Addr too: "::"
		b = append(append(b, atypIPv6), a[:]...)
	}
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

// appendReply appends a reply (RFC 1928 §6) with BND.ADDR and BND.PORT
// from bound; the zero AddrPort encodes as 0.0.0.0:0.
//
//	+----+-----+-------+------+----------+----------+
//	|VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
//	+----+-----+-------+------+----------+----------+
func appendReply(b []byte, rep byte, bound netip.AddrPort) []byte {
	if !bound.Addr().IsValid() {
		bound = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	return appendAddr(append(b, socksVersion, rep, 0), bound)
}

// parseUDPHeader parses the header of a datagram from the client to the UDP
// relay (RFC 1928 §7) and returns the destination and the data:
//
//	+----+------+------+----------+----------+----------+
//	|RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//	+----+------+------+----------+----------+----------+
//	| 2  |  1   |  1   | Variable |    2     | Variable |
//	+----+------+------+----------+----------+----------+
//
// It refuses fragments (FRAG other than 0), which an implementation that
// does not reassemble must drop (§7), and a reserved field other than 0.
// data aliases b. It allocates only for a domain name.
func parseUDPHeader(b []byte) (dst socksAddr, data []byte, err error) {
	short := errors.New("proxy: SOCKS5 UDP datagram shorter than its header")
	if len(b) < 4 {
		return dst, nil, short
	}
	if b[0] != 0 || b[1] != 0 {
		return dst, nil, errors.New("proxy: SOCKS5 UDP datagram with a reserved field set")
	}
	if b[2] != 0 {
		return dst, nil, errors.New("proxy: SOCKS5 UDP fragment (not supported)")
	}
	atyp, b := b[3], b[4:]
	var n int // address length
	switch atyp {
	case atypIPv4:
		n = 4
	case atypIPv6:
		n = 16
	case atypDomain:
		if len(b) < 1 {
			return dst, nil, short
		}
		n, b = int(b[0]), b[1:]
		if n == 0 {
			return dst, nil, errors.New("proxy: SOCKS5 empty domain name")
		}
	default:
		return dst, nil, errAddressType
	}
	if len(b) < n+2 {
		return dst, nil, short
	}
	switch atyp {
	case atypIPv4:
		dst.IP = netip.AddrFrom4([4]byte(b[:4]))
	case atypIPv6:
		dst.IP = netip.AddrFrom16([16]byte(b[:16])).Unmap()
	default:
		if ip, err := netip.ParseAddr(string(b[:n])); err == nil {
			dst.IP = ip.Unmap()
		} else {
			dst.Name = string(b[:n])
		}
	}
	dst.Port = binary.BigEndian.Uint16(b[n:])
	return dst, b[n+2:], nil
}

// appendUDPHeader appends the header of a datagram from src, for the relay's
// replies to the client.
func appendUDPHeader(b []byte, src netip.AddrPort) []byte {
	return appendAddr(append(b, 0, 0, 0), src)
}
