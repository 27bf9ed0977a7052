package ikev2

import (
	"fmt"
	"time"
)

// ChildInstallFailed tells the session that the runner could not install
// the Child SA whose inbound SPI is inSPI (announced by ChildSAUp): the
// dataplane refused its keys, its SPI, its mode. Without this IKE would
// stay up, liveness checks answered, while ESP black-holes until the next
// rekey. The session emits ChildSADown for it (the runner removes whatever
// it installed), deletes it with the peer and, since the tunnel's IKE SA
// carries nothing without it, deletes the IKE SA too (INFORMATIONAL with
// both DELETEs, §1.4.1): an active session starts again after its
// back-off, which grows while installing keeps failing; a passive one
// waits for the peer to do so. A Child SA on its way out is only
// forgotten. An SPI the session does not know is ignored.
func (s *Session) ChildInstallFailed(inSPI uint32, err error, now time.Time) {
	if s.closed {
		return
	}
	for _, sa := range [...]*ikeSA{s.sa, s.own, s.old} {
		if sa == nil || sa.state != stateEstablished {
			continue
		}
		c := sa.findChild(inSPI)
		if c == nil {
			continue
		}
		if c != sa.child {
			sa.extra = removeChild(sa.extra, c)
			s.childGone(c, "installing it failed")
			return
		}
		reason := fmt.Sprintf("installing the Child SA (inbound SPI 0x%08x) failed: %v", inSPI, err)
		sa.child = nil
		s.childGone(c, reason)
		s.sendRequestOnce(sa, ExchangeInformational, []Payload{
			&DeletePayload{Protocol: ProtocolESP, SPIs: []uint32{c.inSPI}},
			&DeletePayload{Protocol: ProtocolIKE},
		})
		s.fail(sa, reason, fmt.Errorf("ikev2: installing the Child SA failed: %w", err), now)
		return
	}
}
