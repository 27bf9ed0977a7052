package ikev2

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/greipsec/greipsec/ikev2/ikecrypto"
)

type skSuite struct {
	name    string
	encr    uint16
	keyBits int
	integ   uint16
}

var skSuites = []skSuite{
	{"aes128-sha256", ikecrypto.EncrAESCBC, 128, ikecrypto.IntegHMACSHA2_256_128},
	{"aes256-sha384", ikecrypto.EncrAESCBC, 256, ikecrypto.IntegHMACSHA2_384_192},
	{"aes256-sha512", ikecrypto.EncrAESCBC, 256, ikecrypto.IntegHMACSHA2_512_256},
	{"aes128gcm16", ikecrypto.EncrAESGCM16, 128, ikecrypto.IntegNone},
	{"aes256gcm16", ikecrypto.EncrAESGCM16, 256, ikecrypto.IntegNone},
	{"chacha20poly1305", ikecrypto.EncrChaCha20Poly1305, 0, ikecrypto.IntegNone},
}

// skPair returns the sender's and the receiver's cipher of one direction,
// with keys drawn from seed.
func skPair(t *testing.T, s skSuite, seed uint64) (send, recv ikecrypto.SKCipher) {
	t.Helper()
	el, il, err := ikecrypto.KeyLens(s.encr, s.keyBits, s.integ)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	ke, ka := make([]byte, el), make([]byte, il)
	for i := range ke {
		ke[i] = byte(r.Uint32())
	}
	for i := range ka {
		ka[i] = byte(r.Uint32())
	}
	if send, err = ikecrypto.NewSKCipher(s.encr, s.keyBits, s.integ, ke, ka); err != nil {
		t.Fatal(err)
	}
	if recv, err = ikecrypto.NewSKCipher(s.encr, s.keyBits, s.integ, ke, ka); err != nil {
		t.Fatal(err)
	}
	return send, recv
}

// innerChain returns an encoded payload chain of about n bytes.
func innerChain(n int) ([]Payload, []byte) {
	data := make([]byte, max(1, n-GenericHeaderLen-8-GenericHeaderLen))
	for i := range data {
		data[i] = byte(i * 7)
	}
	ps := []Payload{
		&NotifyPayload{NotifyType: NotifyInitialContact},
		&VendorIDPayload{ID: data},
	}
	return ps, EncodePayloadChain(nil, ps)
}

var fragHdr = Header{SPIi: 0x0102030405060708, SPIr: 0x1112131415161718, Exchange: ExchangeIKEAuth, Flags: FlagInitiator, MessageID: 1}

// receive parses one fragment message and hands it to r.
func receive(t *testing.T, r *Reassembler, msg []byte, c ikecrypto.SKCipher) (bool, PayloadType, []byte, error) {
	t.Helper()
	m, err := ParseMessage(msg)
	if err != nil {
		t.Fatalf("ParseMessage of a fragment: %v", err)
	}
	if len(m.Payloads) != 1 {
		t.Fatalf("fragment has payloads %v", m)
	}
	f, ok := m.Payloads[0].(*EncryptedFragmentPayload)
	if !ok {
		t.Fatalf("fragment payload is %T", m.Payloads[0])
	}
	if m.Header != fragHdr {
		t.Fatalf("fragment header %+v, want %+v", m.Header, fragHdr)
	}
	return r.Add(msg, m.Header, f, c)
}

func TestFragmentRoundTrip(t *testing.T) {
	for _, s := range skSuites {
		for _, size := range []int{16, 500, 1200, 1300, 3000, 10000} {
			for _, maxDatagram := range []int{100, 576, 1280} {
				send, recv := skPair(t, s, uint64(size))
				ps, inner := innerChain(size)
				frags, err := Fragment(fragHdr, ps[0].Type(), inner, send, maxDatagram)
				if err != nil {
					t.Fatalf("%s size %d max %d: %v", s.name, size, maxDatagram, err)
				}
				// Check the count: no fragment could carry more.
				room := send.MaxPlaintextLen(maxDatagram - skfOverhead)
				if want := (len(inner) + room - 1) / room; len(frags) != want {
					t.Errorf("%s size %d max %d: %d fragments, want %d", s.name, size, maxDatagram, len(frags), want)
				}
				var r Reassembler
				r.MaxFragments = 1000
				for i, msg := range frags {
					if len(msg) > maxDatagram {
						t.Errorf("%s: fragment %d is %d bytes > %d", s.name, i+1, len(msg), maxDatagram)
					}
					done, first, got, err := receive(t, &r, msg, recv)
					if err != nil {
						t.Fatalf("%s size %d: fragment %d: %v", s.name, size, i+1, err)
					}
					if done != (i == len(frags)-1) {
						t.Fatalf("%s size %d: complete=%v after fragment %d of %d", s.name, size, done, i+1, len(frags))
					}
					if !done {
						continue
					}
					if first != PayloadNotify || !bytes.Equal(got, inner) {
						t.Fatalf("%s size %d: reassembled first %v, %d bytes; want Notify, %d bytes", s.name, size, first, len(got), len(inner))
					}
					back, err := ParsePayloadChain(first, got)
					if err != nil || !reflect.DeepEqual(back, ps) {
						t.Errorf("%s size %d: parsed %v, %v", s.name, size, back, err)
					}
				}
			}
		}
	}
}

func TestFragmentFields(t *testing.T) {
	send, _ := skPair(t, skSuites[4], 1)
	ps, inner := innerChain(3000)
	frags, err := Fragment(fragHdr, ps[0].Type(), inner, send, 1280)
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) != 3 {
		t.Fatalf("%d fragments, want 3", len(frags))
	}
	for i, msg := range frags {
		m, err := ParseMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		f := m.Payloads[0].(*EncryptedFragmentPayload)
		wantNext := PayloadNone
		if i == 0 {
			wantNext = PayloadNotify
		}
		// RFC 7383 §2.5: Next Payload only in fragment 1; numbers from 1.
		if f.FragmentNumber != uint16(i+1) || f.TotalFragments != 3 || f.NextPayload != wantNext {
			t.Errorf("fragment %d: number %d of %d, next %v", i+1, f.FragmentNumber, f.TotalFragments, f.NextPayload)
		}
		if m.Header != fragHdr {
			t.Errorf("fragment %d: header %+v", i+1, m.Header)
		}
	}
	// Pieces are near equal: the fragments differ by at most one byte.
	if d := len(frags[0]) - len(frags[2]); d < 0 || d > 1 {
		t.Errorf("fragment lengths %d, %d, %d", len(frags[0]), len(frags[1]), len(frags[2]))
	}
	// An empty chain is one fragment.
	one, err := Fragment(fragHdr, PayloadNone, nil, send, 1280)
	if err != nil || len(one) != 1 {
		t.Errorf("empty chain: %d fragments, %v", len(one), err)
	}
	if _, err := Fragment(fragHdr, PayloadNotify, inner, send, skfOverhead+8+16); err == nil {
		t.Error("Fragment with no room for payloads succeeded")
	}
}

func TestReassemblerReorderDuplicate(t *testing.T) {
	for _, s := range skSuites {
		send, recv := skPair(t, s, 7)
		_, inner := innerChain(5000)
		frags, err := Fragment(fragHdr, PayloadNotify, inner, send, 576)
		if err != nil {
			t.Fatal(err)
		}
		// Reverse order, every fragment sent twice (the copies are
		// separate buffers: Add decrypts in place).
		var r Reassembler
		var got []byte
		for i := len(frags) - 1; i >= 0; i-- {
			for k := range 2 {
				done, first, in, err := receive(t, &r, bytes.Clone(frags[i]), recv)
				if err != nil {
					t.Fatalf("%s: fragment %d copy %d: %v", s.name, i+1, k, err)
				}
				if done {
					if i != 0 || k != 0 || first != PayloadNotify {
						t.Fatalf("%s: complete at fragment %d copy %d, first %v", s.name, i+1, k, first)
					}
					got = in
				}
			}
		}
		if !bytes.Equal(got, inner) {
			t.Errorf("%s: reassembled %d bytes, want %d", s.name, len(got), len(inner))
		}
	}
}

func TestReassemblerTampered(t *testing.T) {
	for _, s := range skSuites {
		send, recv := skPair(t, s, 9)
		_, inner := innerChain(2000)
		frags, err := Fragment(fragHdr, PayloadNotify, inner, send, 576)
		if err != nil {
			t.Fatal(err)
		}
		var r Reassembler
		for i, msg := range frags {
			if i == 1 {
				// Flip a bit of the ciphertext, then of the authenticated
				// Total Fragments field's neighbour: the fragment number.
				bad := bytes.Clone(msg)
				bad[len(bad)-20] ^= 1
				if _, _, _, err := receive(t, &r, bad, recv); !errors.Is(err, ikecrypto.ErrIntegrity) {
					t.Fatalf("%s: tampered fragment: %v", s.name, err)
				}
				bad = bytes.Clone(msg)
				bad[HeaderLen+GenericHeaderLen+1] = 3 // fragment number 2 -> 3
				if _, _, _, err := receive(t, &r, bad, recv); !errors.Is(err, ikecrypto.ErrIntegrity) {
					t.Fatalf("%s: renumbered fragment: %v", s.name, err)
				}
			}
			done, _, got, err := receive(t, &r, msg, recv)
			if err != nil {
				t.Fatalf("%s: fragment %d after a tampered one: %v", s.name, i+1, err)
			}
			if done && !bytes.Equal(got, inner) {
				t.Errorf("%s: tampering changed the result", s.name)
			}
		}
	}
}

func TestReassemblerLimitsAndMismatch(t *testing.T) {
	send, recv := skPair(t, skSuites[3], 3)
	_, inner := innerChain(4000)
	frags, err := Fragment(fragHdr, PayloadNotify, inner, send, 300)
	if err != nil {
		t.Fatal(err)
	}
	// Too many fragments: refused before decryption.
	r := Reassembler{MaxFragments: len(frags) - 1}
	if _, _, _, err := receive(t, &r, bytes.Clone(frags[0]), recv); err == nil || !strings.Contains(err.Error(), "more than the limit") {
		t.Errorf("too many fragments: %v", err)
	}
	// Too large when reassembled.
	r = Reassembler{MaxSize: 1000}
	var sawErr error
	for _, msg := range frags {
		if _, _, _, err := receive(t, &r, bytes.Clone(msg), recv); err != nil {
			sawErr = err
			break
		}
	}
	if sawErr == nil || !strings.Contains(sawErr.Error(), "exceeds 1000 bytes") {
		t.Errorf("oversized message: %v", sawErr)
	}

	// An authentic fragment of another message replaces a stale
	// collection: message 2 completes although message 1 never did.
	r = Reassembler{}
	if _, _, _, err := receive(t, &r, bytes.Clone(frags[0]), recv); err != nil {
		t.Fatal(err)
	}
	other := fragHdr
	other.MessageID = 2
	m2, err := Fragment(other, PayloadNotify, inner[:250], send, 300)
	if err != nil {
		t.Fatal(err)
	}
	if len(m2) < 2 {
		t.Fatalf("message 2 in %d fragments, want several", len(m2))
	}
	var got2 []byte
	for _, msg := range m2 {
		pm, err := ParseMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		done, _, in, err := r.Add(msg, pm.Header, pm.Payloads[0].(*EncryptedFragmentPayload), recv)
		if err != nil {
			t.Fatalf("fragment of message 2: %v", err)
		}
		if done {
			got2 = in
		}
	}
	if !bytes.Equal(got2, inner[:250]) {
		t.Errorf("message 2: got %d bytes, want 250", len(got2))
	}
	// A forged fragment of another message does not disturb a collection.
	if _, _, _, err := receive(t, &r, bytes.Clone(frags[0]), recv); err != nil {
		t.Fatal(err)
	}
	forged := bytes.Clone(m2[1])
	forged[len(forged)-1] ^= 0x80
	pm, _ := ParseMessage(forged)
	if _, _, _, err := r.Add(forged, pm.Header, pm.Payloads[0].(*EncryptedFragmentPayload), recv); !errors.Is(err, ikecrypto.ErrIntegrity) {
		t.Errorf("forged fragment of message 2: %v", err)
	}
	if r.total != len(frags) || r.have != 1 {
		t.Errorf("after a forged fragment: collecting %d of %d, want 1 of %d", r.have, r.total, len(frags))
	}
	r.Reset()
	if _, _, _, err := receive(t, &r, bytes.Clone(frags[0]), recv); err != nil {
		t.Fatal(err)
	}

	// A smaller total is dropped; a larger one (the sender re-fragmented a
	// retransmission smaller, RFC 7383 §2.5.1) starts anew.
	fewer, err := Fragment(fragHdr, PayloadNotify, inner, send, 1280)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := receive(t, &r, fewer[1], recv); err == nil || !strings.Contains(err.Error(), "while collecting") {
		t.Errorf("smaller total: %v", err)
	}
	r.Reset()
	for _, msg := range fewer[:len(fewer)-1] {
		if _, _, _, err := receive(t, &r, bytes.Clone(msg), recv); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	for _, msg := range frags {
		done, _, in, err := receive(t, &r, bytes.Clone(msg), recv)
		if err != nil {
			t.Fatalf("re-fragmented: %v", err)
		}
		if done {
			got = in
		}
	}
	if !bytes.Equal(got, inner) {
		t.Errorf("re-fragmented message: got %d bytes, want %d", len(got), len(inner))
	}

	// Bad numbers, and a payload not from ParseMessage.
	if _, _, _, err := r.Add(frags[0], fragHdr, &EncryptedFragmentPayload{FragmentNumber: 3, TotalFragments: 2, Data: []byte{1}}, recv); err == nil {
		t.Error("fragment 3 of 2 accepted")
	}
	if _, _, _, err := r.Add(frags[0], fragHdr, &EncryptedFragmentPayload{FragmentNumber: 1, TotalFragments: 2}, recv); err == nil {
		t.Error("fragment without data accepted")
	}
	if _, _, _, err := r.Add(frags[0], fragHdr, nil, recv); err == nil {
		t.Error("nil fragment accepted")
	}
}
