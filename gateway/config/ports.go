package config

import (
	"math"

	"github.com/greipsec/greipsec/dataplane"
	"github.com/greipsec/greipsec/ikev2"
)

// The outer ports: udp-port is this gateway's ESP-in-UDP port (and IKE's
// after a NAT, behind the non-ESP marker), peer-udp-port the peer's, and
// [tunnel.ike] port-500 = false starts IKE on them instead of on port 500,
// so that a gateway that may not bind a port below 1024 (an unprivileged
// container on 14500, say) needs none:
//
//	transport     = "udp"
//	udp-port      = 14500
//	peer-udp-port = 4500
//	[tunnel.ike]
//	port-500 = false      # the peer must start there too: strongSwan local_port = 4500, remote_port = 14500

// ikePort is IKE's port without the non-ESP marker (RFC 7296 §2).
const ikePort = 500

// readPeerPort reads peer-udp-port, after udp-port; it defaults to
// udp-port, the same port on both gateways.
func (ti *tunnelInfo) readPeerPort() {
	t, dp := ti.t, &ti.cfg.Dataplane
	dp.PeerUDPPort = dp.UDPPort
	n, ok := t.integer("peer-udp-port", 1, math.MaxUint16, "")
	if !ok {
		return
	}
	if ti.transportOK && dp.Transport != dataplane.TransportUDP {
		t.errorf("peer-udp-port", `only used with transport = "udp"`)
		return
	}
	dp.PeerUDPPort = uint16(n)
}

// distinctUDPPorts reports whether the file sets transport "udp" with
// udp-port and peer-udp-port set to different ports: then local and peer
// may be the same address, two gateways on one host.
func (ti *tunnelInfo) distinctUDPPorts() bool {
	m := ti.t.m
	local, ok1 := m["udp-port"].(int64)
	peer, ok2 := m["peer-udp-port"].(int64)
	return m["transport"] == "udp" && ok1 && ok2 && local != peer
}

// readIKEPorts sets the NAT-T ports of the IKE session from udp-port and
// peer-udp-port, and reads port-500 of [tunnel.ike].
func (ti *tunnelInfo) readIKEPorts(k *table, c *ikev2.Config) {
	dp := &ti.cfg.Dataplane
	c.NATTPort, c.PeerNATTPort = dp.UDPPort, dp.PeerUDPPort
	for _, key := range []string{"udp-port", "peer-udp-port"} {
		if n, _ := ti.t.m[key].(int64); n == ikePort {
			ti.t.errorf(key, "500 is IKE's own port, without the non-ESP marker (RFC 3948 §2.2); ESP-in-UDP needs another, usually 4500")
		}
	}
	if b, ok := k.boolean("port-500"); ok {
		c.StartNATT = !b
	}
}
