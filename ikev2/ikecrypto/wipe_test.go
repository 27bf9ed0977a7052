package ikecrypto

import (
	"bytes"
	"testing"
)

// TestWipe: the wipe helpers clear what they promise (L7), and prf+
// leaves nothing of its last block beyond what it returns.
func TestWipe(t *testing.T) {
	zero := func(b []byte) bool { return len(b) > 0 && bytes.Count(b, []byte{0}) == len(b) }

	dh, err := GenerateDH(GroupMODP2048, nil)
	if err != nil {
		t.Fatal(err)
	}
	x := dh.(*modpKE).x
	WipeDH(dh)
	if !zero(x) {
		t.Fatal("MODP private exponent not cleared")
	}
	WipeDH(nil)

	prf, _ := NewPRF(PRFHMACSHA2_256)
	out := prf.plus([]byte("key"), 40, []byte("seed")) // 2 blocks of 32: 24 bytes not returned
	if cap(out) != 40 {
		t.Fatalf("prf+ result has capacity %d", cap(out))
	}
	if whole := out[:40:40]; !bytes.Equal(whole, prf.Plus([]byte("key"), []byte("seed"), 64)[:40]) {
		t.Fatal("prf+ output changed")
	}

	keys := DeriveIKESAKeys(prf, make([]byte, 32), []byte("ni"), []byte("nr"), make([]byte, 8), make([]byte, 8), 36, 0)
	out1, in1, err := keys.Ciphers(true, EncrAESGCM16, 256, IntegNone)
	if err != nil {
		t.Fatal(err)
	}
	all := [][]byte{keys.SKd, keys.SKpi, keys.SKpr, keys.SKei, keys.SKer}
	keys.WipeSK()
	if !zero(keys.SKei) || !zero(keys.SKer) || zero(keys.SKd) {
		t.Error("WipeSK")
	}
	keys.Wipe()
	for _, k := range all {
		if !zero(k) {
			t.Errorf("key %x not cleared", k)
		}
	}
	WipeSKCipher(out1)
	WipeSKCipher(in1)
	if !zero(out1.(*skAEAD).salt[:]) {
		t.Error("AEAD salt not cleared")
	}
	keysCBC := DeriveIKESAKeys(prf, make([]byte, 32), []byte("ni"), []byte("nr"), make([]byte, 8), make([]byte, 8), 32, 32)
	c, _, err := keysCBC.Ciphers(true, EncrAESCBC, 256, IntegHMACSHA2_256_128)
	if err != nil {
		t.Fatal(err)
	}
	WipeSKCipher(c)
	if !zero(c.(*skCBC).ka) {
		t.Error("HMAC key not cleared")
	}
	WipeSKCipher(nil)
}
