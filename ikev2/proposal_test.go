package ikev2

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseIKEProposals(t *testing.T) {
	tests := []struct {
		in   string
		want []IKEProposal
		str  string // String of the single proposal, if different from in
	}{
		{"aes256-sha384-ecp384", []IKEProposal{{Encr: 12, KeyBits: 256, Integ: 13, PRF: 6, DH: 20}}, ""},
		{"aes128-sha256-modp2048", []IKEProposal{{Encr: 12, KeyBits: 128, Integ: 12, PRF: 5, DH: 14}}, ""},
		{"aes256-sha512-ecp521", []IKEProposal{{Encr: 12, KeyBits: 256, Integ: 14, PRF: 7, DH: 21}}, ""},
		{"aes128-sha256-ecp256", []IKEProposal{{Encr: 12, KeyBits: 128, Integ: 12, PRF: 5, DH: 19}}, ""},
		{"aes256gcm16-prfsha384-ecp384", []IKEProposal{{Encr: 20, KeyBits: 256, PRF: 6, DH: 20}}, ""},
		{"aes128gcm16-prfsha256-ecp256", []IKEProposal{{Encr: 20, KeyBits: 128, PRF: 5, DH: 19}}, ""},
		{"chacha20poly1305-prfsha512-curve25519", []IKEProposal{{Encr: 28, PRF: 7, DH: 31}}, ""},
		{"aes256-sha256-prfsha256-curve25519", []IKEProposal{{Encr: 12, KeyBits: 256, Integ: 12, PRF: 5, DH: 31}}, "aes256-sha256-curve25519"},
		{"aes256-sha256-prfsha384-x25519", []IKEProposal{{Encr: 12, KeyBits: 256, Integ: 12, PRF: 6, DH: 31}}, "aes256-sha256-prfsha384-curve25519"},
		// Order of keywords does not matter; case and spaces are ignored.
		{" ECP384-sha384-AES256 ", []IKEProposal{{Encr: 12, KeyBits: 256, Integ: 13, PRF: 6, DH: 20}}, "aes256-sha384-ecp384"},
		// strongSwan: with an AEAD, the integrity keyword names the PRF.
		{"aes256gcm16-sha384-ecp384", []IKEProposal{{Encr: 20, KeyBits: 256, PRF: 6, DH: 20}}, "aes256gcm16-prfsha384-ecp384"},
		{"aes256gcm16-sha256-prfsha384-ecp384", []IKEProposal{{Encr: 20, KeyBits: 256, PRF: 6, DH: 20}}, "aes256gcm16-prfsha384-ecp384"},
		{"aes256gcm16-prfsha384-ecp384,aes256-sha384-ecp384", []IKEProposal{
			{Encr: 20, KeyBits: 256, PRF: 6, DH: 20},
			{Encr: 12, KeyBits: 256, Integ: 13, PRF: 6, DH: 20},
		}, ""},
	}
	for _, tt := range tests {
		got, err := ParseIKEProposals(tt.in)
		if err != nil {
			t.Errorf("ParseIKEProposals(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseIKEProposals(%q) = %+v, want %+v", tt.in, got, tt.want)
			continue
		}
		strs := make([]string, len(got))
		for i, p := range got {
			strs[i] = p.String()
		}
		wantStr := tt.str
		if wantStr == "" {
			wantStr = tt.in
		}
		if s := strings.Join(strs, ","); s != wantStr {
			t.Errorf("String of %q = %q, want %q", tt.in, s, wantStr)
		}
		// Printing and parsing again gives the same proposals.
		again, err := ParseIKEProposals(strings.Join(strs, ","))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %q: %+v, %v", tt.in, again, err)
		}
	}
}

func TestParseIKEProposalsErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "no IKE proposals"},
		{"aes256-sha384-ecp384,", `proposal 2 is empty`},
		{"aes256-sha384-ecp999", `IKE proposal "aes256-sha384-ecp999": unknown keyword "ecp999"; valid keywords: aes128 aes192 aes256`},
		{"aes256gcm16-ecp384", `IKE proposal "aes256gcm16-ecp384": AEAD needs a PRF (add prfsha384)`},
		{"aes128gcm16-ecp256", `AEAD needs a PRF (add prfsha256)`},
		{"aes256-ecp384", "aes256 needs an integrity algorithm"},
		{"aes256-sha384", "no key exchange group"},
		{"sha384-ecp384", "no encryption algorithm"},
		{"aes256-aes128-sha384-ecp384", "two encryption algorithms (aes256, aes128)"},
		{"aes256-sha384-ecp384-modp2048", "two key exchange groups (ecp384, modp2048)"},
		{"aes256-sha384-sha256-ecp384", "two integrity algorithms (sha384, sha256)"},
		{"aes256-sha384-prfsha384-prfsha256-ecp384", "two PRFs (prfsha384, prfsha256)"},
		{"aes256--sha384-ecp384", `unknown keyword ""`},
	}
	for _, tt := range tests {
		_, err := ParseIKEProposals(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "ikev2: ") {
			t.Errorf("ParseIKEProposals(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestParseESPProposals(t *testing.T) {
	tests := []struct {
		in   string
		want []ESPProposal
		str  string
	}{
		{"aes256gcm16-ecp384", []ESPProposal{{Encr: 20, KeyBits: 256, DH: 20}}, ""},
		{"aes128gcm16", []ESPProposal{{Encr: 20, KeyBits: 128}}, ""},
		{"chacha20poly1305-esn", []ESPProposal{{Encr: 28, ESN: true}}, ""},
		{"aes256gcm16-modp2048-noesn", []ESPProposal{{Encr: 20, KeyBits: 256, DH: 14}}, "aes256gcm16-modp2048"},
		{"aes128gcm16-ecp256-esn", []ESPProposal{{Encr: 20, KeyBits: 128, DH: 19, ESN: true}}, ""},
		{"aes256gcm16-ecp521", []ESPProposal{{Encr: 20, KeyBits: 256, DH: 21}}, ""},
		{"aes256gcm16-x25519", []ESPProposal{{Encr: 20, KeyBits: 256, DH: 31}}, "aes256gcm16-curve25519"},
		{"aes256gcm16-ecp384-esn-noesn", []ESPProposal{
			{Encr: 20, KeyBits: 256, DH: 20, ESN: true},
			{Encr: 20, KeyBits: 256, DH: 20},
		}, "aes256gcm16-ecp384-esn,aes256gcm16-ecp384"},
		{"aes256gcm16-noesn-esn,chacha20poly1305", []ESPProposal{
			{Encr: 20, KeyBits: 256},
			{Encr: 20, KeyBits: 256, ESN: true},
			{Encr: 28},
		}, "aes256gcm16,aes256gcm16-esn,chacha20poly1305"},
	}
	for _, tt := range tests {
		got, err := ParseESPProposals(tt.in)
		if err != nil {
			t.Errorf("ParseESPProposals(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseESPProposals(%q) = %+v, want %+v", tt.in, got, tt.want)
			continue
		}
		strs := make([]string, len(got))
		for i, p := range got {
			strs[i] = p.String()
		}
		wantStr := tt.str
		if wantStr == "" {
			wantStr = tt.in
		}
		if s := strings.Join(strs, ","); s != wantStr {
			t.Errorf("String of %q = %q, want %q", tt.in, s, wantStr)
		}
		again, err := ParseESPProposals(strings.Join(strs, ","))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %q: %+v, %v", tt.in, again, err)
		}
	}
}

func TestParseESPProposalsErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{" ", "no ESP proposals"},
		{"aes256-ecp384", "aes256 needs an integrity algorithm (add sha256, sha384 or sha512)"},
		{"aes256gcm16-sha256", "sha256: ESP with an AEAD takes no integrity algorithm"},
		{"aes256gcm16-prfsha256", "prfsha256: ESP takes no PRF"},
		{"ecp384", "no encryption algorithm"},
		{"aes256gcm16-aes128gcm16", "two encryption algorithms"},
		{"aes256gcm16-ecp384-ecp256", "two key exchange groups"},
		{"aes256gcm16-esn-esn", "esn given twice"},
		{"aes256gcm16-esp", `ESP proposal "aes256gcm16-esp": unknown keyword "esp"; valid keywords: aes128 aes192 aes256 aes128gcm16 aes256gcm16 chacha20poly1305 null sha256`},
	}
	for _, tt := range tests {
		_, err := ParseESPProposals(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "ikev2: ") {
			t.Errorf("ParseESPProposals(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestProposalStringUnknownIDs(t *testing.T) {
	p := IKEProposal{Encr: 99, KeyBits: 128, Integ: 98, PRF: 97, DH: 96}
	if got, want := p.String(), "ENCR(99)_128-INTEG(98)-PRF(97)-DH(96)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	e := ESPProposal{Encr: 3, DH: 3}
	if got, want := e.String(), "ENCR(3)-DH(3)"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func mustIKE(t *testing.T, s string) []IKEProposal {
	t.Helper()
	ps, err := ParseIKEProposals(s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func mustESP(t *testing.T, s string) []ESPProposal {
	t.Helper()
	ps, err := ParseESPProposals(s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// wire encodes and decodes sa, so the tests see what a peer would.
func wire(t *testing.T, sa *SAPayload) *SAPayload {
	t.Helper()
	var got SAPayload
	if err := got.Decode(sa.Encode(nil)); err != nil {
		t.Fatalf("decoding our own SA payload: %v", err)
	}
	return &got
}

func TestIKESAPayload(t *testing.T) {
	sa := wire(t, IKESAPayload(mustIKE(t, "aes256-sha384-ecp384,aes256gcm16-prfsha384-ecp384"), nil))
	want := []Proposal{
		{Number: 1, Protocol: ProtocolIKE, Transforms: []Transform{
			{Type: TransformENCR, ID: EncrAESCBC, KeyLength: 256},
			{Type: TransformPRF, ID: PRFHMACSHA2_384},
			{Type: TransformINTEG, ID: IntegHMACSHA2_384_192},
			{Type: TransformDH, ID: DHECP384},
		}},
		{Number: 2, Protocol: ProtocolIKE, Transforms: []Transform{
			{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256},
			{Type: TransformPRF, ID: PRFHMACSHA2_384},
			{Type: TransformDH, ID: DHECP384},
		}},
	}
	if !reflect.DeepEqual(sa.Proposals, want) {
		t.Errorf("IKESAPayload =\n%+v\nwant\n%+v", sa.Proposals, want)
	}
	spi := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	sa = wire(t, IKESAPayload(mustIKE(t, "aes128-sha256-modp2048"), spi))
	if !reflect.DeepEqual(sa.Proposals[0].SPI, spi) {
		t.Errorf("SPI = %x, want %x", sa.Proposals[0].SPI, spi)
	}
}

func TestESPSAPayload(t *testing.T) {
	ps := mustESP(t, "aes256gcm16-ecp384-esn,chacha20poly1305")
	sa := wire(t, ESPSAPayload(ps, 0xc0ffee01, true))
	want := []Proposal{
		{Number: 1, Protocol: ProtocolESP, SPI: []byte{0xc0, 0xff, 0xee, 0x01}, Transforms: []Transform{
			{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256},
			{Type: TransformDH, ID: DHECP384},
			{Type: TransformESN, ID: ESNExtended},
		}},
		{Number: 2, Protocol: ProtocolESP, SPI: []byte{0xc0, 0xff, 0xee, 0x01}, Transforms: []Transform{
			{Type: TransformENCR, ID: EncrChaCha20Poly1305},
			{Type: TransformESN, ID: ESNNone},
		}},
	}
	if !reflect.DeepEqual(sa.Proposals, want) {
		t.Errorf("ESPSAPayload(withDH) =\n%+v\nwant\n%+v", sa.Proposals, want)
	}
	sa = wire(t, ESPSAPayload(ps, 0xc0ffee01, false))
	for _, p := range sa.Proposals {
		for _, tr := range p.Transforms {
			if tr.Type == TransformDH {
				t.Errorf("ESPSAPayload(withDH=false) has %v", tr)
			}
		}
	}
}

func TestSelectIKE(t *testing.T) {
	tests := []struct {
		name, ours, theirs string
		want               string // our chosen proposal, "" for none
		wantNum            uint8
	}{
		{"same", "aes256-sha384-ecp384", "aes256-sha384-ecp384", "aes256-sha384-ecp384", 1},
		// The initiator's order wins over ours (RFC 7296 §3.3.6).
		{"initiator order", "aes256-sha384-ecp384,aes256gcm16-prfsha384-ecp384",
			"aes256gcm16-prfsha384-ecp384,aes256-sha384-ecp384", "aes256gcm16-prfsha384-ecp384", 1},
		{"second offer", "aes256-sha384-ecp384", "aes128-sha256-modp2048,aes256-sha384-ecp384", "aes256-sha384-ecp384", 2},
		{"second of ours", "aes128-sha256-ecp256,aes256-sha384-ecp384", "aes256-sha384-ecp384", "aes256-sha384-ecp384", 1},
		{"DH mismatch", "aes256-sha384-ecp384", "aes256-sha384-ecp256", "", 0},
		{"GCM key length mismatch", "aes256gcm16-prfsha384-ecp384", "aes128gcm16-prfsha384-ecp384", "", 0},
		{"CBC key length mismatch", "aes256-sha384-ecp384", "aes128-sha384-ecp384", "", 0},
		{"PRF mismatch", "aes256-sha384-ecp384", "aes256-sha384-prfsha256-ecp384", "", 0},
		{"INTEG mismatch", "aes256-sha384-ecp384", "aes256-sha256-prfsha384-ecp384", "", 0},
		{"AEAD vs CBC", "aes256gcm16-prfsha384-ecp384", "aes256-sha384-ecp384", "", 0},
		{"CBC vs AEAD", "aes256-sha384-ecp384", "aes256gcm16-prfsha384-ecp384", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ours := mustIKE(t, tt.ours)
			offer := wire(t, IKESAPayload(mustIKE(t, tt.theirs), nil))
			got, prop, err := SelectIKE(ours, offer)
			if tt.want == "" {
				if !errors.Is(err, ErrNoProposalChosen) {
					t.Fatalf("SelectIKE = %v, %v, want ErrNoProposalChosen", got, err)
				}
				if !strings.Contains(err.Error(), "peer offered IKE:ENCR_") || !strings.Contains(err.Error(), "configured "+tt.ours) {
					t.Errorf("error %q names neither side's proposals", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want || prop.Number != tt.wantNum {
				t.Errorf("SelectIKE = %v (proposal %d), want %v (proposal %d)", got, prop.Number, tt.want, tt.wantNum)
			}
			// The answer goes back to the initiator, who accepts it.
			answer := wire(t, &SAPayload{Proposals: []Proposal{prop}})
			acc, err := AcceptIKE(mustIKE(t, tt.theirs), answer)
			if err != nil || acc != got {
				t.Errorf("AcceptIKE(answer) = %v, %v, want %v", acc, err, got)
			}
		})
	}
}

// TestSelectIKEMultipleTransforms offers several transforms per type in one
// proposal, as strongSwan's default proposal does (RFC 7296 §3.3.6).
func TestSelectIKEMultipleTransforms(t *testing.T) {
	offer := &SAPayload{Proposals: []Proposal{{Number: 1, Protocol: ProtocolIKE, Transforms: []Transform{
		{Type: TransformENCR, ID: EncrAESCBC, KeyLength: 128},
		{Type: TransformENCR, ID: EncrAESCBC, KeyLength: 256},
		{Type: TransformINTEG, ID: IntegHMACSHA2_256_128},
		{Type: TransformINTEG, ID: IntegHMACSHA2_384_192},
		{Type: TransformPRF, ID: PRFHMACSHA2_256},
		{Type: TransformPRF, ID: PRFHMACSHA2_384},
		{Type: TransformDH, ID: DHECP256},
		{Type: TransformDH, ID: DHECP384},
	}}}}
	offer = wire(t, offer)
	got, prop, err := SelectIKE(mustIKE(t, "aes256-sha384-ecp384"), offer)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "aes256-sha384-ecp384" {
		t.Errorf("chose %v", got)
	}
	want := Proposal{Number: 1, Protocol: ProtocolIKE, Transforms: []Transform{
		{Type: TransformENCR, ID: EncrAESCBC, KeyLength: 256},
		{Type: TransformPRF, ID: PRFHMACSHA2_384},
		{Type: TransformINTEG, ID: IntegHMACSHA2_384_192},
		{Type: TransformDH, ID: DHECP384},
	}}
	if !reflect.DeepEqual(prop, want) {
		t.Errorf("answer %+v, want %+v", prop, want)
	}
	// The same offer as an answer has several transforms per type.
	if _, err := AcceptIKE(mustIKE(t, "aes256-sha384-ecp384"), offer); err == nil || errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("AcceptIKE of a multi-transform answer: %v, want a structural error", err)
	}
}

func TestSelectIKEAttributesAndNone(t *testing.T) {
	ours := mustIKE(t, "aes256gcm16-prfsha384-ecp384")
	base := []Transform{
		{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256},
		{Type: TransformPRF, ID: PRFHMACSHA2_384},
		{Type: TransformDH, ID: DHECP384},
	}
	offer := func(extra ...Transform) *SAPayload {
		ts := append(append([]Transform(nil), base...), extra...)
		return wire(t, &SAPayload{Proposals: []Proposal{{Number: 3, Protocol: ProtocolIKE, Transforms: ts}}})
	}
	// INTEG NONE with an AEAD is accepted and echoed (RFC 5282 §8).
	_, prop, err := SelectIKE(ours, offer(Transform{Type: TransformINTEG, ID: IntegNone}))
	if err != nil {
		t.Fatal(err)
	}
	if len(prop.Transforms) != 4 || !reflect.DeepEqual(prop.Transforms[3], Transform{Type: TransformINTEG, ID: IntegNone}) || prop.Number != 3 {
		t.Errorf("answer %+v, want INTEG NONE echoed and number 3", prop)
	}
	// A real INTEG with an AEAD proposal of ours does not match.
	if _, _, err := SelectIKE(ours, offer(Transform{Type: TransformINTEG, ID: IntegHMACSHA2_256_128})); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("AEAD with an INTEG: %v", err)
	}
	// An ESN transform has no place in an IKE proposal.
	if _, _, err := SelectIKE(ours, offer(Transform{Type: TransformESN, ID: ESNNone})); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("IKE with ESN: %v", err)
	}
	// An unknown transform type (not one that can be NONE) rejects the proposal.
	if _, _, err := SelectIKE(ours, offer(Transform{Type: 200, ID: 1})); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("unknown transform type: %v", err)
	}
	// Additional key exchange (type 6, RFC 9370) offered as NONE is fine.
	if _, _, err := SelectIKE(ours, offer(Transform{Type: 6, ID: 0})); err != nil {
		t.Errorf("ADDKE NONE: %v", err)
	}
	// An unknown attribute makes the transform unselectable (§3.3.6).
	odd := []Transform{
		{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256, Attributes: []TransformAttribute{{Type: 99, TV: true, Value: 1}}},
		{Type: TransformPRF, ID: PRFHMACSHA2_384},
		{Type: TransformDH, ID: DHECP384},
	}
	sa := wire(t, &SAPayload{Proposals: []Proposal{{Number: 1, Protocol: ProtocolIKE, Transforms: odd}}})
	if _, _, err := SelectIKE(ours, sa); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("unknown attribute: %v", err)
	}
	// An ESP proposal in an IKE SA payload is skipped.
	esp := wire(t, &SAPayload{Proposals: []Proposal{{Number: 1, Protocol: ProtocolESP, SPI: []byte{0, 0, 1, 0}, Transforms: base}}})
	if _, _, err := SelectIKE(ours, esp); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("ESP proposal for IKE: %v", err)
	}
	if _, _, err := SelectIKE(ours, nil); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("nil offer: %v", err)
	}
}

func TestSelectESP(t *testing.T) {
	tests := []struct {
		name, ours, theirs string
		withDH             bool
		want               string
		wantNum            uint8
	}{
		{"same", "aes256gcm16", "aes256gcm16", false, "aes256gcm16", 1},
		{"initiator order", "aes128gcm16,aes256gcm16", "aes256gcm16,aes128gcm16", false, "aes256gcm16", 1},
		{"GCM key length mismatch", "aes256gcm16", "aes128gcm16", false, "", 0},
		{"chacha", "aes256gcm16,chacha20poly1305-esn", "chacha20poly1305-esn", false, "chacha20poly1305-esn", 1},
		{"ESN mismatch", "aes256gcm16-esn", "aes256gcm16", false, "", 0},
		{"ESN either", "aes256gcm16-esn-noesn", "aes256gcm16", false, "aes256gcm16", 1},
		// IKE_AUTH: DH is left out on both sides; a configured PFS group
		// does not stop the first Child SA.
		{"IKE_AUTH ignores DH", "aes256gcm16-ecp384", "aes256gcm16-ecp256", false, "aes256gcm16-ecp384", 1},
		// CREATE_CHILD_SA with PFS: groups must match.
		{"PFS", "aes256gcm16-ecp384", "aes256gcm16-ecp384", true, "aes256gcm16-ecp384", 1},
		{"PFS DH mismatch", "aes256gcm16-ecp384", "aes256gcm16-ecp256", true, "", 0},
		{"PFS wanted, none offered", "aes256gcm16-ecp384", "aes256gcm16", true, "", 0},
		{"PFS offered, none wanted", "aes256gcm16", "aes256gcm16-ecp384", true, "", 0},
		{"PFS second offer", "aes256gcm16-ecp384", "aes256gcm16-ecp256,aes256gcm16-ecp384", true, "aes256gcm16-ecp384", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ours := mustESP(t, tt.ours)
			offer := wire(t, ESPSAPayload(mustESP(t, tt.theirs), 0x01020304, tt.withDH))
			got, prop, spi, err := SelectESP(ours, offer, tt.withDH)
			if tt.want == "" {
				if !errors.Is(err, ErrNoProposalChosen) {
					t.Fatalf("SelectESP = %v, %v, want ErrNoProposalChosen", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want || prop.Number != tt.wantNum || spi != 0x01020304 {
				t.Errorf("SelectESP = %v (proposal %d, SPI %#x), want %v (proposal %d)", got, prop.Number, spi, tt.want, tt.wantNum)
			}
			prop.SPI = []byte{0xca, 0xfe, 0, 1}
			answer := wire(t, &SAPayload{Proposals: []Proposal{prop}})
			acc, peerSPI, err := AcceptESP(mustESP(t, tt.theirs), answer, tt.withDH)
			if err != nil || peerSPI != 0xcafe0001 {
				t.Fatalf("AcceptESP(answer) = %v, %#x, %v", acc, peerSPI, err)
			}
			// Both sides agree on what matters for the keys.
			if acc.Encr != got.Encr || acc.KeyBits != got.KeyBits || acc.ESN != got.ESN || (tt.withDH && acc.DH != got.DH) {
				t.Errorf("initiator has %v, responder %v", acc, got)
			}
		})
	}
}

func TestSelectESPMissingESN(t *testing.T) {
	// A proposal without an ESN transform is "no ESN": acceptable only to
	// a proposal of ours that allows no ESN.
	noESN := wire(t, &SAPayload{Proposals: []Proposal{{Number: 1, Protocol: ProtocolESP, SPI: []byte{0, 0, 1, 9}, Transforms: []Transform{
		{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256},
	}}}})
	if _, _, _, err := SelectESP(mustESP(t, "aes256gcm16-esn"), noESN, false); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("ESN-only vs no ESN transform: %v", err)
	}
	got, prop, spi, err := SelectESP(mustESP(t, "aes256gcm16-esn,aes256gcm16"), noESN, false)
	if err != nil || got.ESN || spi != 0x109 {
		t.Fatalf("SelectESP = %v, %d, %v", got, spi, err)
	}
	if len(prop.Transforms) != 1 {
		t.Errorf("answer %+v has transforms the offer had no type for", prop)
	}
	// Both ESN values offered in one proposal: our first matching choice.
	both := wire(t, &SAPayload{Proposals: []Proposal{{Number: 1, Protocol: ProtocolESP, SPI: []byte{0, 0, 1, 9}, Transforms: []Transform{
		{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256},
		{Type: TransformESN, ID: ESNExtended},
		{Type: TransformESN, ID: ESNNone},
	}}}})
	got, prop, _, err = SelectESP(mustESP(t, "aes256gcm16-esn"), both, false)
	if err != nil || !got.ESN || prop.Transforms[1].ID != ESNExtended {
		t.Errorf("ESN from both: %v, %+v, %v", got, prop, err)
	}
	// A zero SPI is skipped (RFC 4303 §2.1).
	zero := wire(t, ESPSAPayload(mustESP(t, "aes256gcm16"), 0, false))
	if _, _, _, err := SelectESP(mustESP(t, "aes256gcm16"), zero, false); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("zero SPI: %v", err)
	}
}

// TestESPSPIReserved: a peer's ESP SPI from 1 to 255 is reserved
// (RFC 4303 §2.1) and the dataplane refuses it, so negotiation refuses it
// first: the responder skips such a proposal (NO_PROPOSAL_CHOSEN), the
// initiator rejects such an answer. Before, the Child SA was reported up
// while ESP black-holed.
func TestESPSPIReserved(t *testing.T) {
	esp := mustESP(t, "aes256gcm16")
	for _, spi := range []uint32{1, 255} {
		if _, _, _, err := SelectESP(esp, wire(t, ESPSAPayload(esp, spi, false)), false); !errors.Is(err, ErrNoProposalChosen) {
			t.Errorf("SelectESP with peer SPI %d: %v, want NO_PROPOSAL_CHOSEN", spi, err)
		}
		answer := wire(t, ESPSAPayload(esp, spi, false))
		if _, _, err := AcceptESP(esp, answer, false); !errors.Is(err, ErrNoProposalChosen) {
			t.Errorf("AcceptESP with peer SPI %d: %v, want NO_PROPOSAL_CHOSEN", spi, err)
		}
	}
	if _, _, spi, err := SelectESP(esp, wire(t, ESPSAPayload(esp, 256, false)), false); err != nil || spi != 256 {
		t.Errorf("SelectESP with peer SPI 256: %d, %v", spi, err)
	}
	if _, spi, err := AcceptESP(esp, wire(t, ESPSAPayload(esp, 256, false)), false); err != nil || spi != 256 {
		t.Errorf("AcceptESP with peer SPI 256: %d, %v", spi, err)
	}
}

func TestSelectESPDHNone(t *testing.T) {
	// CREATE_CHILD_SA without PFS: an offered DH NONE is accepted and echoed.
	offer := wire(t, &SAPayload{Proposals: []Proposal{{Number: 1, Protocol: ProtocolESP, SPI: []byte{0, 0, 1, 7}, Transforms: []Transform{
		{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 128},
		{Type: TransformDH, ID: DHNone},
		{Type: TransformESN, ID: ESNNone},
	}}}})
	_, prop, _, err := SelectESP(mustESP(t, "aes128gcm16"), offer, true)
	if err != nil {
		t.Fatal(err)
	}
	hasNone := false
	for _, tr := range prop.Transforms {
		hasNone = hasNone || reflect.DeepEqual(tr, Transform{Type: TransformDH, ID: DHNone})
	}
	if !hasNone {
		t.Errorf("answer %+v lacks DH NONE", prop)
	}
}

func TestAcceptErrors(t *testing.T) {
	ike := mustIKE(t, "aes256-sha384-ecp384")
	two := wire(t, IKESAPayload(mustIKE(t, "aes256-sha384-ecp384,aes128-sha256-ecp256"), nil))
	if _, err := AcceptIKE(ike, two); err == nil || !strings.Contains(err.Error(), "2 proposals, want 1") {
		t.Errorf("two proposals: %v", err)
	}
	if _, err := AcceptIKE(ike, nil); err == nil {
		t.Error("nil answer accepted")
	}
	other := wire(t, IKESAPayload(mustIKE(t, "aes128-sha256-ecp256"), nil))
	if _, err := AcceptIKE(ike, other); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("answer not ours: %v", err)
	}
	// An answer missing a transform type of ours is not ours.
	short := wire(t, &SAPayload{Proposals: []Proposal{{Number: 1, Protocol: ProtocolIKE, Transforms: []Transform{
		{Type: TransformENCR, ID: EncrAESCBC, KeyLength: 256},
		{Type: TransformPRF, ID: PRFHMACSHA2_384},
		{Type: TransformINTEG, ID: IntegHMACSHA2_384_192},
	}}}})
	if _, err := AcceptIKE(ike, short); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("answer without DH: %v", err)
	}
	esp := mustESP(t, "aes256gcm16")
	if _, _, err := AcceptESP(esp, wire(t, ESPSAPayload(esp, 0, false)), false); err == nil || !strings.Contains(err.Error(), "SPI") {
		t.Errorf("zero SPI: %v", err)
	}
	if _, _, err := AcceptESP(esp, wire(t, IKESAPayload(ike, nil)), false); err == nil || !strings.Contains(err.Error(), "protocol IKE, want ESP") {
		t.Errorf("IKE answer for ESP: %v", err)
	}
	if _, _, err := AcceptESP(esp, wire(t, ESPSAPayload(mustESP(t, "aes256gcm16-esn"), 5, false)), false); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("ESN answer to no-ESN offer: %v", err)
	}
}

// FuzzSelect feeds arbitrary SA payloads to the Select and Accept
// functions: they must not panic, and whatever they choose must be one of
// ours.
func FuzzSelect(f *testing.F) {
	ike, _ := ParseIKEProposals("aes256-sha384-ecp384,aes256gcm16-prfsha384-ecp384")
	esp, _ := ParseESPProposals("aes256gcm16-ecp384-esn-noesn,chacha20poly1305")
	f.Add(IKESAPayload(ike, nil).Encode(nil))
	f.Add(ESPSAPayload(esp, 1, true).Encode(nil))
	f.Add(ESPSAPayload(esp, 1, false).Encode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var sa SAPayload
		if sa.Decode(b) != nil {
			return
		}
		in := func(p any, ps any) bool {
			v := reflect.ValueOf(ps)
			for i := range v.Len() {
				if v.Index(i).Interface() == p {
					return true
				}
			}
			return false
		}
		if p, _, err := SelectIKE(ike, &sa); err == nil && !in(p, ike) {
			t.Errorf("SelectIKE chose %v", p)
		}
		if p, err := AcceptIKE(ike, &sa); err == nil && !in(p, ike) {
			t.Errorf("AcceptIKE chose %v", p)
		}
		for _, withDH := range []bool{false, true} {
			if p, _, spi, err := SelectESP(esp, &sa, withDH); err == nil && (!in(p, esp) || spi == 0) {
				t.Errorf("SelectESP chose %v, SPI %d", p, spi)
			}
			if p, spi, err := AcceptESP(esp, &sa, withDH); err == nil && (!in(p, esp) || spi == 0) {
				t.Errorf("AcceptESP chose %v, SPI %d", p, spi)
			}
		}
	})
}

// FuzzParseProposals checks that parsing never panics and that whatever
// parses prints back to the same proposals.
func FuzzParseProposals(f *testing.F) {
	for _, s := range []string{"aes256-sha384-ecp384", "aes256gcm16-prfsha384-ecp384,aes128-sha256-modp2048", "aes256gcm16-ecp384-esn-noesn", "chacha20poly1305",
		"aes256-sha256-modp3072", "null-sha256-esn", "aes128-sha1-prfsha1-modp1024", "aes192-sha512-modp8192-esn",
		"enc aes-256 auth hmac-sha2-256 group modp3072", "ikesa enc aes-256-gcm prf hmac-sha2-384 group grp20", "childsa enc aes-128 auth hmac-sha1 esn"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// With weak transforms allowed too: what parses prints back.
		weak := ProposalOptions{AllowWeak: true}
		for _, parse := range []func(string) (int, []fmt.Stringer, error){
			func(s string) (int, []fmt.Stringer, error) {
				ps, err := weak.ParseIKE(s)
				return len(ps), stringers(ps), err
			},
			func(s string) (int, []fmt.Stringer, error) {
				ps, err := weak.ParseESP(s)
				return len(ps), stringers(ps), err
			},
		} {
			if _, ps, err := parse(s); err == nil {
				for _, p := range ps {
					if n, again, err := parse(p.String()); err != nil || n != 1 || again[0] != p {
						t.Errorf("weak %q: %v prints as %q, which parses to %v, %v", s, p, p.String(), again, err)
					}
				}
			}
		}
		if ps, err := ParseIKEProposals(s); err == nil {
			for _, p := range ps {
				again, err := ParseIKEProposals(p.String())
				if err != nil || len(again) != 1 || again[0] != p {
					t.Errorf("IKE %q: %v prints as %q, which parses to %v, %v", s, p, p.String(), again, err)
				}
			}
		}
		if ps, err := ParseESPProposals(s); err == nil {
			for _, p := range ps {
				again, err := ParseESPProposals(p.String())
				if err != nil || len(again) != 1 || again[0] != p {
					t.Errorf("ESP %q: %v prints as %q, which parses to %v, %v", s, p, p.String(), again, err)
				}
			}
		}
	})
}

func stringers[P fmt.Stringer](ps []P) []fmt.Stringer {
	out := make([]fmt.Stringer, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}
