package esp

import (
	"crypto/subtle"
	"fmt"
)

// KeymatLen returns how many bytes of KEYMAT (RFC 7296 §2.17) a Child SA
// with transform t takes: an encryption key and an integrity key for each
// direction.
func (t Transform) KeymatLen() int {
	return 2 * (t.Algorithm.KeyLen() + t.Integrity.KeyLen())
}

// KeyPair is the key material of one direction of an SA.
type KeyPair struct {
	Enc, Auth []byte // Config.Key and Config.AuthKey
}

// SplitKeymat splits the KEYMAT of a Child SA with transform t (RFC 7296
// §2.17): "All keys for SAs carrying data from the initiator to the
// responder are taken before SAs going from the responder to the
// initiator", and within a direction the encryption key comes first, then
// the integrity key. For an AEAD the encryption key includes the salt and
// there is no integrity key. keymat must be t.KeymatLen() bytes; the keys
// alias it.
func SplitKeymat(t Transform, keymat []byte) (i2r, r2i KeyPair, err error) {
	if err := t.Validate(); err != nil {
		return KeyPair{}, KeyPair{}, err
	}
	if len(keymat) != t.KeymatLen() {
		return KeyPair{}, KeyPair{}, fmt.Errorf("esp: KEYMAT for %v is %d bytes, want %d", t, len(keymat), t.KeymatLen())
	}
	el, al := t.Algorithm.KeyLen(), t.Integrity.KeyLen()
	split := func(b []byte) KeyPair {
		p := KeyPair{Enc: b[:el:el]}
		if al > 0 {
			p.Auth = b[el : el+al : el+al]
		}
		return p
	}
	return split(keymat[:el+al]), split(keymat[el+al:]), nil
}

// KeyUse names one manually configured SA, for CheckKeyReuse.
type KeyUse struct {
	Name   string // how an error names it, e.g. `tunnel "gre0" sa.out`
	Config *Config
}

// CheckKeyReuse reports the first key used by two SAs: two tunnels, or
// both directions of one. The same AEAD key in two SAs repeats nonces
// whenever their sequence numbers meet; the same key in both directions
// lets packets be reflected back and accepted. Encryption keys are
// compared without the AEAD salt, and authentication keys with each other
// and with the encryption keys.
func CheckKeyReuse(uses []KeyUse) error {
	type key struct {
		use  int
		what string
		b    []byte
	}
	var keys []key
	for i, u := range uses {
		enc := u.Config.Key
		if u.Config.Algorithm.IsAEAD() && len(enc) > saltLen {
			enc = enc[:len(enc)-saltLen]
		}
		if len(enc) > 0 {
			keys = append(keys, key{i, "key", enc})
		}
		if len(u.Config.AuthKey) > 0 {
			keys = append(keys, key{i, "auth-key", u.Config.AuthKey})
		}
	}
	for j := range keys {
		for i := range j {
			a, b := keys[i], keys[j]
			if len(a.b) == len(b.b) && subtle.ConstantTimeCompare(a.b, b.b) == 1 {
				if a.use == b.use {
					return fmt.Errorf("esp: %s uses the same key as its %s and %s", uses[a.use].Name, a.what, b.what)
				}
				return fmt.Errorf("esp: %s %s is the same as %s %s; every SA needs its own keys", uses[b.use].Name, b.what, uses[a.use].Name, a.what)
			}
		}
	}
	return nil
}
