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
	short: "print a random key (with salt) for a manual SA",
	long: `Print a random key for a manual SA of algorithm ALG, in hex with the 4-byte
salt after it, as the key of [tunnel.sa.out] and [tunnel.sa.in] takes it.
ALG is aes128gcm16, aes256gcm16 or chacha20poly1305.`,
	setup: func(fs *flag.FlagSet) runFunc {
		return func(args []string, stdout, _ io.Writer) error {
			if len(args) != 1 {
				return usagef("keygen", "want one algorithm (aes128gcm16, aes256gcm16 or chacha20poly1305)")
			}
			alg, err := esp.ParseAlgorithm(args[0])
			if err != nil {
				return usagef("keygen", "%v", err)
			}
			key := make([]byte, alg.KeyLen())
			rand.Read(key)
			fmt.Fprintf(stdout, "0x%s\n", hex.EncodeToString(key))
			return nil
		}
	},
}
