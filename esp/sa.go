package esp

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync/atomic"
)

// minSPI is the lowest SPI an SA may use: 0 is reserved for local use and
// must not be sent, 1 to 255 are reserved by IANA (RFC 4303 §2.1).
const minSPI = 256

// Config describes one unidirectional SA.
type Config struct {
	// SPI identifies the SA on the wire; 0 to 255 are reserved
	// (RFC 4303 §2.1) and rejected.
	SPI uint32
	// Algorithm is the encryption transform.
	Algorithm Algorithm
	// Integrity is the integrity transform: IntegrityNone with an AEAD,
	// and required with AES-CBC and NullEncryption.
	Integrity Integrity
	// Key is the encryption key material, Algorithm.KeyLen() bytes: for
	// an AEAD the cipher key followed by the 4-byte salt (RFC 4106 §8.1,
	// RFC 7634 §2), for AES-CBC the AES key, and empty for NULL. IKEv2
	// takes it from KEYMAT (see SplitKeymat).
	Key []byte
	// AuthKey is the integrity key, Integrity.KeyLen() bytes; empty with
	// an AEAD.
	AuthKey []byte
	// ESN enables 64-bit extended sequence numbers (RFC 4303 §2.2.1).
	ESN bool
	// ReplayWindow is the inbound anti-replay window in packets: a power
	// of two from 64 to 65536; 0 means 1024 (DefaultReplayWindow).
	ReplayWindow int
	// Lifetime limits, 0 meaning none. Packets and bytes count the
	// direction the SA is used in: for an outbound SA, the sequence
	// numbers handed out by NextSeq and the bytes reported to CountTx;
	// for an inbound SA, the packets and payload bytes passed to Accept.
	// When a hard limit is reached NextSeq fails (outbound) and Open fails
	// with ErrLifetime (inbound); SoftExpired reports the soft ones.
	SoftPackets, HardPackets uint64
	SoftBytes, HardBytes     uint64

	// The sequence state of a manually keyed SA, which outlives the
	// process (see package esp/seqstate). IKE-keyed SAs leave them zero.

	// FirstSeq is the first outbound sequence number (0 means 1): one
	// above every number this key may have sent before.
	FirstSeq uint64
	// Reserver, if set, makes outbound sequence numbers durable before
	// they are used: NextSeq hands out only numbers that a Reserve call
	// has covered. See SeqReserver.
	Reserver SeqReserver
	// SeqBlock is how many sequence numbers one reservation covers; 0
	// means DefaultSeqBlock.
	SeqBlock uint64
	// ReplayFloor makes an inbound SA treat every sequence number up to
	// and including it as already seen: the window's top before the
	// process restarted, so that packets captured before are dropped as
	// replays.
	ReplayFloor uint64
}

// Transform returns c's encryption and integrity algorithms.
func (c *Config) Transform() Transform {
	return Transform{Algorithm: c.Algorithm, Integrity: c.Integrity}
}

// Validate reports the first problem with c, in words meant for the person
// who wrote the configuration.
func (c *Config) Validate() error {
	if c.SPI < minSPI {
		return fmt.Errorf("esp: SPI %d is reserved (RFC 4303 §2.1); use 256 or more", c.SPI)
	}
	if err := c.Transform().Validate(); err != nil {
		return err
	}
	if n := c.Algorithm.KeyLen(); len(c.Key) != n {
		if c.Algorithm.IsAEAD() {
			return fmt.Errorf("esp: key must be %d bytes (hex %d digits) for %v, got %d", n, 2*n, c.Algorithm, len(c.Key))
		}
		return fmt.Errorf("esp: encryption key must be %d bytes (hex %d digits) for %v, got %d", n, 2*n, c.Algorithm, len(c.Key))
	}
	if n := c.Integrity.KeyLen(); len(c.AuthKey) != n {
		if n == 0 {
			return fmt.Errorf("esp: %v takes no authentication key", c.Algorithm)
		}
		return fmt.Errorf("esp: authentication key must be %d bytes (hex %d digits) for %v, got %d", n, 2*n, c.Integrity, len(c.AuthKey))
	}
	if c.ReplayWindow != 0 {
		if err := checkWindowSize(c.ReplayWindow); err != nil {
			return err
		}
	}
	if c.SoftPackets != 0 && c.HardPackets != 0 && c.SoftPackets >= c.HardPackets {
		return fmt.Errorf("esp: soft packet limit %d must be below the hard limit %d", c.SoftPackets, c.HardPackets)
	}
	if c.SoftBytes != 0 && c.HardBytes != 0 && c.SoftBytes >= c.HardBytes {
		return fmt.Errorf("esp: soft byte limit %d must be below the hard limit %d", c.SoftBytes, c.HardBytes)
	}
	return nil
}

// DropReason is why the caller dropped a packet that Open accepted.
type DropReason uint8

const (
	// DropNextHeader: the next header is not one the tunnel carries.
	DropNextHeader DropReason = iota
	// DropGRE: the GRE header is malformed or not the tunnel's.
	DropGRE
	// DropSelector: the inner packet is outside the traffic selectors.
	DropSelector
	// DropOther: any other reason.
	DropOther
)

// Stats are an SA's counters. Each is read atomically, but a Stats is not
// one atomic snapshot of all of them.
type Stats struct {
	TxPackets, TxBytes uint64 // reported by CountTx
	ReserveWaits       uint64 // NextSeq waited for a sequence number reservation
	ReserveErrors      uint64 // reservations that failed (see SeqReserver)
	RxPackets, RxBytes uint64 // accepted by Accept; bytes of payload
	AuthFailures       uint64 // ICV did not verify
	Replays            uint64 // seen, too old or zero sequence numbers
	BadPadding         uint64 // invalid trailer after decryption
	BadNextHeader      uint64 // CountDrop(DropNextHeader)
	BadGRE             uint64 // CountDrop(DropGRE)
	BadSelector        uint64 // CountDrop(DropSelector)
	Other              uint64 // CountDrop(DropOther)
}

// SA is one unidirectional ESP Security Association: an outbound SA uses
// NextSeq, Seal and CountTx; an inbound SA uses Open, Accept and CountDrop.
// Each method states its own concurrency contract; all counters and Stats
// are safe for concurrent use.
type SA struct {
	spi       uint32
	config    Config // without Key and AuthKey
	transform Transform
	minLen    int    // shortest packet Open looks at
	maxSeq    uint64 // highest sequence number the SA may send
	softSeq   uint64 // sequence number from which SoftExpired reports true

	crypt  cryptor
	window Window

	lastSeq atomic.Uint64 // outbound: last sequence number handed out
	res     reservation   // outbound: durable sequence number reservations

	txPackets, txBytes atomic.Uint64
	reserveWaits       atomic.Uint64
	rxPackets, rxBytes atomic.Uint64
	authFailures       atomic.Uint64
	replays            atomic.Uint64
	badPadding         atomic.Uint64
	drops              [DropOther + 1]atomic.Uint64

	softFired atomic.Bool   // softCh is closed
	softCh    chan struct{} // closed when a soft limit is first reached
}

// NewSA validates c and returns an SA for it. The key material is used to
// set up the cipher and not retained; c.Key and c.AuthKey may be reused by
// the caller. With a Reserver, NewSA makes the first reservation before it
// returns, and fails if that fails.
func NewSA(c Config) (*SA, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.ReplayWindow == 0 {
		c.ReplayWindow = DefaultReplayWindow
	}
	if c.SeqBlock == 0 {
		c.SeqBlock = DefaultSeqBlock
	}
	t := c.Transform()
	sa := &SA{spi: c.SPI, transform: t, softCh: make(chan struct{})}
	sa.minLen = t.Headroom() + t.BlockLen() + t.ICVLen()
	if t.Algorithm.IsAEAD() {
		keyLen := len(c.Key) - saltLen
		aead, err := c.Algorithm.newAEAD(c.Key[:keyLen])
		if err != nil {
			return nil, err
		}
		crypt := new(aeadCryptor)
		crypt.init(aead, c.Key[keyLen:], c.ESN)
		sa.crypt = crypt
	} else {
		crypt, err := newMACCryptor(t, c.Key, c.AuthKey, c.ESN)
		if err != nil {
			return nil, fmt.Errorf("esp: %v", err)
		}
		sa.crypt = crypt
	}
	sa.window.Init(c.ReplayWindow)
	if c.ReplayFloor != 0 {
		sa.window.SetFloor(c.ReplayFloor)
	}
	sa.maxSeq = math.MaxUint32
	if c.ESN {
		sa.maxSeq = math.MaxUint64
	}
	// Ask for a rekey well before the sequence numbers run out.
	sa.softSeq = sa.maxSeq - sa.maxSeq/8
	if c.FirstSeq > 1 {
		sa.lastSeq.Store(min(c.FirstSeq-1, sa.maxSeq))
	}
	c.Key, c.AuthKey = nil, nil
	sa.config = c
	if c.Reserver != nil {
		sa.res.init(c.Reserver, c.SeqBlock, sa.lastSeq.Load())
		if err := sa.res.reserveSync(sa.lastSeq.Load() + 1); err != nil {
			return nil, fmt.Errorf("esp: SA %#x: reserving sequence numbers: %v", c.SPI, err)
		}
	}
	return sa, nil
}

// SPI returns the SA's SPI.
func (sa *SA) SPI() uint32 { return sa.spi }

// Config returns the SA's configuration without the key material (Key and
// AuthKey are nil) and with ReplayWindow and SeqBlock filled in.
func (sa *SA) Config() Config { return sa.config }

// Transform returns the SA's encryption and integrity algorithms.
func (sa *SA) Transform() Transform { return sa.transform }

// Headroom is the number of bytes Seal needs before the payload, and the
// offset of the payload in the packet it makes: the ESP header and the IV
// of the SA's transform, at most MaxHeadroomLen.
func (sa *SA) Headroom() int { return sa.transform.Headroom() }

// TrailerLen returns the number of bytes Seal appends to a payload of n
// bytes: padding, pad length, next header and ICV.
func (sa *SA) TrailerLen(n int) int { return sa.transform.TrailerLen(n) }

// LastSeq returns the last outbound sequence number handed out by NextSeq
// (FirstSeq-1 before the first).
func (sa *SA) LastSeq() uint64 { return sa.lastSeq.Load() }

// ReplayTop returns the highest inbound sequence number accepted so far
// (ReplayFloor, or 0, before the first): what a restart must not accept
// again.
func (sa *SA) ReplayTop() uint64 { return sa.window.Top() }

// NextSeq returns the next outbound sequence number; the first is 1. It
// returns ok=false, and keeps doing so, once the sequence numbers are
// exhausted (after 2^32-1 without ESN, 2^64-1 with) or a hard lifetime is
// reached: an SA never reuses a sequence number (RFC 4303 §3.3.3), and must
// be replaced by a rekeyed one. NextSeq must be called from one goroutine
// at a time (the sequential stage); it is safe with every other method.
func (sa *SA) NextSeq() (seq uint64, ok bool) {
	last := sa.lastSeq.Load()
	if last >= sa.maxSeq {
		return 0, false
	}
	c := &sa.config
	if c.HardPackets != 0 && last >= c.HardPackets {
		return 0, false
	}
	if c.HardBytes != 0 && sa.txBytes.Load() >= c.HardBytes {
		return 0, false
	}
	if sa.config.Reserver != nil && !sa.reserved(last+1) {
		return 0, false
	}
	sa.lastSeq.Store(last + 1)
	return last + 1, true
}

// Seal encrypts one packet in place. b[:sa.Headroom()] is reserved for the
// ESP header and IV, and b[sa.Headroom():] is the payload. Seal writes the
// SPI, the low 32 bits of seq, the IV, the padding (1, 2, 3, ...), the pad
// length, nextHeader and the ICV, and returns b extended to the whole ESP
// packet, in b's array. It panics if len(b) < sa.Headroom() or
// cap(b) < len(b)+sa.TrailerLen(len(b)-sa.Headroom()).
//
// The IV of the AEAD transforms is seq as 64 bits, big-endian (unique
// under the key, RFC 4106 §3.1); that of AES-CBC is seq encrypted under a
// secret per-SA key, so that it is unpredictable (RFC 3602 §2.3).
//
// seq must come from NextSeq and be sealed only once. Seal is safe for
// concurrent use (many workers, each with its own seq) and allocates
// nothing.
func (sa *SA) Seal(b []byte, seq uint64, nextHeader byte) []byte {
	t := sa.transform
	h := t.Headroom()
	if len(b) < h {
		panic("esp: Seal: no headroom for the ESP header")
	}
	n := len(b) - h
	pad := t.padLen(n)
	if cap(b)-len(b) < pad+trailerFixedLen+t.ICVLen() {
		panic("esp: Seal: no room for the ESP trailer")
	}
	b = b[:len(b)+pad+trailerFixedLen]
	tr := b[h+n:]
	for i := range pad {
		tr[i] = byte(i + 1)
	}
	tr[pad] = byte(pad)
	tr[pad+1] = nextHeader
	return sa.crypt.seal(b, sa.spi, seq)
}

// Open authenticates and decrypts the ESP packet b (SPI to ICV) in place
// and returns its payload, which aliases b, its next header and its full
// sequence number. The payload starts at b[sa.Headroom()], and never
// before b[HeadroomLen]: with NULL encryption, whose headroom is shorter,
// Open moves it there, so the caller always has HeadroomLen bytes in
// front of it.
//
// With ESN, the high 32 bits of the sequence number are inferred from the
// replay window's top (RFC 4303 Appendix A2.2). A sequence number that the
// window already shows as seen or too old is rejected before decryption.
// Open does not update the window: the caller passes seq to Accept in its
// in-order stage.
//
// Errors are ErrShort, ErrSPI, ErrLifetime, ErrReplay, ErrAuth and
// ErrPadding; replays, authentication and padding failures are counted.
// After an error the contents of b are unspecified. Open is safe for
// concurrent use, also with Accept, never panics, and allocates nothing.
func (sa *SA) Open(b []byte) (payload []byte, nextHeader byte, seq uint64, err error) {
	if len(b) < sa.minLen {
		return nil, 0, 0, ErrShort
	}
	if binary.BigEndian.Uint32(b[offSPI:]) != sa.spi {
		return nil, 0, 0, ErrSPI
	}
	if sa.inboundHardExpired() {
		return nil, 0, 0, ErrLifetime
	}
	seq, ok := sa.inferSeq(binary.BigEndian.Uint32(b[offSeq:]))
	if !ok || !sa.window.Check(seq) {
		sa.replays.Add(1)
		return nil, 0, 0, ErrReplay
	}
	payload, nextHeader, err = sa.crypt.open(b, seq)
	switch err {
	case nil:
		return payload, nextHeader, seq, nil
	case ErrAuth:
		sa.authFailures.Add(1)
	case ErrPadding:
		sa.badPadding.Add(1)
	}
	return nil, 0, 0, err
}

// inferSeq returns the full sequence number of a packet whose header holds
// low, and false for one that cannot be valid. Without ESN it is low
// itself. With ESN the high half is chosen so the number lies within or
// above the replay window (RFC 4303 Appendix A2.2); a number that would lie
// below sequence number 0 or above 2^64-1 is invalid.
func (sa *SA) inferSeq(low uint32) (uint64, bool) {
	if !sa.config.ESN {
		return uint64(low), low != 0
	}
	top := sa.window.Top()
	tl, th := uint32(top), uint32(top>>32)
	w := uint32(sa.window.Size())
	bottom := tl - w + 1 // modulo 2^32
	hi := th
	if tl >= w-1 {
		// Case A: the window lies within one 2^32 subspace; a number
		// below it belongs to the next subspace.
		if low < bottom {
			if th == math.MaxUint32 {
				return 0, false
			}
			hi = th + 1
		}
	} else if low >= bottom {
		// Case B: the window spans two subspaces and low is in the
		// upper part of the previous one.
		if th == 0 {
			return 0, false
		}
		hi = th - 1
	}
	seq := uint64(hi)<<32 | uint64(low)
	return seq, seq != 0
}

// Accept is the in-order inbound stage: it checks seq, as returned by Open,
// against the anti-replay window and marks it seen. It returns false for a
// replayed or too old sequence number, counting it. Otherwise it counts
// one packet of n payload bytes and returns true. Accept must be called
// from one goroutine at a time per SA; it is safe with Open and allocates
// nothing.
func (sa *SA) Accept(seq uint64, n int) bool {
	if !sa.window.Update(seq) {
		sa.replays.Add(1)
		return false
	}
	sa.rxPackets.Add(1)
	sa.rxBytes.Add(uint64(n))
	sa.checkSoft()
	return true
}

// CountTx adds packets and bytes sent with this SA, as the sender reports
// them after Seal. The byte count is what the hard and soft byte limits of
// an outbound SA compare against. Safe for concurrent use.
func (sa *SA) CountTx(packets, bytes uint64) {
	sa.txPackets.Add(packets)
	sa.txBytes.Add(bytes)
	sa.checkSoft()
}

// SoftExpiry returns a channel that is closed when a soft lifetime limit
// is first reached (see SoftExpired), so that IKE can rekey at once. The
// check runs as packets are counted (Accept, CountTx).
func (sa *SA) SoftExpiry() <-chan struct{} { return sa.softCh }

func (sa *SA) checkSoft() {
	if !sa.softFired.Load() && sa.SoftExpired() && sa.softFired.CompareAndSwap(false, true) {
		close(sa.softCh)
	}
}

// CountDrop counts a packet the caller dropped after Open for a reason the
// SA cannot see; an unknown reason counts as DropOther. Safe for concurrent
// use.
func (sa *SA) CountDrop(reason DropReason) {
	if reason > DropOther {
		reason = DropOther
	}
	sa.drops[reason].Add(1)
}

// SoftExpired reports whether a soft lifetime limit has been reached, or
// seven eighths of the sequence numbers have been handed out: the time to
// negotiate a replacement SA. Safe for concurrent use.
func (sa *SA) SoftExpired() bool {
	c := &sa.config
	packets := sa.lastSeq.Load() + sa.rxPackets.Load()
	bytes := sa.txBytes.Load() + sa.rxBytes.Load()
	return sa.lastSeq.Load() >= sa.softSeq ||
		c.SoftPackets != 0 && packets >= c.SoftPackets ||
		c.SoftBytes != 0 && bytes >= c.SoftBytes
}

// inboundHardExpired reports whether an inbound hard limit is reached.
func (sa *SA) inboundHardExpired() bool {
	c := &sa.config
	return c.HardPackets != 0 && sa.rxPackets.Load() >= c.HardPackets ||
		c.HardBytes != 0 && sa.rxBytes.Load() >= c.HardBytes
}

// Stats returns the SA's counters. Safe for concurrent use.
func (sa *SA) Stats() Stats {
	return Stats{
		TxPackets:     sa.txPackets.Load(),
		TxBytes:       sa.txBytes.Load(),
		ReserveWaits:  sa.reserveWaits.Load(),
		ReserveErrors: sa.res.errors.Load(),
		RxPackets:     sa.rxPackets.Load(),
		RxBytes:       sa.rxBytes.Load(),
		AuthFailures:  sa.authFailures.Load(),
		Replays:       sa.replays.Load(),
		BadPadding:    sa.badPadding.Load(),
		BadNextHeader: sa.drops[DropNextHeader].Load(),
		BadGRE:        sa.drops[DropGRE].Load(),
		BadSelector:   sa.drops[DropSelector].Load(),
		Other:         sa.drops[DropOther].Load(),
	}
}
