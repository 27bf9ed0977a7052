package link

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// cmsg builds one control message as Linux lays it out (cmsghdr, data,
// padding to size_t).
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, cmsgHeaderLen+cmsgAlign(len(data)))
	if cmsgLenSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(cmsgHeaderLen+len(data)))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(cmsgHeaderLen+len(data)))
	}
	binary.NativeEndian.PutUint32(b[cmsgLenSize:], uint32(level))
	binary.NativeEndian.PutUint32(b[cmsgLenSize+4:], uint32(typ))
	copy(b[cmsgHeaderLen:], data)
	return b
}

// extErr builds struct sock_extended_err followed by the offender's
// sockaddr.
func extErr(origin, typ, code uint8, info uint32, from netip.Addr) []byte {
	b := make([]byte, sizeofSockExtendedErr)
	binary.NativeEndian.PutUint32(b, 90) // EMSGSIZE
	b[4], b[5], b[6] = origin, typ, code
	binary.NativeEndian.PutUint32(b[8:], info)
	if from.Is4() {
		sa := make([]byte, 16)
		binary.NativeEndian.PutUint16(sa, afInet)
		copy(sa[4:], from.AsSlice())
		b = append(b, sa...)
	} else if from.Is6() {
		sa := make([]byte, 28)
		binary.NativeEndian.PutUint16(sa, afInet6)
		copy(sa[8:], from.AsSlice())
		b = append(b, sa...)
	}
	return b
}

func TestParseICMPError(t *testing.T) {
	rtr4, rtr6 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::fe")
	peer4, peer6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")
	esp := []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1}
	for _, tc := range []struct {
		name string
		data []byte
		oob  []byte
		dst  netip.Addr
		want *ICMPError // nil: not an ICMP error
	}{
		{"frag needed", esp, cmsg(solIP, cmsgIPRecvErr, extErr(eeOriginICMP, 3, 4, 1400, rtr4)), peer4,
			&ICMPError{Dst: peer4, From: rtr4, Type: 3, Code: 4, MTU: 1400, SPI: 0xdeadbeef, HasSPI: true}},
		{"packet too big", esp, cmsg(solIPv6, cmsgIPv6RecErr, extErr(eeOriginICMP6, 2, 0, 1280, rtr6)), peer6,
			&ICMPError{Dst: peer6, From: rtr6, Is6: true, Type: 2, MTU: 1280, SPI: 0xdeadbeef, HasSPI: true}},
		{"host unreachable, short quote", esp[:2], cmsg(solIP, cmsgIPRecvErr, extErr(eeOriginICMP, 3, 1, 0, rtr4)), peer4,
			&ICMPError{Dst: peer4, From: rtr4, Type: 3, Code: 1}},
		{"after another cmsg", esp, append(cmsg(solIP, 8, []byte{1, 2, 3, 4}), cmsg(solIP, cmsgIPRecvErr, extErr(eeOriginICMP, 3, 4, 576, netip.Addr{}))...), peer4,
			&ICMPError{Dst: peer4, Type: 3, Code: 4, MTU: 576, SPI: 0xdeadbeef, HasSPI: true}},
		{"mtu beyond 16 bits", esp, cmsg(solIP, cmsgIPRecvErr, extErr(eeOriginICMP, 3, 4, 1<<20, rtr4)), peer4,
			&ICMPError{Dst: peer4, From: rtr4, Type: 3, Code: 4, SPI: 0xdeadbeef, HasSPI: true}},
		{"local error", esp, cmsg(solIP, cmsgIPRecvErr, extErr(1, 0, 0, 1400, netip.Addr{})), peer4, nil},
		{"no cmsg", esp, nil, peer4, nil},
		{"short ext err", esp, cmsg(solIP, cmsgIPRecvErr, make([]byte, 8)), peer4, nil},
		{"length beyond buffer", esp, cmsg(solIP, cmsgIPRecvErr, extErr(eeOriginICMP, 3, 4, 1400, rtr4))[:cmsgHeaderLen+4], peer4, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := parseICMPError(tc.data, tc.oob, tc.dst)
			if tc.want == nil {
				if ok {
					t.Errorf("parsed %+v; want nothing", e)
				}
				return
			}
			if !ok || e != *tc.want {
				t.Errorf("parsed %+v, %v; want %+v", e, ok, *tc.want)
			}
		})
	}
}

// FuzzParseICMPError: whatever the error queue holds, parsing neither
// panics nor reports an MTU beyond 16 bits.
func FuzzParseICMPError(f *testing.F) {
	rtr := netip.MustParseAddr("198.51.100.1")
	f.Add([]byte{1, 2, 3, 4}, cmsg(solIP, cmsgIPRecvErr, extErr(eeOriginICMP, 3, 4, 1400, rtr)))
	f.Add([]byte{1, 2, 3, 4}, cmsg(solIPv6, cmsgIPv6RecErr, extErr(eeOriginICMP6, 2, 0, 1280, netip.MustParseAddr("2001:db8::1"))))
	f.Add([]byte{}, append(cmsg(solIP, 8, []byte{1}), cmsg(solIP, cmsgIPRecvErr, extErr(eeOriginICMP, 3, 4, 1400, rtr))...))
	f.Add([]byte{}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data, oob []byte) {
		e, ok := parseICMPError(data, oob, netip.MustParseAddr("192.0.2.2"))
		if ok && (e.MTU < 0 || e.MTU > 0xffff) {
			t.Fatalf("MTU %d", e.MTU)
		}
	})
}
