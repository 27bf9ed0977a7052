package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/gateway/control"
)

// The operator commands, as swanctl's: each asks the running gateway over
// its control socket, prints what it does, and (unless --timeout 0) waits
// until it is done, so that a script can rely on the exit status.

var (
	initiateCommand = saCommand("initiate", "bring a tunnel's IKE SA and Child SA up now",
		`Bring the tunnel's IKE SA and Child SA up now (swanctl --initiate), whatever
its role, and lift a "terminate": an active tunnel stays up from then on.
Waits until the Child SA is installed or the attempt fails.`, gateway.TargetIKE)
	terminateCommand = saCommand("terminate", "delete a tunnel's IKE SA (or only its Child SA)",
		`Delete the tunnel's IKE SA, sending DELETE to the peer (swanctl --terminate),
and keep this side down until "greipsec initiate": it neither starts again by
itself nor when traffic waits (an active peer may still bring it up). With
--child, delete only the Child SA and keep the IKE SA.`, gateway.TargetIKE)
	rekeyCommand = saCommand("rekey", "rekey a tunnel's Child SA (or its IKE SA) now",
		`Rekey the tunnel's Child SA now, or with --ike its IKE SA (swanctl --rekey),
as the end of a lifetime would: the new SA is installed before the old one
goes, so no packet is lost. Waits until the new SA is in place.`, gateway.TargetChild)
)

func saCommand(verb, short, long string, def gateway.Target) *command {
	return &command{
		name:  verb,
		args:  "TUNNEL [--ike|--child]",
		short: short,
		long:  long,
		setup: func(fs *flag.FlagSet) runFunc {
			ike := fs.Bool("ike", false, "act on the IKE SA"+map[bool]string{true: " (the default)"}[def == gateway.TargetIKE])
			child := fs.Bool("child", false, "act on the Child SA"+map[bool]string{true: " (the default)"}[def == gateway.TargetChild])
			timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the result; 0: do not wait")
			socket := controlFlag(fs)
			return func(args []string, stdout, _ io.Writer) error {
				if len(args) != 1 {
					return usagef(verb, "want one tunnel name")
				}
				if *ike && *child {
					return usagef(verb, "--ike and --child exclude each other")
				}
				target := def
				if *ike {
					target = gateway.TargetIKE
				}
				if *child {
					target = gateway.TargetChild
				}
				c := control.NewClient(*socket, 10*time.Second)
				return runSACommand(c, verb, args[0], target, *timeout, stdout)
			}
		},
	}
}

// runSACommand runs one operator command and waits for its outcome.
func runSACommand(c *control.Client, verb, name string, target gateway.Target, timeout time.Duration, stdout io.Writer) error {
	before, err := c.Tunnel(name)
	if err != nil {
		return err
	}
	var msg string
	switch verb {
	case "initiate":
		msg, err = c.Initiate(name, target)
	case "terminate":
		msg, err = c.Terminate(name, target)
	case "rekey":
		msg, err = c.Rekey(name, target)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, msg)
	if timeout <= 0 {
		return nil
	}
	done := waitCondition(verb, target, before)
	deadline := time.Now().Add(timeout)
	for {
		t, err := c.Tunnel(name)
		if err != nil {
			return err
		}
		ok, failed, what := done(&t)
		if ok {
			fmt.Fprintf(stdout, "tunnel %q: %s\n", name, what)
			return nil
		}
		if failed {
			return fmt.Errorf("tunnel %q: %s", name, what)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tunnel %q: not done within %v: %s", name, timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCondition returns the test that a command is done: ok when it is,
// failed when it cannot be any more, and a line about the state.
func waitCondition(verb string, target gateway.Target, before gateway.TunnelStatus) func(*gateway.TunnelStatus) (ok, failed bool, what string) {
	installed := func(t *gateway.TunnelStatus) *gateway.ChildSAStatus {
		for i := range t.ChildSAs {
			if t.ChildSAs[i].State == "INSTALLED" {
				return &t.ChildSAs[i]
			}
		}
		return nil
	}
	downs := uint64(0)
	var oldChild string
	var oldIKE string
	if before.IKE != nil {
		downs = before.IKE.Downs
		oldIKE = before.IKE.SPIi + before.IKE.SPIr
	}
	if c := installed(&before); c != nil {
		oldChild = c.InSPI
	}
	return func(t *gateway.TunnelStatus) (bool, bool, string) {
		ike := t.IKE
		if ike == nil {
			return false, true, "not an IKE tunnel"
		}
		state := "IKE SA " + ike.State
		if ike.Phase != "" {
			state += " (" + ike.Phase + ")"
		}
		child := installed(t)
		switch {
		case verb == "initiate":
			if ike.State == "ESTABLISHED" && child != nil {
				return true, false, fmt.Sprintf("IKE SA established, Child SA installed: in %s, out %s", child.InSPI, child.OutSPI)
			}
			if ike.Downs > downs {
				return false, true, "failed: " + ike.LastDown
			}
		case verb == "terminate" && target == gateway.TargetChild:
			if child == nil || child.InSPI != oldChild {
				return true, false, "Child SA deleted"
			}
		case verb == "terminate":
			if ike.State == "HELD" || ike.State == "DOWN" {
				return true, false, "IKE SA deleted; held down until initiate"
			}
			if ike.SPIi+ike.SPIr != oldIKE && ike.State == "ESTABLISHED" {
				return true, false, "IKE SA deleted; the peer has set up a new one"
			}
		case target == gateway.TargetChild:
			if child != nil && child.InSPI != oldChild {
				return true, false, fmt.Sprintf("Child SA rekeyed: in %s, out %s", child.InSPI, child.OutSPI)
			}
			if ike.Downs > downs {
				return false, true, "failed: " + ike.LastDown
			}
		default:
			if ike.State == "ESTABLISHED" && ike.SPIi+ike.SPIr != oldIKE {
				return true, false, fmt.Sprintf("IKE SA rekeyed: %s_i %s_r", ike.SPIi, ike.SPIr)
			}
			if ike.Downs > downs {
				return false, true, "failed: " + ike.LastDown
			}
		}
		return false, false, state
	}
}

var reloadCommand = &command{
	name:  "reload",
	short: "make the running gateway re-read its configuration",
	long: `Make the running gateway re-read its configuration file, as SIGHUP does:
unchanged tunnels keep their SAs and lose no packet, new tunnels come up,
removed ones send DELETE and go down, changed ones are set up again. A file
with mistakes changes nothing; the mistakes are printed and the exit status
is 1, as it is when a tunnel failed to come up.`,
	setup: func(fs *flag.FlagSet) runFunc {
		socket := controlFlag(fs)
		return func(args []string, stdout, _ io.Writer) error {
			if err := noArgs("reload", args); err != nil {
				return err
			}
			res, err := control.NewClient(*socket, 2*time.Minute).Reload()
			var ae *control.APIError
			if err != nil && !errors.As(err, &ae) && res.Unchanged == nil {
				return err // no answer at all
			}
			list := func(names []string) string {
				if len(names) == 0 {
					return "-"
				}
				return strings.Join(names, " ")
			}
			if res.Unchanged != nil {
				fmt.Fprintf(stdout, "unchanged: %s\nadded:     %s\nremoved:   %s\nchanged:   %s\n",
					list(res.Unchanged), list(res.Added), list(res.Removed), list(res.Changed))
			}
			for _, f := range res.Failed {
				fmt.Fprintf(stdout, "FAILED:    %s: %s\n", f.Tunnel, f.Error)
			}
			if err != nil {
				return fmt.Errorf("reload: %w", err)
			}
			return nil
		}
	},
}
