package ikev2

import (
	"fmt"

	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

// IKE message fragmentation (RFC 7383). A protected message too large for
// the path is sent as several messages, each with the same IKE header and
// one Encrypted Fragment (SKF) payload protected on its own (§2.5); the
// receiver authenticates every fragment before keeping it and rebuilds the
// inner payload chain (§2.6).

// skfOverhead is what a fragment message carries besides its SK data: the
// IKE header, the SKF payload's generic header and its Fragment Number and
// Total Fragments fields.
const skfOverhead = HeaderLen + GenericHeaderLen + skfHeaderLen

// Limits of a [Reassembler] whose fields are zero.
const (
	DefaultMaxFragments = 64    // largest Total Fragments accepted
	DefaultMaxSize      = 65535 // largest reassembled inner payload chain, in bytes
)

// Fragment splits a protected message into SKF messages of at most
// maxDatagram bytes each (RFC 7383 §2.5). maxDatagram counts the IKE
// message only: the caller leaves room for the IP and UDP headers and, on
// port 4500, the non-ESP marker. hdr is the IKE header every fragment
// carries (exchange, flags, SPIs, the message ID); first is the type of the
// first inner payload, which only fragment 1 carries in its Next Payload
// field; inner is the encoded inner payload chain (see
// [EncodePayloadChain]). The chain is cut into near-equal pieces, and c
// protects each fragment with its own header and SKF fields as associated
// data, like an SK payload.
//
// It returns the fragment messages, numbered from 1, each in its own
// slice. An empty chain gives one fragment. It fails if maxDatagram leaves
// no room for a byte of payload or the message would need more than 65535
// fragments.
func Fragment(hdr Header, first PayloadType, inner []byte, c ikecrypto.SKCipher, maxDatagram int) ([][]byte, error) {
	room := c.MaxPlaintextLen(maxDatagram - skfOverhead)
	if room < 1 {
		return nil, fmt.Errorf("ikev2: Fragment: fragments of %d bytes leave no room for payloads", maxDatagram)
	}
	n := max(1, (len(inner)+room-1)/room)
	if n > 0xffff {
		return nil, fmt.Errorf("ikev2: Fragment: %d bytes need %d fragments of %d bytes, more than 65535", len(inner), n, maxDatagram)
	}
	per := (len(inner) + n - 1) / n
	frags := make([][]byte, 0, n)
	for i := range n {
		piece := inner[min(i*per, len(inner)):min((i+1)*per, len(inner))]
		f := &EncryptedFragmentPayload{FragmentNumber: uint16(i + 1), TotalFragments: uint16(n)}
		if i == 0 {
			f.NextPayload = first
		}
		m := Message{Header: hdr, Payloads: []Payload{f}}
		sealed := c.SealedLen(len(piece))
		out, l := m.EncodeForSeal(make([]byte, 0, skfOverhead+sealed), sealed)
		copy(out[l.Data+c.IVLen():], piece)
		if err := c.Seal(out[l.Start:l.End], l.Data-l.Start, len(piece)); err != nil {
			return nil, fmt.Errorf("ikev2: Fragment: %w", err)
		}
		frags = append(frags, out)
	}
	return frags, nil
}

// Reassembler collects the SKF fragments of one protected message
// (RFC 7383 §2.6). Each fragment is authenticated before it is kept;
// duplicates are ignored; fragments with bad numbers, over the limits, or
// with a smaller Total Fragments than those kept are dropped with an error.
// A fragment that authenticates but belongs to another message (another
// message ID, exchange, flags or SPIs), or has a larger Total Fragments
// (the sender fragmented a retransmission smaller, §2.5.1), drops what was
// kept and starts the collection anew with it: a stale collection never
// blocks the next message.
//
// The zero value is ready to use. A Reassembler is not safe for concurrent
// use. The caller checks the message ID before handing a fragment over (a
// retransmitted request is answered from the cached response, on its
// fragment 1 only, §2.6.1), and calls Reset when it gives up on a message.
type Reassembler struct {
	// MaxFragments is the largest Total Fragments accepted; 0 means
	// DefaultMaxFragments.
	MaxFragments int
	// MaxSize is the largest reassembled inner payload chain; 0 means
	// DefaultMaxSize.
	MaxSize int

	hdr   Header // of the message being collected
	total int    // Total Fragments; 0 when nothing is collected
	first PayloadType
	frags [][]byte // by Fragment Number - 1; nil: not received
	have  int      // fragments received
	size  int      // bytes received
}

// Reset drops the fragments collected so far.
func (r *Reassembler) Reset() {
	clear(r.frags)
	r.frags = r.frags[:0]
	r.hdr, r.total, r.first, r.have, r.size = Header{}, 0, PayloadNone, 0, 0
}

// Add processes one fragment: msg is the whole received message (without
// the non-ESP marker), hdr its header and f its SKF payload, as
// [ParseMessage] returned them (f.Data aliases the end of msg); c is the
// cipher of the peer's direction. Add decrypts msg in place.
//
// When the fragment completes the message, Add returns complete = true,
// the first inner payload's type (from fragment 1) and the reassembled
// inner payload chain, in a new slice, for [ParsePayloadChain]; the
// Reassembler is then empty again. Otherwise it returns complete = false
// and, if the fragment was dropped, an error; a duplicate is ignored
// without error.
func (r *Reassembler) Add(msg []byte, hdr Header, f *EncryptedFragmentPayload, c ikecrypto.SKCipher) (complete bool, first PayloadType, inner []byte, err error) {
	if f == nil {
		return false, 0, nil, fmt.Errorf("ikev2: SKF: no fragment")
	}
	num, total := int(f.FragmentNumber), int(f.TotalFragments)
	if num < 1 || num > total {
		return false, 0, nil, fmt.Errorf("ikev2: SKF: fragment number %d of %d", num, total)
	}
	maxFrags := r.MaxFragments
	if maxFrags <= 0 {
		maxFrags = DefaultMaxFragments
	}
	if total > maxFrags {
		return false, 0, nil, fmt.Errorf("ikev2: SKF: message in %d fragments, more than the limit of %d", total, maxFrags)
	}
	sameMsg := r.total != 0 && hdr == r.hdr
	if sameMsg {
		if total < r.total {
			return false, 0, nil, fmt.Errorf("ikev2: SKF: fragment %d of %d while collecting %d fragments", num, total, r.total)
		}
		if total == r.total && r.frags[num-1] != nil {
			return false, 0, nil, nil // duplicate (§2.6.1)
		}
	}
	dataOff := len(msg) - len(f.Data)
	if len(f.Data) == 0 || dataOff < skfOverhead {
		return false, 0, nil, fmt.Errorf("ikev2: SKF: fragment data of %d bytes in a %d-byte message", len(f.Data), len(msg))
	}
	plain, err := c.Open(msg, dataOff)
	if err != nil {
		return false, 0, nil, fmt.Errorf("ikev2: SKF: fragment %d of %d: %w", num, total, err)
	}
	if !sameMsg || total != r.total {
		// First fragment of a message, or the first of a retransmission
		// in more, smaller fragments.
		r.Reset()
		r.hdr, r.total = hdr, total
		if cap(r.frags) >= total {
			r.frags = r.frags[:total]
		} else {
			r.frags = make([][]byte, total)
		}
	}
	maxSize := r.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if r.size+len(plain) > maxSize {
		r.Reset()
		return false, 0, nil, fmt.Errorf("ikev2: SKF: reassembled message exceeds %d bytes", maxSize)
	}
	r.frags[num-1] = append(make([]byte, 0, len(plain)), plain...)
	r.have++
	r.size += len(plain)
	if num == 1 {
		r.first = f.NextPayload
	}
	if r.have < r.total {
		return false, 0, nil, nil
	}
	inner = make([]byte, 0, r.size)
	for _, p := range r.frags {
		inner = append(inner, p...)
	}
	first = r.first
	r.Reset()
	return true, first, inner, nil
}
