package gateway

import (
	"fmt"
	"time"

	"github.com/greipsec/greipsec/ikev2"
)

// Operator commands: swanctl's --initiate, --terminate and --rekey for one
// tunnel. They return once the session has taken the command, with a line
// saying what it does; whether the exchange then succeeds shows in Status
// and in the log.

// Target says what an operator command acts on, as swanctl's --ike and
// --child do.
type Target uint8

const (
	// TargetIKE: the IKE SA, with its Child SA.
	TargetIKE Target = iota
	// TargetChild: the Child SA only.
	TargetChild
)

func (t Target) String() string {
	if t == TargetChild {
		return "child"
	}
	return "ike"
}

// ParseTarget parses "ike" or "child".
func ParseTarget(s string) (Target, error) {
	switch s {
	case "ike":
		return TargetIKE, nil
	case "child":
		return TargetChild, nil
	}
	return 0, fmt.Errorf("gateway: unknown target %q (expected ike or child)", s)
}

// commandTimeout is how long a command waits for its session to take it.
const commandTimeout = 5 * time.Second

// ikePeerOf returns the IKE session of the tunnel called name.
func (g *Gateway) ikePeerOf(name string) (*ikePeer, error) {
	t, err := g.tunnel(name)
	if err != nil {
		return nil, err
	}
	if t.peer == nil {
		return nil, fmt.Errorf("%w: tunnel %q", ErrManual, name)
	}
	return t.peer, nil
}

// Initiate brings the tunnel's IKE SA and Child SA up now, in either role,
// and lifts a Terminate: an active session keeps it up from then on. It
// does nothing to a tunnel that is up or coming up. An IKE SA left without
// its Child SA (after Terminate with TargetChild) is deleted and set up
// again. target makes no difference: the Child SA comes with the IKE SA.
func (g *Gateway) Initiate(name string, target Target) (string, error) {
	p, err := g.ikePeerOf(name)
	if err != nil {
		return "", err
	}
	var msg string
	err = p.do(commandTimeout, func(now time.Time) error {
		st := p.session.Status(now)
		if ike := st.IKE; ike != nil {
			switch {
			case ike.State == ikev2.IKEConnecting:
				msg = fmt.Sprintf("tunnel %q: IKE SA being set up (%s)", name, ike.Phase)
				return nil
			case ike.Child != nil:
				msg = fmt.Sprintf("tunnel %q: up already", name)
				return nil
			}
			p.terminateSession(now, false)
		}
		p.held = false
		if !p.session.Initiate(now) {
			return fmt.Errorf("%w: tunnel %q: the IKE session is closed", ErrState, name)
		}
		msg = fmt.Sprintf("tunnel %q: initiating IKE SA to %s", name, p.cfg.PeerAddr)
		return nil
	})
	return msg, err
}

// Terminate deletes the tunnel's IKE SA (TargetIKE), sending DELETE, and
// keeps this side down until Initiate: an active session does not start
// again by itself, nor when traffic waits. The peer, if active, may set up
// a new IKE SA, which this side answers. With TargetChild it deletes only
// the Child SA and keeps the IKE SA.
func (g *Gateway) Terminate(name string, target Target) (string, error) {
	p, err := g.ikePeerOf(name)
	if err != nil {
		return "", err
	}
	var msg string
	err = p.do(commandTimeout, func(now time.Time) error {
		st := p.session.Status(now)
		if target == TargetChild {
			if !p.session.DeleteChild(now) {
				return fmt.Errorf("%w: tunnel %q has no established Child SA", ErrState, name)
			}
			msg = fmt.Sprintf("tunnel %q: deleting Child SA 0x%08x_i 0x%08x_o", name, st.IKE.Child.InSPI, st.IKE.Child.OutSPI)
			return nil
		}
		if st.IKE == nil {
			msg = fmt.Sprintf("tunnel %q: no IKE SA; held down until initiate", name)
		} else {
			msg = fmt.Sprintf("tunnel %q: deleting IKE SA %016x_i %016x_r; held down until initiate", name, st.IKE.SPIi, st.IKE.SPIr)
		}
		p.log.Info("terminated by the operator: held down until initiate")
		p.terminateSession(now, true)
		return nil
	})
	return msg, err
}

// Rekey rekeys the tunnel's Child SA (TargetChild) or IKE SA (TargetIKE)
// now, make-before-break as at the end of a lifetime: the new SA is
// installed before the old one goes.
func (g *Gateway) Rekey(name string, target Target) (string, error) {
	p, err := g.ikePeerOf(name)
	if err != nil {
		return "", err
	}
	var msg string
	err = p.do(commandTimeout, func(now time.Time) error {
		st := p.session.Status(now)
		if st.IKE == nil || st.IKE.State != ikev2.IKEEstablished && st.IKE.State != ikev2.IKERekeying {
			return fmt.Errorf("%w: tunnel %q has no established IKE SA", ErrState, name)
		}
		if target == TargetIKE {
			p.session.RekeyIKE(now)
			msg = fmt.Sprintf("tunnel %q: rekeying IKE SA %016x_i %016x_r", name, st.IKE.SPIi, st.IKE.SPIr)
			return nil
		}
		c := st.IKE.Child
		if c == nil {
			return fmt.Errorf("%w: tunnel %q has no Child SA", ErrState, name)
		}
		p.session.RekeyChild(c.InSPI, now)
		msg = fmt.Sprintf("tunnel %q: rekeying Child SA 0x%08x_i 0x%08x_o", name, c.InSPI, c.OutSPI)
		return nil
	})
	return msg, err
}

// terminateSession deletes the session's IKE SA (Close sends the DELETE and
// takes the Child SAs out of the dataplane) and replaces the session by a
// new one that is not started: held, when hold is set, until Initiate.
// Only routineSession calls it.
func (p *ikePeer) terminateSession(now time.Time, hold bool) {
	p.session.Close(now)
	p.flush()
	p.removeRetired(now, true)
	// The configuration made a session before: it cannot fail now.
	s, err := ikev2.NewSession(p.cfg, nil)
	if err != nil {
		p.log.Error("restarting the IKE session failed", "err", err)
		return
	}
	p.session = s
	p.held = hold
	p.up = false
}
