// Command greipsec is a GRE-over-IPsec gateway that runs in user space: it
// does ESP and GRE itself, on a TUN device, with no kernel IPsec or GRE.
//
// Usage:
//
//	greipsec up -c FILE       run the tunnels in FILE until SIGINT/SIGTERM
//	greipsec check -c FILE    check FILE and print each tunnel's MTU and MSS
//	greipsec keygen ALG       print a random key for a manual SA
//	greipsec demo             two gateways in two network namespaces (root)
//	greipsec version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `usage: greipsec <command> [flags]

commands:
  up -c FILE       bring up the tunnels in FILE; runs until SIGINT or SIGTERM,
                   then removes what it created. SIGUSR1 prints counters.
  check -c FILE    check FILE and print each tunnel's MTU, MSS and overhead
  keygen ALG       print a random hex key (with salt) for a manual SA;
                   ALG: aes128gcm16, aes256gcm16, chacha20poly1305
  demo             as root: run two greipsec gateways in two network
                   namespaces with the built-in example configs, and show
                   ping and throughput through the tunnel
  version          print the version
`

var version = "dev"

// errUsage is returned for a bad command line; main prints the usage text.
var errUsage = errors.New("bad usage")

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errUsage) {
			fmt.Fprintf(os.Stderr, "greipsec: %v\n\n%s", err, usage)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "greipsec: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "up":
		return cmdUp(args, stderr)
	case "check":
		return cmdCheck(args, stdout)
	case "keygen":
		return cmdKeygen(args, stdout)
	case "demo":
		return cmdDemo(args, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "greipsec", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// parseFlags parses a subcommand's flags; errors become usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

// configPath parses the "-c FILE" flag that up and check take, plus any
// extra flags the caller has defined on fs.
func configPath(fs *flag.FlagSet, args []string) (string, error) {
	path := fs.String("c", "", "configuration file")
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if *path == "" {
		return "", fmt.Errorf("%w: %s: -c FILE is required", errUsage, fs.Name())
	}
	return *path, nil
}
