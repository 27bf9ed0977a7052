package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/greipsec/greipsec/gateway"
	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/gateway/control"
)

var showCommand = &command{
	name:  "show",
	args:  "[TUNNEL] [--json]",
	short: "the running gateway's tunnels, IKE SAs and Child SAs",
	long: `Ask the running gateway for its tunnels: per tunnel the interface, mode,
transport, MTU and MSS; the IKE SA (state, SPIs, role, algorithms, IDs, peer
endpoint and NAT, established and rekey times); each Child SA (SPIs,
algorithms, mode, selectors, bytes and packets each way, last packet, rekey
time, drops by reason). The text is laid out like strongSwan's
"swanctl --list-sas"; --json prints the control API's JSON, for tools.`,
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print JSON")
		socket := controlFlag(fs)
		return func(args []string, stdout, _ io.Writer) error {
			if len(args) > 1 {
				return usagef("show", "unexpected argument %q", args[1])
			}
			c := control.NewClient(*socket, 10*time.Second)
			var v any
			var tunnels []gateway.TunnelStatus
			var st gateway.Status
			if len(args) == 1 {
				t, err := c.Tunnel(args[0])
				if err != nil {
					return err
				}
				v, tunnels = t, []gateway.TunnelStatus{t}
			} else {
				var err error
				if st, err = c.Status(); err != nil {
					return err
				}
				v, tunnels = st, st.Tunnels
			}
			if *asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			for _, t := range tunnels {
				printTunnel(stdout, &t)
			}
			if len(args) == 0 {
				printDevice(stdout, &st)
			}
			return nil
		}
	},
}

// controlFlag defines --control on the commands that talk to a running
// gateway.
func controlFlag(fs *flag.FlagSet) *string {
	return fs.String("control", config.ControlSocket(), "control socket `path` of the running greipsec")
}

// printTunnel prints one tunnel, its IKE SA as swanctl --list-sas prints
// one, with the tunnel's name as the connection's, and its Child SAs.
func printTunnel(w io.Writer, t *gateway.TunnelStatus) {
	fmt.Fprintf(w, "%s: %s over %s, %s, %s -> %s, mtu %d, mss %d/%d, %s keys\n",
		t.Name, t.Mode, t.Transport, innerText(t), t.Local, t.Peer, t.MTU, t.MSS4, t.MSS6, t.Keying)
	printPathMTU(w, t.PathMTU)
	printNetstack(w, t.Netstack)
	if ike := t.IKE; ike != nil {
		printIKE(w, t.Name, ike)
	}
	for _, c := range t.ChildSAs {
		printChild(w, t.Name, &c, t.IKE == nil)
	}
	fmt.Fprintf(w, "  traffic: out %d packets %d bytes, in %d packets %d bytes\n",
		t.Traffic.TxPackets, t.Traffic.TxBytes, t.Traffic.RxPackets, t.Traffic.RxBytes)
	fmt.Fprintf(w, "  drops: %s\n", dropList(t.Drops))
}

func printIKE(w io.Writer, name string, ike *gateway.IKEStatus) {
	switch ike.State {
	case "DOWN", "HELD", "UNKNOWN":
		line := fmt.Sprintf("  %s: %s, IKEv2, %s", name, ike.State, ike.Role)
		switch {
		case ike.State == "HELD":
			line += ", terminated: down until \"greipsec initiate " + name + "\""
		case ike.RestartInSeconds != nil:
			line += fmt.Sprintf(", starting again in %ds", *ike.RestartInSeconds)
		case ike.State == "UNKNOWN":
			line += ": " + ike.Phase
		}
		fmt.Fprintln(w, line)
		if ike.LastDown != "" {
			fmt.Fprintf(w, "    last down: %s\n", ike.LastDown)
		}
		return
	}
	spiI, spiR := ike.SPIi+"_i", ike.SPIr+"_r"
	if ike.Initiator {
		spiI += "*"
	} else {
		spiR += "*"
	}
	state := ike.State
	if ike.Phase != "" {
		state += " (" + ike.Phase + ")"
	}
	fmt.Fprintf(w, "  %s: %s, IKEv2, %s %s, %s\n", name, state, spiI, spiR, ike.Role)
	fmt.Fprintf(w, "    local  '%s' @ %s\n", ike.LocalID, swanEndpoint(ike.LocalEndpoint))
	fmt.Fprintf(w, "    remote '%s' @ %s", ike.PeerID, swanEndpoint(ike.PeerEndpoint))
	switch ike.NAT {
	case "local":
		fmt.Fprint(w, ", this side behind NAT (or encap)")
	case "peer":
		fmt.Fprint(w, ", peer behind NAT")
	case "both":
		fmt.Fprint(w, ", both behind NAT")
	}
	fmt.Fprintln(w)
	if ike.Algorithms != "" {
		fmt.Fprintf(w, "    %s\n", ike.Algorithms)
	}
	var times []string
	if ike.EstablishedAt != "" {
		times = append(times, fmt.Sprintf("established %ds ago", ike.EstablishedSeconds))
	}
	if ike.RekeyInSeconds != nil {
		times = append(times, fmt.Sprintf("rekeying in %ds", *ike.RekeyInSeconds))
	}
	if ike.LastRecvSeconds != nil {
		times = append(times, fmt.Sprintf("last heard %ds ago", *ike.LastRecvSeconds))
	}
	if ike.Request != "" {
		times = append(times, fmt.Sprintf("%s request outstanding (%d retransmits)", ike.Request, ike.Retransmits))
	}
	if len(times) > 0 {
		fmt.Fprintf(w, "    %s\n", strings.Join(times, ", "))
	}
	fmt.Fprintf(w, "    %d established, %d IKE rekeys, %d Child rekeys, %d down\n",
		ike.Establishments, ike.Rekeys, ike.ChildRekeys, ike.Downs)
	if ike.ChildError != "" {
		fmt.Fprintf(w, "    Child SA failed: %s\n", ike.ChildError)
	}
}

// swanEndpoint writes an address:port as swanctl does: 192.0.2.1[500].
func swanEndpoint(ap string) string {
	i := strings.LastIndexByte(ap, ':')
	if i < 0 {
		return ap
	}
	return strings.Trim(ap[:i], "[]") + "[" + ap[i+1:] + "]"
}

func printChild(w io.Writer, name string, c *gateway.ChildSAStatus, manual bool) {
	mode := c.Mode
	if c.UDPEncap {
		mode += "-in-UDP"
	}
	alg := "ESP:" + c.Algorithms
	if c.ESN {
		alg += "/ESN"
	}
	fmt.Fprintf(w, "    %s: %s, %s, %s (%s)\n", name, c.State, mode, alg, c.Proposal)
	line := fmt.Sprintf("installed %ds ago", c.InstalledSeconds)
	switch {
	case manual:
		line += ", manual keys: never rekeyed"
	case c.RekeyInSeconds != nil:
		line += fmt.Sprintf(", rekeying in %ds", *c.RekeyInSeconds)
	}
	fmt.Fprintf(w, "      %s\n", line)
	fmt.Fprintf(w, "      in  %s, %10d bytes, %8d packets, %s\n", c.InSPI, c.BytesIn, c.PacketsIn, agoText(c.LastInSeconds))
	fmt.Fprintf(w, "      out %s, %10d bytes, %8d packets, %s\n", c.OutSPI, c.BytesOut, c.PacketsOut, agoText(c.LastOutSeconds))
	if len(c.LocalTS) > 0 {
		fmt.Fprintf(w, "      local  %s\n", strings.Join(c.LocalTS, " "))
		fmt.Fprintf(w, "      remote %s\n", strings.Join(c.PeerTS, " "))
	}
	fmt.Fprintf(w, "      drops: %s\n", dropList(c.Drops))
}

func agoText(s *int64) string {
	if s == nil {
		return "never"
	}
	return fmt.Sprintf("%5ds ago", *s)
}

// dropList writes drop counters as "reason n" pairs in a stable order.
func dropList(drops map[string]uint64) string {
	var parts []string
	for _, k := range sortedKeys(drops) {
		parts = append(parts, fmt.Sprintf("%s %d", k, drops[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func printDevice(w io.Writer, st *gateway.Status) {
	fmt.Fprintf(w, "device: unknown SPI %d, malformed %d, receive errors %d, NAT keepalives %d; IKE from unknown peers %d, IKE queue full %d, IKE send errors %d\n",
		st.Device.UnknownSPI, st.Device.Malformed, st.Device.ReceiveErrors, st.Device.Keepalives,
		st.IKEDrops.UnknownPeer, st.IKEDrops.QueueFull, st.IKEDrops.SendErrors)
}

// printPathMTU prints what the tunnel knows of its outer path.
func printPathMTU(w io.Writer, p *gateway.PathMTUStatus) {
	if p == nil {
		return
	}
	line := fmt.Sprintf("  path mtu %d", p.Current)
	switch {
	case !p.Discovery:
		line += " (configured; discovery off)"
	case p.LearnedSeconds != nil:
		line += fmt.Sprintf(" (learned %ds ago; configured %d)", *p.LearnedSeconds, p.Configured)
	default:
		line += " (configured; no smaller path learned)"
	}
	line += fmt.Sprintf(", inner %d, fragmentation %s: %d answered with ICMP, %d over the rate limit, %d fragmented before encryption, %d outer fragmented",
		p.InnerMTU, p.Fragmentation, p.ICMPSent, p.ICMPRateLimited, p.FragmentedBefore, p.OuterFragmented)
	fmt.Fprintln(w, line)
}
