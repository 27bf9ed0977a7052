package ikecrypto

import "crypto/subtle"

// The key schedule of IKEv2, RFC 7296 §2.14 (IKE SA), §2.17 (Child SAs),
// §2.18 (rekeyed IKE SA) and §2.15 (PSK authentication):
//
//	SKEYSEED = prf(Ni | Nr, g^ir)
//	{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//	         = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
//	SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)     (IKE SA rekey)
//	KEYMAT   = prf+(SK_d, [g^ir (new) |] Ni | Nr)         (Child SA)
//	AUTH     = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//
// Ni and Nr are the nonces without their payload headers, SPIi and SPIr the
// 8-octet SPIs as they appear in the IKE header, and g^ir the shared secret
// of the key exchange as [DH.SharedSecret] returns it.

// SKEYSEED returns the SKEYSEED of a new IKE SA, prf(Ni | Nr, g^ir)
// (RFC 7296 §2.14). The HMAC PRFs take the whole nonces as key; the
// truncation of §2.14 applies only to fixed-key PRFs, not supported here.
func SKEYSEED(prf PRF, ni, nr, gir []byte) []byte {
	key := make([]byte, 0, len(ni)+len(nr))
	key = append(append(key, ni...), nr...)
	return prf.Compute(key, gir)
}

// RekeySKEYSEED returns the SKEYSEED of an IKE SA created by rekeying,
// prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 §2.18). prf is the PRF of
// the old IKE SA, as §2.18 requires; Ni and Nr are the nonces of the
// CREATE_CHILD_SA exchange.
func RekeySKEYSEED(prf PRF, oldSKd, gir, ni, nr []byte) []byte {
	return prf.compute(oldSKd, gir, ni, nr)
}

// IKESAKeys are the keys of one IKE SA (RFC 7296 §2.14). SKai and SKar are
// empty when the SA uses an AEAD cipher; with AES-GCM and ChaCha20-Poly1305
// SKei and SKer end with the 4-octet salt (RFC 5282 §7.1, RFC 7634 §4).
type IKESAKeys struct {
	SKd        []byte // derives Child SA keys and the keys of a rekeyed IKE SA
	SKai, SKar []byte // integrity of the SK payload, initiator's and responder's
	SKei, SKer []byte // encryption of the SK payload, initiator's and responder's
	SKpi, SKpr []byte // AUTH computation, initiator's and responder's
}

// DeriveIKESAKeys derives the keys of an IKE SA from its SKEYSEED:
// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} =
// prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr) (RFC 7296 §2.14). SK_d, SK_pi and
// SK_pr are prf.Size() bytes long; encrKeyLen and integKeyLen are the key
// lengths of the SA's encryption and integrity transforms as [KeyLens]
// returns them (integKeyLen is 0 with an AEAD).
//
// When an IKE SA is rekeyed and the new SA negotiated a different PRF than
// the old one, RFC 7296 §2.18 has the old PRF compute SKEYSEED
// ([RekeySKEYSEED]) and the new SA's PRF run this prf+. (strongSwan uses
// the old PRF for the prf+ too; the two only differ when the PRFs do.)
//
// The keys are fresh slices of one allocation, not aliasing the arguments.
func DeriveIKESAKeys(prf PRF, skeyseed, ni, nr, spii, spir []byte, encrKeyLen, integKeyLen int) IKESAKeys {
	if encrKeyLen < 0 || integKeyLen < 0 {
		panic("ikecrypto: negative key length")
	}
	d := prf.Size()
	keymat := prf.plus(skeyseed, 3*d+2*integKeyLen+2*encrKeyLen, ni, nr, spii, spir)
	var k IKESAKeys
	next := func(n int) []byte {
		b := keymat[:n:n]
		keymat = keymat[n:]
		return b
	}
	k.SKd = next(d)
	k.SKai = next(integKeyLen)
	k.SKar = next(integKeyLen)
	k.SKei = next(encrKeyLen)
	k.SKer = next(encrKeyLen)
	k.SKpi = next(d)
	k.SKpr = next(d)
	return k
}

// Ciphers returns the SK payload ciphers of one end of the IKE SA: out
// seals the messages it sends, in opens the ones it receives. The initiator
// sends with SK_ei and SK_ai and receives with SK_er and SK_ar, the
// responder the other way round (RFC 7296 §2.14). encr, keyBits and integ
// are the transforms the keys were derived for, as in [NewSKCipher].
func (k IKESAKeys) Ciphers(initiator bool, encr uint16, keyBits int, integ uint16) (out, in SKCipher, err error) {
	ei, ai, er, ar := k.SKei, k.SKai, k.SKer, k.SKar
	if !initiator {
		ei, ai, er, ar = er, ar, ei, ai
	}
	if out, err = NewSKCipher(encr, keyBits, integ, ei, ai); err != nil {
		return nil, nil, err
	}
	if in, err = NewSKCipher(encr, keyBits, integ, er, ar); err != nil {
		return nil, nil, err
	}
	return out, in, nil
}

// ChildKeys derives the keying material of a Child SA, KEYMAT =
// prf+(SK_d, Ni | Nr), or with a key exchange in the CREATE_CHILD_SA
// exchange (PFS) prf+(SK_d, g^ir (new) | Ni | Nr) (RFC 7296 §2.17). gir is
// nil without PFS.
//
// keyLen is the keying material of one direction: the encryption key
// (with its salt for AES-GCM and ChaCha20-Poly1305, RFC 4106 §8.1, RFC 7634
// §4) followed by the integrity key, if the SA has one; [KeyLens] gives the
// two lengths, which also hold for ESP. Following §2.17, the first keyLen
// bytes protect the traffic from the initiator to the responder of the
// exchange that created the Child SA, the next keyLen bytes the reverse
// direction; each is its encryption key followed by its integrity key.
//
// The results do not alias the arguments.
func ChildKeys(prf PRF, skd, gir, ni, nr []byte, keyLen int) (initToResp, respToInit []byte) {
	if keyLen < 0 {
		panic("ikecrypto: negative key length")
	}
	keymat := prf.plus(skd, 2*keyLen, gir, ni, nr)
	return keymat[:keyLen:keyLen], keymat[keyLen:]
}

// keyPad is the key pad of shared-key AUTH, RFC 7296 §2.15.
const keyPad = "Key Pad for IKEv2"

// PSKAuth returns the AUTH payload data of shared key message integrity
// code authentication (RFC 7296 §2.15, Auth Method 2):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//	SignedOctets = RealMessage | Nonce | prf(SK_p, RestOfIDPayload)
//
// For the initiator's AUTH, realMessage is the initiator's IKE_SA_INIT
// request as sent, nonce the responder's nonce Nr, skp SK_pi and
// idPayloadBody the initiator's ID payload without its 4-octet generic
// payload header (ID Type, the 3 reserved octets, identification data).
// For the responder's AUTH they are its IKE_SA_INIT response, Ni, SK_pr
// and its ID payload body. The nonces are the Nonce Data without headers.
func PSKAuth(prf PRF, psk, realMessage, nonce, skp, idPayloadBody []byte) []byte {
	macedID := prf.Compute(skp, idPayloadBody)
	key := prf.Compute(psk, []byte(keyPad))
	return prf.compute(key, realMessage, nonce, macedID)
}

// SignedOctets returns the octets an AUTH signature covers (RFC 7296
// §2.15): RealMessage | Nonce | prf(SK_p, RestOfIDPayload), with the
// arguments of [PSKAuth]. The result is a fresh slice.
func SignedOctets(prf PRF, realMessage, nonce, skp, idPayloadBody []byte) []byte {
	macedID := prf.Compute(skp, idPayloadBody)
	b := make([]byte, 0, len(realMessage)+len(nonce)+len(macedID))
	return append(append(append(b, realMessage...), nonce...), macedID...)
}

// VerifyPSKAuth reports whether auth, the data of a received AUTH payload,
// is the PSK AUTH that [PSKAuth] computes from the other arguments. The
// comparison takes constant time.
func VerifyPSKAuth(prf PRF, auth, psk, realMessage, nonce, skp, idPayloadBody []byte) bool {
	want := PSKAuth(prf, psk, realMessage, nonce, skp, idPayloadBody)
	return subtle.ConstantTimeCompare(auth, want) == 1
}
