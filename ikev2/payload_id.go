package ikev2

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"net/netip"
	"strconv"
)

// The Identification payload body (RFC 7296 §3.5, Figure 11):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   ID Type     |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Identification Data                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const idHeaderLen = 4

// Identity is an IKE identity: an ID Type and its Identification Data
// (RFC 7296 §3.5).
type Identity struct {
	IDType IDType
	Data   []byte
}

// IdentityAddr returns the ID_IPV4_ADDR or ID_IPV6_ADDR identity of a; an
// IPv4-mapped IPv6 address becomes ID_IPV4_ADDR. It panics if a is not
// valid.
func IdentityAddr(a netip.Addr) Identity {
	if !a.IsValid() {
		panic("ikev2: IdentityAddr: invalid address")
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return Identity{IDType: IDIPv4Addr, Data: b[:]}
	}
	b := a.As16()
	return Identity{IDType: IDIPv6Addr, Data: b[:]}
}

// IdentityFQDN returns the ID_FQDN identity of a domain name, e.g.
// "gw.example.org" (no trailing dot or terminator, RFC 7296 §3.5).
func IdentityFQDN(name string) Identity {
	return Identity{IDType: IDFQDN, Data: []byte(name)}
}

// IdentityRFC822 returns the ID_RFC822_ADDR (USER_FQDN) identity of an
// e-mail address, e.g. "gw@example.org".
func IdentityRFC822(addr string) Identity {
	return Identity{IDType: IDRFC822Addr, Data: []byte(addr)}
}

// IdentityKeyID returns the ID_KEY_ID identity of opaque octets.
func IdentityKeyID(id []byte) Identity {
	return Identity{IDType: IDKeyID, Data: clone(id)}
}

// Addr returns the address of an ID_IPV4_ADDR or ID_IPV6_ADDR identity.
func (id Identity) Addr() (netip.Addr, bool) {
	switch {
	case id.IDType == IDIPv4Addr && len(id.Data) == 4:
		return netip.AddrFrom4([4]byte(id.Data)), true
	case id.IDType == IDIPv6Addr && len(id.Data) == 16:
		return netip.AddrFrom16([16]byte(id.Data)), true
	}
	return netip.Addr{}, false
}

// Equal reports whether id and o have the same type and data.
func (id Identity) Equal(o Identity) bool {
	return id.IDType == o.IDType && bytes.Equal(id.Data, o.Data)
}

// String returns the identity for logs: an address, a domain name or
// e-mail address (quoted if it holds anything but printable ASCII),
// "keyid:" and hex, or the ID type's name, a colon and hex.
func (id Identity) String() string {
	switch id.IDType {
	case IDIPv4Addr, IDIPv6Addr:
		if a, ok := id.Addr(); ok {
			return a.String()
		}
	case IDFQDN, IDRFC822Addr:
		for _, c := range id.Data {
			if c <= ' ' || c > '~' {
				return strconv.Quote(string(id.Data))
			}
		}
		if len(id.Data) == 0 {
			return `""`
		}
		return string(id.Data)
	case IDKeyID:
		return "keyid:" + hex.EncodeToString(id.Data)
	case IDDERASN1DN:
		var rdn pkix.RDNSequence
		if rest, err := asn1.Unmarshal(id.Data, &rdn); err == nil && len(rest) == 0 {
			var n pkix.Name
			n.FillFromRDNSequence(&rdn)
			if str := n.String(); str != "" {
				return str
			}
		}
	}
	return id.IDType.String() + ":" + hex.EncodeToString(id.Data)
}

// IDPayload is an Identification payload, IDi or IDr (RFC 7296 §3.5).
// Its encoded body is the "RestOfInitIDPayload" / "RestOfRespIDPayload"
// that the AUTH payload signs (§2.15).
type IDPayload struct {
	Responder bool // IDr, else IDi
	Identity
}

// Type returns PayloadIDr if p.Responder, else PayloadIDi.
func (p *IDPayload) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

// Encode appends the payload body.
func (p *IDPayload) Encode(b []byte) []byte {
	b = append(b, byte(p.IDType), 0, 0, 0)
	return append(b, p.Data...)
}

// Decode decodes an ID payload body, keeping p.Responder. The data of an
// ID_IPV4_ADDR must be 4 bytes and of an ID_IPV6_ADDR 16 bytes.
func (p *IDPayload) Decode(body []byte) error {
	name := p.Type().String()
	if err := checkMin(name, body, idHeaderLen); err != nil {
		return err
	}
	p.IDType = IDType(body[0])
	p.Data = clone(body[idHeaderLen:])
	want := 0
	switch p.IDType {
	case IDIPv4Addr:
		want = 4
	case IDIPv6Addr:
		want = 16
	}
	if want != 0 && len(p.Data) != want {
		return syntaxErrorf("%s payload: %v data length %d, want %d", name, p.IDType, len(p.Data), want)
	}
	return nil
}
