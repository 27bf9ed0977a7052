// Command greipsec is a GRE-over-IPsec gateway that runs in user space: it
// does ESP and GRE itself, on a TUN device, with no kernel IPsec or GRE.
//
// Usage:
//
//	greipsec up [-c FILE]                run the tunnels of FILE (default /etc/greipsec/greipsec.toml)
//	greipsec check [-c FILE]             check FILE and print each tunnel's MTU and MSS
//	greipsec show [TUNNEL] [--json]      the running gateway's tunnels, IKE SAs and Child SAs
//	greipsec initiate|terminate|rekey TUNNEL [--ike|--child]
//	greipsec reload                      make the running gateway re-read its configuration
//	greipsec keygen ALG                  print a random key for a manual SA
//	greipsec demo                        two gateways in two network namespaces (root)
//	greipsec bench [--quick] [--json]    measure this host: throughput per algorithm, size and transport
//	greipsec version
//	greipsec help [COMMAND]
//
// The commands that talk to a running gateway (show, initiate, terminate,
// rekey, reload) use its control socket (package gateway/control).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/greipsec/greipsec/gateway"
)

// defaultConfig is the configuration file of up and check without -c.
const defaultConfig = "/etc/greipsec/greipsec.toml"

// A command is one subcommand: its usage line, its help, and setup, which
// defines its flags on a FlagSet and returns the function that runs it
// with the remaining arguments once they are parsed.
type command struct {
	name  string
	args  string // after the name in the usage line, e.g. "[TUNNEL]"
	short string // one line for the command list
	long  string // the help text, after the usage line
	setup func(fs *flag.FlagSet) runFunc
}

type runFunc func(args []string, stdout, stderr io.Writer) error

// commands in the order of the usage text; set in init to break the
// reference cycle through help.
var commands []*command

func init() {
	commands = []*command{
		upCommand, checkCommand, showCommand,
		initiateCommand, terminateCommand, rekeyCommand, reloadCommand,
		keygenCommand, demoCommand, benchCommand, versionCommand, helpCommand,
	}
}

func findCommand(name string) *command {
	i := slices.IndexFunc(commands, func(c *command) bool { return c.name == name })
	if i < 0 {
		return nil
	}
	return commands[i]
}

// usage returns the overall usage text.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: greipsec <command> [flags] [arguments]\n\ncommands:\n")
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(w, "  %s %s\t%s\n", c.name, c.args, c.short)
	}
	w.Flush()
	b.WriteString("\n\"greipsec help COMMAND\" or \"greipsec COMMAND --help\" shows a command's flags.\n")
	return b.String()
}

// errUsage marks a bad command line; main prints how to get help.
var errUsage = errors.New("bad usage")

// usageError is a bad command line for one command.
type usageError struct {
	cmd string // "" when the command itself is unknown
	msg string
}

func (e *usageError) Error() string {
	if e.cmd == "" {
		return e.msg
	}
	return e.cmd + ": " + e.msg
}

func (e *usageError) Is(target error) bool { return target == errUsage }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "greipsec: %v\n", err)
			if ue.cmd != "" {
				fmt.Fprintf(os.Stderr, "run \"greipsec help %s\" for its usage and flags\n", ue.cmd)
			} else {
				fmt.Fprintf(os.Stderr, "\n%s", usage())
			}
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "greipsec: %v\n", err)
		os.Exit(1)
	}
}

// run runs the command line args (without the program name).
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usagef("", "no command given")
	}
	name, args := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage())
		return nil
	case "-version", "--version":
		name = "version"
	}
	c := findCommand(name)
	if c == nil {
		return usagef("", "unknown command %q", name)
	}
	fs := newFlagSet(c)
	runner := c.setup(fs)
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(stdout, c, fs)
		return nil
	}
	if err != nil {
		return usagef(c.name, "%v%s", err, flagList(fs))
	}
	return runner(pos, stdout, stderr)
}

func newFlagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseArgs parses flags and positional arguments in any order, as
// "show gre0 --json" and "show --json gre0" both are natural; "--" ends
// the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at "--" having consumed it, or at the first
		// non-flag argument.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagList names a command's flags, for the error about an unknown one.
func flagList(fs *flag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, flagName(f.Name)) })
	if len(names) == 0 {
		return fmt.Sprintf(" (%s takes no flags)", fs.Name())
	}
	return fmt.Sprintf(" (flags of %s: %s)", fs.Name(), strings.Join(names, ", "))
}

func flagName(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// printHelp prints a command's usage line, help and flags.
func printHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: greipsec %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nflags:\n")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		arg := flagName(f.Name)
		if name != "" {
			arg += " " + name
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0s" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", arg, help, def)
	})
	tw.Flush()
}

// noArgs is a runFunc's check that it got no positional arguments.
func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return usagef(cmd, "unexpected argument %q", args[0])
	}
	return nil
}

var helpCommand = &command{
	name:  "help",
	args:  "[COMMAND]",
	short: "this list, or a command's usage and flags",
	long:  `Without a command, list the commands; with one, print its usage and flags.`,
	setup: func(fs *flag.FlagSet) runFunc {
		return func(args []string, stdout, _ io.Writer) error {
			switch len(args) {
			case 0:
				fmt.Fprint(stdout, usage())
				return nil
			case 1:
				c := findCommand(args[0])
				if c == nil {
					return usagef("help", "unknown command %q", args[0])
				}
				fs := newFlagSet(c)
				c.setup(fs)
				printHelp(stdout, c, fs)
				return nil
			}
			return usagef("help", "unexpected argument %q", args[1])
		}
	},
}

var versionCommand = &command{
	name:  "version",
	short: "print the version, VCS revision and Go version",
	long: `Print greipsec's module version and the VCS revision it was built from
("-dirty" if the tree had changes), from the build information.`,
	setup: func(fs *flag.FlagSet) runFunc {
		return func(args []string, stdout, _ io.Writer) error {
			if err := noArgs("version", args); err != nil {
				return err
			}
			v, rev, gov := gateway.BuildInfo()
			fmt.Fprintf(stdout, "greipsec %s (revision %s, %s)\n", v, rev, gov)
			return nil
		}
	},
}
