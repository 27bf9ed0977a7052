package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/greipsec/greipsec/esp"
)

// cmdKeygen prints random keys for a manual SA of the given algorithm: for
// an AEAD one line, the key ‖ salt; for AES-CBC or NULL with an HMAC the
// lines to put in the SA's table, enc-key (not for NULL) and auth-key.
func cmdKeygen(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: keygen: want one algorithm (aes128gcm16, aes256gcm16, chacha20poly1305, or e.g. aes256-sha256)", errUsage)
	}
	tr, err := esp.ParseTransform(args[0])
	if err != nil {
		return fmt.Errorf("%w: keygen: %v", errUsage, err)
	}
	random := func(n int) string {
		key := make([]byte, n)
		rand.Read(key)
		return "0x" + hex.EncodeToString(key)
	}
	if tr.Algorithm.IsAEAD() {
		fmt.Fprintln(stdout, random(tr.Algorithm.KeyLen()))
		return nil
	}
	if n := tr.Algorithm.KeyLen(); n > 0 {
		fmt.Fprintf(stdout, "enc-key = %q\n", random(n))
	}
	fmt.Fprintf(stdout, "auth-key = %q\n", random(tr.Integrity.KeyLen()))
	return nil
}
