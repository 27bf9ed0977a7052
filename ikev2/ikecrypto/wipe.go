package ikecrypto

// Wiping key material (best effort). Go gives no way to erase everything a
// key leaves behind, so what this file clears is what is in slices and
// values this package owns:
//
//   - the SK_* slices of [IKESAKeys] ([IKESAKeys.Wipe], [IKESAKeys.WipeSK]);
//   - the HMAC key and the AEAD salt an [SKCipher] keeps ([WipeSKCipher]);
//   - the private exponent of a MODP key ([WipeDH]);
//   - the bytes prf+ computes beyond what it returns.
//
// It cannot clear: the AES key schedules inside crypto/aes and the
// ChaCha20-Poly1305 key inside golang.org/x/crypto (no API exposes them),
// the bigmod.Nat values of a MODP exponentiation (freed, not cleared),
// the inner and outer pads crypto/hmac derives from a key, the private
// scalars of crypto/ecdh keys (ECP groups and Curve25519), copies the
// runtime makes when it grows a goroutine stack, and anything already
// freed but not yet reused. The caller clears the slices it is given
// (SKEYSEED, g^ir, KEYMAT) once it has used them.

// Wipe clears all the keys of k.
func (k *IKESAKeys) Wipe() {
	clear(k.SKd)
	clear(k.SKpi)
	clear(k.SKpr)
	k.WipeSK()
}

// WipeSK clears the encryption and integrity keys of k (SK_e*, SK_a*),
// which [NewSKCipher] copies: call it once the ciphers exist.
func (k *IKESAKeys) WipeSK() {
	clear(k.SKei)
	clear(k.SKer)
	clear(k.SKai)
	clear(k.SKar)
}

// WipeSKCipher clears the key material c keeps in its own fields; c must
// not be used afterwards. It does nothing for a nil c.
func WipeSKCipher(c SKCipher) {
	switch c := c.(type) {
	case *skCBC:
		clear(c.ka)
	case *skAEAD:
		clear(c.salt[:])
	}
}

// WipeDH clears the private value of dh where Go allows it (the MODP
// exponent; crypto/ecdh keys cannot be cleared); dh must not be used for a
// shared secret afterwards. It does nothing for a nil dh.
func WipeDH(dh DH) {
	if k, ok := dh.(*modpKE); ok {
		clear(k.x)
	}
}
