package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/greipsec/greipsec/esp"
)

// cmdKeygen prints a random key ‖ salt for a manual SA of the given algorithm.
func cmdKeygen(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: keygen: want one algorithm (aes128gcm16, aes256gcm16 or chacha20poly1305)", errUsage)
	}
	alg, err := esp.ParseAlgorithm(args[0])
	if err != nil {
		return fmt.Errorf("%w: keygen: %v", errUsage, err)
	}
	key := make([]byte, alg.KeyLen())
	rand.Read(key)
	fmt.Fprintf(stdout, "0x%s\n", hex.EncodeToString(key))
	return nil
}
