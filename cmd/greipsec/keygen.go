package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"

	"github.com/greipsec/greipsec/esp"
)

var keygenCommand = &command{
	name:  "keygen",
	args:  "ALG",
	short: "print random keys for a manual SA",
	long: `Print random keys for a manual SA of algorithm ALG: for an AEAD
(aes128gcm16, aes256gcm16, chacha20poly1305) one line, the key in hex with
the 4-byte salt after it, as the key of [tunnel.sa.out] and [tunnel.sa.in]
takes it; for AES-CBC or NULL with an HMAC (e.g. aes256-sha256, null-sha256)
the enc-key (not for NULL) and auth-key lines of the SA's table.`,
	setup: func(fs *flag.FlagSet) runFunc {
		return func(args []string, stdout, _ io.Writer) error {
			if len(args) != 1 {
				return usagef("keygen", "want one algorithm (aes128gcm16, aes256gcm16, chacha20poly1305, or e.g. aes256-sha256)")
			}
			tr, err := esp.ParseTransform(args[0])
			if err != nil {
				return usagef("keygen", "%v", err)
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
	},
}
