package ikev2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// This file turns the proposals of a [Config] into SA payloads and back
// (RFC 7296 §3.3), and chooses among the peer's proposals (§3.3.6, §2.7).
// Proposals are written in strongSwan's notation: algorithm keywords joined
// by dashes, proposals separated by commas.

// ErrNoProposalChosen reports that none of the peer's proposals is
// acceptable, or that the peer's choice is not one of ours. The responder
// answers with the NO_PROPOSAL_CHOSEN notify (RFC 7296 §3.10.1). Errors
// returned by the Select and Accept functions wrap it, with the offered and
// configured proposals in their text.
var ErrNoProposalChosen = errors.New("ikev2: no proposal chosen")

// encrToken is an encryption keyword of the proposal notation. espOnly
// marks NULL encryption, which never protects the IKE SA.
type encrToken struct {
	name    string
	id      TransformID
	bits    int
	aead    bool
	espOnly bool
}

var encrTokens = []encrToken{
	{"aes128", EncrAESCBC, 128, false, false},
	{"aes192", EncrAESCBC, 192, false, false},
	{"aes256", EncrAESCBC, 256, false, false},
	{"aes128gcm16", EncrAESGCM16, 128, true, false},
	{"aes256gcm16", EncrAESGCM16, 256, true, false},
	{"chacha20poly1305", EncrChaCha20Poly1305, 0, true, false},
	{"null", EncrNull, 0, false, true},
}

// espEncr reports whether id is an encryption transform this package
// negotiates for ESP.
func espEncr(id uint16) bool {
	for _, e := range encrTokens {
		if uint16(e.id) == id {
			return true
		}
	}
	return false
}

// hashToken is an integrity keyword ("sha256") with the PRF of the same
// hash, and that PRF's own keyword ("prfsha256"). weak marks SHA-1, which
// a proposal takes only with ProposalOptions.AllowWeak.
type hashToken struct {
	integName, prfName string
	integ, prf         TransformID
	weak               bool
}

var hashTokens = []hashToken{
	{"sha256", "prfsha256", IntegHMACSHA2_256_128, PRFHMACSHA2_256, false},
	{"sha384", "prfsha384", IntegHMACSHA2_384_192, PRFHMACSHA2_384, false},
	{"sha512", "prfsha512", IntegHMACSHA2_512_256, PRFHMACSHA2_512, false},
	{"sha1", "prfsha1", IntegHMACSHA1_96, PRFHMACSHA1, true},
}

// dhToken is a key exchange keyword; the first keyword of a group is the
// one String prints. weak marks the groups below 2048 bits (RFC 8247
// §2.4), which a proposal takes only with ProposalOptions.AllowWeak.
type dhToken struct {
	name string
	id   TransformID
	weak bool
}

var dhTokens = []dhToken{
	{"modp2048", DHModP2048, false},
	{"modp3072", DHModP3072, false},
	{"modp4096", DHModP4096, false},
	{"modp6144", DHModP6144, false},
	{"modp8192", DHModP8192, false},
	{"modp1024", DHModP1024, true},
	{"modp1536", DHModP1536, true},
	{"ecp256", DHECP256, false},
	{"ecp384", DHECP384, false},
	{"ecp521", DHECP521, false},
	{"curve25519", DHCurve25519, false},
	{"x25519", DHCurve25519, false},
}

// ProposalOptions changes what the proposal parsers accept.
type ProposalOptions struct {
	// AllowWeak accepts the transforms kept for old peers: SHA-1
	// integrity and PRF (sha1, prfsha1) and the MODP groups below 2048
	// bits (modp1024, modp1536), which RFC 8247 §2.4-§3.3 says not to
	// use. Without it they are refused with an error that says so.
	AllowWeak bool
}

// weakError is the error for a weak keyword without AllowWeak.
func weakError(tok string) string {
	return fmt.Sprintf("%s is weak (RFC 8247) and only accepted when weak algorithms are allowed explicitly, for an old peer that offers nothing better", tok)
}

func findEncr(tok string) (encrToken, bool) {
	for _, e := range encrTokens {
		if e.name == tok {
			return e, true
		}
	}
	return encrToken{}, false
}

func findDH(tok string) (dhToken, bool) {
	for _, d := range dhTokens {
		if d.name == tok {
			return d, true
		}
	}
	return dhToken{}, false
}

// ikeTokenList and espTokenList are the valid keywords, for error texts.
func ikeTokenList() string {
	var s []string
	for _, e := range encrTokens {
		if !e.espOnly {
			s = append(s, e.name)
		}
	}
	for _, h := range hashTokens {
		s = append(s, h.integName)
	}
	for _, h := range hashTokens {
		s = append(s, h.prfName)
	}
	for _, d := range dhTokens {
		s = append(s, d.name)
	}
	return strings.Join(s, " ")
}

func espTokenList() string {
	var s []string
	for _, e := range encrTokens {
		s = append(s, e.name)
	}
	for _, h := range hashTokens {
		s = append(s, h.integName)
	}
	for _, d := range dhTokens {
		s = append(s, d.name)
	}
	s = append(s, "esn", "noesn")
	return strings.Join(s, " ")
}

// splitProposals splits a comma-separated list into trimmed, lower-case
// proposals, rejecting an empty list or an empty proposal.
func splitProposals(what, s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("ikev2: no %s proposals given", what)
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			return nil, fmt.Errorf("ikev2: %s proposals %q: proposal %d is empty", what, s, i+1)
		}
		parts[i] = p
	}
	return parts, nil
}

// ParseIKEProposals parses IKE SA proposals in strongSwan's notation,
// separated by commas, most preferred first: "aes256-sha384-ecp384",
// "aes128-sha256-modp2048", "aes256gcm16-prfsha384-ecp384",
// "aes256-sha256-prfsha256-curve25519".
//
// Keywords: aes128 and aes256 (AES-CBC); aes128gcm16, aes256gcm16 (AES-GCM
// with a 16-octet ICV) and chacha20poly1305 (the AEADs); sha256, sha384 and
// sha512 (HMAC-SHA2-256-128, -384-192, -512-256 integrity, and the PRF of
// the same hash unless a PRF keyword is given); prfsha256, prfsha384,
// prfsha512; modp2048 (group 14), ecp256 (19), ecp384 (20), ecp521 (21),
// curve25519 or x25519 (31). Each proposal takes exactly one encryption
// algorithm and one group, at most one integrity algorithm and one PRF.
// AES-CBC needs an integrity algorithm. An AEAD takes no integrity algorithm
// and needs a PRF; as strongSwan does, a shaNNN keyword in an AEAD
// proposal is dropped, and names the PRF when no prfNNN keyword does
// ("aes256gcm16-sha384-ecp384" is "aes256gcm16-prfsha384-ecp384").
//
// A proposal may also be written as iked.conf(5) writes an ikesa clause,
// "enc aes-256 auth hmac-sha2-256 prf hmac-sha2-256 group modp3072",
// optionally starting with "ikesa" (proposal_iked.go).
//
// Errors name the proposal and the offending keyword, and list the valid
// keywords.
func ParseIKEProposals(s string) ([]IKEProposal, error) {
	return ProposalOptions{}.ParseIKE(s)
}

// ParseIKE is [ParseIKEProposals] with the options o; with AllowWeak it
// also takes sha1, prfsha1, modp1024 and modp1536.
func (o ProposalOptions) ParseIKE(s string) ([]IKEProposal, error) {
	parts, err := splitProposals("IKE", s)
	if err != nil {
		return nil, err
	}
	ps := make([]IKEProposal, 0, len(parts))
	for _, part := range parts {
		if isIkedProposal(part) {
			if part, err = ikedProposal("IKE", "ikesa", part); err != nil {
				return nil, err
			}
		}
		p, err := o.parseIKEProposal(part)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (o ProposalOptions) parseIKEProposal(s string) (IKEProposal, error) {
	fail := func(format string, args ...any) (IKEProposal, error) {
		return IKEProposal{}, fmt.Errorf("ikev2: IKE proposal %q: %s", s, fmt.Sprintf(format, args...))
	}
	var (
		encr             *encrToken
		integ, prf       *hashToken
		dh               *dhToken
		encrTok, dhTok   string
		integTok, prfTok string
	)
	for _, tok := range strings.Split(s, "-") {
		if e, ok := findEncr(tok); ok {
			if e.espOnly {
				return fail("%s: NULL encryption is for ESP only; the IKE SA is always encrypted", tok)
			}
			if encr != nil {
				return fail("two encryption algorithms (%s, %s): one proposal takes one of each kind; separate proposals with commas", encrTok, tok)
			}
			encr, encrTok = &e, tok
			continue
		}
		if d, ok := findDH(tok); ok {
			if d.weak && !o.AllowWeak {
				return fail("%s", weakError(tok))
			}
			if dh != nil {
				return fail("two key exchange groups (%s, %s): one proposal takes one of each kind; separate proposals with commas", dhTok, tok)
			}
			dh, dhTok = &d, tok
			continue
		}
		found := false
		for i := range hashTokens {
			h := &hashTokens[i]
			if h.weak && !o.AllowWeak && (tok == h.integName || tok == h.prfName) {
				return fail("%s", weakError(tok))
			}
			switch tok {
			case h.integName:
				if integ != nil {
					return fail("two integrity algorithms (%s, %s): one proposal takes one of each kind; separate proposals with commas", integTok, tok)
				}
				integ, integTok, found = h, tok, true
			case h.prfName:
				if prf != nil {
					return fail("two PRFs (%s, %s): one proposal takes one of each kind; separate proposals with commas", prfTok, tok)
				}
				prf, prfTok, found = h, tok, true
			}
		}
		if !found {
			return fail("unknown keyword %q; valid keywords: %s", tok, ikeTokenList())
		}
	}
	if encr == nil {
		return fail("no encryption algorithm (one of aes128 aes192 aes256 aes128gcm16 aes256gcm16 chacha20poly1305)")
	}
	if dh == nil {
		return fail("no key exchange group (one of modp2048 modp3072 modp4096 modp6144 modp8192 ecp256 ecp384 ecp521 curve25519)")
	}
	p := IKEProposal{Encr: uint16(encr.id), KeyBits: encr.bits, DH: uint16(dh.id)}
	if encr.aead {
		// As in strongSwan, an AEAD proposal drops its integrity
		// algorithm, which names the PRF if no PRF keyword does.
		switch {
		case prf != nil:
		case integ != nil:
			prf = integ
		default:
			suggest := "prfsha256"
			if encr.bits == 256 {
				suggest = "prfsha384"
			}
			return fail("AEAD needs a PRF (add %s)", suggest)
		}
		p.PRF = uint16(prf.prf)
		return p, nil
	}
	if integ == nil {
		return fail("%s needs an integrity algorithm (add sha256, sha384 or sha512)", encrTok)
	}
	if prf == nil {
		prf = integ
	}
	p.Integ, p.PRF = uint16(integ.integ), uint16(prf.prf)
	return p, nil
}

// ParseESPProposals parses Child SA (ESP) proposals in strongSwan's
// notation, separated by commas, most preferred first: "aes256gcm16-ecp384",
// "aes128gcm16", "chacha20poly1305-esn", "aes256-sha256-modp3072".
//
// Keywords: exactly one encryption algorithm: an AEAD (aes128gcm16,
// aes256gcm16, chacha20poly1305), or AES-CBC (aes128, aes192, aes256) or
// NULL encryption (null, integrity only, RFC 2410), which need exactly one
// integrity algorithm (sha256, sha384, sha512; sha1 only with
// AllowWeak); an optional key exchange group for PFS in CREATE_CHILD_SA
// (modp2048 to modp8192, ecp256, ecp384, ecp521, curve25519, x25519); esn
// or noesn (the default). "esn-noesn" accepts either: it stands for two
// proposals, with and then without ESN ("noesn-esn" the other way round).
// A proposal may also be written as iked.conf(5) writes a childsa clause,
// "enc aes-256 auth hmac-sha2-256 group modp3072" (the group is PFS),
// optionally starting with "childsa".
func ParseESPProposals(s string) ([]ESPProposal, error) {
	return ProposalOptions{}.ParseESP(s)
}

// ParseESP is [ParseESPProposals] with the options o.
func (o ProposalOptions) ParseESP(s string) ([]ESPProposal, error) {
	parts, err := splitProposals("ESP", s)
	if err != nil {
		return nil, err
	}
	var ps []ESPProposal
	for _, part := range parts {
		if isIkedProposal(part) {
			if part, err = ikedProposal("ESP", "childsa", part); err != nil {
				return nil, err
			}
		}
		more, err := o.parseESPProposal(part)
		if err != nil {
			return nil, err
		}
		ps = append(ps, more...)
	}
	return ps, nil
}

func (o ProposalOptions) parseESPProposal(s string) ([]ESPProposal, error) {
	fail := func(format string, args ...any) ([]ESPProposal, error) {
		return nil, fmt.Errorf("ikev2: ESP proposal %q: %s", s, fmt.Sprintf(format, args...))
	}
	var (
		encr                     *encrToken
		integ                    *hashToken
		dh                       *dhToken
		encrTok, dhTok, integTok string
		esn                      []bool // in the order given
	)
tokens:
	for _, tok := range strings.Split(s, "-") {
		if e, ok := findEncr(tok); ok {
			if encr != nil {
				return fail("two encryption algorithms (%s, %s): one proposal takes one of each kind; separate proposals with commas", encrTok, tok)
			}
			encr, encrTok = &e, tok
			continue
		}
		if d, ok := findDH(tok); ok {
			if d.weak && !o.AllowWeak {
				return fail("%s", weakError(tok))
			}
			if dh != nil {
				return fail("two key exchange groups (%s, %s): one proposal takes one of each kind; separate proposals with commas", dhTok, tok)
			}
			dh, dhTok = &d, tok
			continue
		}
		switch tok {
		case "esn", "noesn":
			v := tok == "esn"
			for _, e := range esn {
				if e == v {
					return fail("%s given twice", tok)
				}
			}
			esn = append(esn, v)
			continue
		}
		for i := range hashTokens {
			h := &hashTokens[i]
			switch tok {
			case h.prfName:
				return fail("%s: ESP takes no PRF", tok)
			case h.integName:
				if h.weak && !o.AllowWeak {
					return fail("%s", weakError(tok))
				}
				if integ != nil {
					return fail("two integrity algorithms (%s, %s): one proposal takes one of each kind; separate proposals with commas", integTok, tok)
				}
				integ, integTok = h, tok
				continue tokens
			}
		}
		return fail("unknown keyword %q; valid keywords: %s", tok, espTokenList())
	}
	if encr == nil {
		return fail("no encryption algorithm (one of aes128gcm16 aes256gcm16 chacha20poly1305 aes128 aes192 aes256 null)")
	}
	p := ESPProposal{Encr: uint16(encr.id), KeyBits: encr.bits}
	switch {
	case encr.aead && integ != nil:
		return fail("%s: ESP with an AEAD takes no integrity algorithm", integTok)
	case !encr.aead && integ == nil:
		return fail("%s needs an integrity algorithm (add sha256, sha384 or sha512)", encrTok)
	case integ != nil:
		p.Integ = uint16(integ.integ)
	}
	if len(esn) == 0 {
		esn = []bool{false}
	}
	if dh != nil {
		p.DH = uint16(dh.id)
	}
	ps := make([]ESPProposal, len(esn))
	for i, e := range esn {
		ps[i] = p
		ps[i].ESN = e
	}
	return ps, nil
}

// encrName returns the keyword of an encryption transform, or its IANA name
// if it has none.
func encrName(id uint16, bits int) string {
	for _, e := range encrTokens {
		if uint16(e.id) == id && e.bits == bits {
			return e.name
		}
	}
	s := TransformID(id).Name(TransformENCR)
	if bits != 0 {
		s += fmt.Sprintf("_%d", bits)
	}
	return s
}

func dhName(id uint16) string {
	for _, d := range dhTokens {
		if uint16(d.id) == id {
			return d.name
		}
	}
	return TransformID(id).Name(TransformDH)
}

// String returns p in the notation [ParseIKEProposals] reads, e.g.
// "aes256-sha384-ecp384" or "aes256gcm16-prfsha384-ecp384"; the PRF is
// written only when it is not implied by the integrity algorithm.
// Transforms without a keyword print as their IANA names.
func (p IKEProposal) String() string {
	parts := []string{encrName(p.Encr, p.KeyBits)}
	var integPRF TransformID
	if p.Integ != 0 {
		name := TransformID(p.Integ).Name(TransformINTEG)
		for _, h := range hashTokens {
			if uint16(h.integ) == p.Integ {
				name, integPRF = h.integName, h.prf
			}
		}
		parts = append(parts, name)
	}
	if p.PRF != uint16(integPRF) || p.Integ == 0 {
		name := TransformID(p.PRF).Name(TransformPRF)
		for _, h := range hashTokens {
			if uint16(h.prf) == p.PRF {
				name = h.prfName
			}
		}
		parts = append(parts, name)
	}
	parts = append(parts, dhName(p.DH))
	return strings.Join(parts, "-")
}

// String returns p in the notation [ParseESPProposals] reads, e.g.
// "aes256gcm16-ecp384-esn"; "noesn", the default, is not written.
func (p ESPProposal) String() string {
	parts := []string{encrName(p.Encr, p.KeyBits)}
	if p.Integ != 0 {
		name := TransformID(p.Integ).Name(TransformINTEG)
		for _, h := range hashTokens {
			if uint16(h.integ) == p.Integ {
				name = h.integName
			}
		}
		parts = append(parts, name)
	}
	if p.DH != 0 {
		parts = append(parts, dhName(p.DH))
	}
	if p.ESN {
		parts = append(parts, "esn")
	}
	return strings.Join(parts, "-")
}

// ikeTransforms returns the transforms of p, one of each type.
func ikeTransforms(p IKEProposal) []Transform {
	ts := []Transform{{Type: TransformENCR, ID: TransformID(p.Encr), KeyLength: uint16(p.KeyBits)}}
	ts = append(ts, Transform{Type: TransformPRF, ID: TransformID(p.PRF)})
	if p.Integ != 0 {
		ts = append(ts, Transform{Type: TransformINTEG, ID: TransformID(p.Integ)})
	}
	return append(ts, Transform{Type: TransformDH, ID: TransformID(p.DH)})
}

// espTransforms returns the transforms of p, one of each type; the DH
// transform only if withDH and p has a group.
func espTransforms(p ESPProposal, withDH bool) []Transform {
	ts := []Transform{{Type: TransformENCR, ID: TransformID(p.Encr), KeyLength: uint16(p.KeyBits)}}
	if p.Integ != 0 {
		ts = append(ts, Transform{Type: TransformINTEG, ID: TransformID(p.Integ)})
	}
	if withDH && p.DH != 0 {
		ts = append(ts, Transform{Type: TransformDH, ID: TransformID(p.DH)})
	}
	esn := ESNNone
	if p.ESN {
		esn = ESNExtended
	}
	return append(ts, Transform{Type: TransformESN, ID: esn})
}

// IKESAPayload returns the SA payload offering ps for the IKE SA, numbered
// from 1 in order (RFC 7296 §3.3.1). spi is nil in IKE_SA_INIT and the
// sender's new 8-byte SPI when rekeying the IKE SA in CREATE_CHILD_SA
// (§1.3.2). An AEAD proposal carries no integrity transform (RFC 5282 §8).
func IKESAPayload(ps []IKEProposal, spi []byte) *SAPayload {
	sa := &SAPayload{Proposals: make([]Proposal, len(ps))}
	for i, p := range ps {
		sa.Proposals[i] = Proposal{
			Number:     uint8(i + 1),
			Protocol:   ProtocolIKE,
			SPI:        clone(spi),
			Transforms: ikeTransforms(p),
		}
	}
	return sa
}

// ESPSAPayload returns the SA payload offering ps for an ESP Child SA with
// our inbound SPI spi, numbered from 1 in order (RFC 7296 §3.3.1). Every
// proposal carries an ESN transform (§3.3.3). withDH=false leaves out the
// DH transform, as in IKE_AUTH, which carries no KE payload (§1.2); with
// withDH, a proposal with a group offers it for PFS (§1.3.1).
func ESPSAPayload(ps []ESPProposal, spi uint32, withDH bool) *SAPayload {
	sa := &SAPayload{Proposals: make([]Proposal, len(ps))}
	for i, p := range ps {
		sa.Proposals[i] = Proposal{
			Number:     uint8(i + 1),
			Protocol:   ProtocolESP,
			SPI:        binary.BigEndian.AppendUint32(nil, spi),
			Transforms: espTransforms(p, withDH),
		}
	}
	return sa
}

// noneType reports whether t is a transform type that may be offered with
// the value NONE (0) to mean "not used": INTEG with an AEAD (RFC 5282 §8),
// DH without PFS (RFC 7296 §3.3.2), and the additional key exchanges,
// types 6-12 (RFC 9370).
func noneType(t TransformType) bool {
	return t == TransformINTEG || t == TransformDH || (t >= 6 && t <= 12)
}

// matchProposal checks one proposal of the peer against want, our
// transforms (one per type), following RFC 7296 §3.3.6: every type in want
// must be offered with our value (ID and key length, no other attributes),
// and every type offered must be in want, except a type offered with the
// value NONE, which is answered with NONE. An ESN transform of ours with
// "no ESN" also matches a proposal without ESN transforms. With ignoreDH,
// DH transforms in the proposal are skipped (IKE_AUTH). It returns the
// chosen transforms, one of each type the proposal has.
func matchProposal(want []Transform, prop *Proposal, ignoreDH bool) ([]Transform, bool) {
	var present [256]bool
	for _, t := range prop.Transforms {
		present[t.Type] = true
	}
	if ignoreDH {
		present[TransformDH] = false
	}
	var wanted [256]bool
	chosen := make([]Transform, 0, len(want)+1)
	for _, w := range want {
		wanted[w.Type] = true
		if !present[w.Type] {
			if w.Type == TransformESN && w.ID == ESNNone {
				continue
			}
			return nil, false
		}
		found := false
		for _, t := range prop.Transforms {
			if t.Type == w.Type && t.ID == w.ID && t.KeyLength == w.KeyLength && len(t.Attributes) == 0 {
				found = true
				break
			}
		}
		if !found {
			return nil, false
		}
		chosen = append(chosen, w)
	}
	for typ := range present {
		t := TransformType(typ)
		if !present[typ] || wanted[typ] {
			continue
		}
		if !noneType(t) {
			return nil, false
		}
		found := false
		for _, o := range prop.Transforms {
			if o.Type == t && o.ID == 0 && o.KeyLength == 0 && len(o.Attributes) == 0 {
				found = true
				break
			}
		}
		if !found {
			return nil, false
		}
		chosen = append(chosen, Transform{Type: t, ID: 0})
	}
	return chosen, true
}

func proposalsString(sa *SAPayload) string {
	if sa == nil || len(sa.Proposals) == 0 {
		return "none"
	}
	s := make([]string, len(sa.Proposals))
	for i, p := range sa.Proposals {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func configuredString[P fmt.Stringer](ps []P) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// SelectIKE chooses the IKE SA proposal as the responder (RFC 7296
// §3.3.6): the first proposal of the initiator, in the initiator's order,
// that matches one of ours. A proposal matches if every transform type of
// ours is offered with our value (ID and key length; a transform with any
// other attribute does not match) and every type offered is one of ours,
// or is offered with the value NONE (INTEG with an AEAD). Several
// transforms of one type in a proposal are alternatives.
//
// It returns our matching proposal and the proposal to answer with: the
// initiator's proposal number, one transform of each type offered, and no
// SPI (the caller sets its own SPI when rekeying). The error wraps
// [ErrNoProposalChosen].
func SelectIKE(ours []IKEProposal, offered *SAPayload) (IKEProposal, Proposal, error) {
	if offered != nil {
		for i := range offered.Proposals {
			prop := &offered.Proposals[i]
			if prop.Protocol != ProtocolIKE {
				continue
			}
			for _, p := range ours {
				if chosen, ok := matchProposal(ikeTransforms(p), prop, false); ok {
					return p, Proposal{Number: prop.Number, Protocol: ProtocolIKE, Transforms: chosen}, nil
				}
			}
		}
	}
	return IKEProposal{}, Proposal{}, fmt.Errorf("%w: peer offered %s; configured %s",
		ErrNoProposalChosen, proposalsString(offered), configuredString(ours))
}

// SelectESP chooses the Child SA proposal as the responder, like
// [SelectIKE]: ESP proposals with an SPI of at least 256 (1-255 are
// reserved and 0 is invalid, RFC 4303 §2.1) are considered in the
// initiator's order. A proposal without an ESN
// transform is taken as "no ESN", matching ours only where ours has ESN
// off. withDH=false (IKE_AUTH) ignores DH transforms in the offer: there is
// no KE payload to go with them (RFC 7296 §1.2). With withDH, our group is
// required if our proposal has one; if ours has none, an offered DH is
// accepted only as NONE.
//
// It returns our matching proposal, the proposal to answer with (the
// initiator's number, no SPI: the caller puts in its own inbound SPI) and
// the peer's SPI, which is our outbound SPI. The error wraps
// [ErrNoProposalChosen].
func SelectESP(ours []ESPProposal, offered *SAPayload, withDH bool) (ESPProposal, Proposal, uint32, error) {
	if offered != nil {
		for i := range offered.Proposals {
			prop := &offered.Proposals[i]
			if prop.Protocol != ProtocolESP || len(prop.SPI) != 4 {
				continue
			}
			spi := binary.BigEndian.Uint32(prop.SPI)
			if spi < minESPSPI {
				continue // 0-255 are reserved (RFC 4303 §2.1)
			}
			for _, p := range ours {
				if chosen, ok := matchProposal(espTransforms(p, withDH), prop, !withDH); ok {
					return p, Proposal{Number: prop.Number, Protocol: ProtocolESP, Transforms: chosen}, spi, nil
				}
			}
		}
	}
	return ESPProposal{}, Proposal{}, 0, fmt.Errorf("%w: peer offered %s; configured %s",
		ErrNoProposalChosen, proposalsString(offered), configuredString(ours))
}

// checkAnswer checks the structure of the responder's SA payload (RFC 7296
// §2.7, §3.3.6): exactly one proposal, of protocol proto, with exactly one
// transform of each type (ignoring DH transforms if ignoreDH).
func checkAnswer(answer *SAPayload, proto ProtocolID, ignoreDH bool) (*Proposal, error) {
	if answer == nil || len(answer.Proposals) != 1 {
		n := 0
		if answer != nil {
			n = len(answer.Proposals)
		}
		return nil, fmt.Errorf("ikev2: responder's SA payload has %d proposals, want 1", n)
	}
	prop := &answer.Proposals[0]
	if prop.Protocol != proto {
		return nil, fmt.Errorf("ikev2: responder's SA payload: protocol %v, want %v", prop.Protocol, proto)
	}
	var seen [256]bool
	for _, t := range prop.Transforms {
		if ignoreDH && t.Type == TransformDH {
			continue
		}
		if seen[t.Type] {
			return nil, fmt.Errorf("ikev2: responder's SA payload: proposal %s has more than one %v transform", prop, t.Type)
		}
		seen[t.Type] = true
	}
	return prop, nil
}

// AcceptIKE checks the responder's SA payload for the IKE SA as the
// initiator (RFC 7296 §2.7): exactly one IKE proposal with one transform of
// each type, which must match one of ours under the rules of [SelectIKE].
// It returns our proposal. A well-formed answer that is not one of ours
// gives an error wrapping [ErrNoProposalChosen].
func AcceptIKE(ours []IKEProposal, answer *SAPayload) (IKEProposal, error) {
	prop, err := checkAnswer(answer, ProtocolIKE, false)
	if err != nil {
		return IKEProposal{}, err
	}
	for _, p := range ours {
		if _, ok := matchProposal(ikeTransforms(p), prop, false); ok {
			return p, nil
		}
	}
	return IKEProposal{}, fmt.Errorf("%w: responder chose %s, not one of ours (%s)", ErrNoProposalChosen, prop, configuredString(ours))
}

// AcceptESP checks the responder's SA payload for the Child SA as the
// initiator, like [AcceptIKE], with withDH as in [SelectESP]. It returns
// our proposal and the responder's SPI (our outbound SPI), which must be
// at least 256 (RFC 4303 §2.1).
func AcceptESP(ours []ESPProposal, answer *SAPayload, withDH bool) (ESPProposal, uint32, error) {
	prop, err := checkAnswer(answer, ProtocolESP, !withDH)
	if err != nil {
		return ESPProposal{}, 0, err
	}
	if len(prop.SPI) != 4 || binary.BigEndian.Uint32(prop.SPI) < minESPSPI {
		return ESPProposal{}, 0, fmt.Errorf("%w: responder's SA payload: ESP SPI %x, want 4 bytes, at least 256 (RFC 4303 §2.1)", ErrNoProposalChosen, prop.SPI)
	}
	for _, p := range ours {
		if _, ok := matchProposal(espTransforms(p, withDH), prop, !withDH); ok {
			return p, binary.BigEndian.Uint32(prop.SPI), nil
		}
	}
	return ESPProposal{}, 0, fmt.Errorf("%w: responder chose %s, not one of ours (%s)", ErrNoProposalChosen, prop, configuredString(ours))
}
