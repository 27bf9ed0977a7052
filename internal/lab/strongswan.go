//go:build linux

package lab

// strongSwan as the other end of a tunnel, for the interoperability tests.
//
// StartStrongSwan runs Debian's charon-systemd (strongSwan 5.9.8) inside one
// of the lab's namespaces, with its own strongswan.conf (STRONGSWAN_CONF) in
// a directory of its own, so that any number of instances, and the host's
// own strongSwan if there is one, never share a file or a socket:
//
//	<dir>/strongswan.conf    plugins, log file, VICI socket
//	<dir>/swanctl.conf       the connection StrongSwanConn and its child StrongSwanChild, the PSK
//	<dir>/charon.vici        the VICI socket swanctl talks to (--uri)
//	<dir>/charon.log         charon's log
//	<dir>/charon.out         charon's standard output and error
//
// charon-systemd runs in the foreground and writes no pid file; its only
// other paths are the VICI socket and the log, both set above. ESP is done
// in user space by the kernel-libipsec plugin on a TUN device (ipsec0 in
// the namespace), since the lab's kernel has no xfrm. In strongSwan 5.9.8
// that plugin only does tunnel mode, only ESP in UDP (it claims to be behind
// a NAT to get it), and refuses a remote traffic selector equal to the IKE
// peer unless StrongSwanConfig.AllowPeerTS sets up the firewall marks that
// keep its own IKE and ESP packets off the tunnel route.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Where Debian's packages put strongSwan.
const (
	CharonPath  = "/usr/sbin/charon-systemd"
	SwanctlPath = "/usr/sbin/swanctl"
	// libipsecPlugin is the kernel-libipsec plugin, from
	// libcharon-extra-plugins; opensslPlugin, from
	// libstrongswan-standard-plugins (only recommended by libstrongswan),
	// does the ECP groups and AES-GCM.
	libipsecPlugin = "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"
	opensslPlugin  = "/usr/lib/ipsec/plugins/libstrongswan-openssl.so"
)

// StrongSwanPackages are the Debian packages NeedStrongSwan installs.
var StrongSwanPackages = []string{"charon-systemd", "strongswan-swanctl", "libcharon-extra-plugins", "libstrongswan-standard-plugins"}

// The names of the connection and of its Child SA in the swanctl.conf that
// StartStrongSwan writes, as swanctl --list-sas shows them.
const (
	StrongSwanConn  = "greipsec"
	StrongSwanChild = "greipsec"
)

// StrongSwanConfig is what StartStrongSwan configures charon with: one
// IKEv2 connection with a pre-shared key and one Child SA.
type StrongSwanConfig struct {
	// LocalAddr is strongSwan's own outer address, PeerAddr the other
	// gateway's.
	LocalAddr, PeerAddr netip.Addr
	// LocalID and PeerID are the IKE identities in swanctl.conf notation:
	// an address (IPV4_ADDR/IPV6_ADDR), an FQDN ("gw.example.org", or
	// "@gw" to force FQDN), "user@example.org" (USER_FQDN) or "@#a1b2"
	// (KEY_ID). Empty means the address.
	LocalID, PeerID string
	// Auth, when set, authenticates with public keys instead of the PSK
	// (strongswan_auth.go).
	Auth *StrongSwanAuth
	// PSK is the pre-shared key of both sides. It is written to
	// swanctl.conf hex-encoded, so any bytes are allowed.
	PSK string
	// IKEProposals and ESPProposals are strongSwan proposal strings, for
	// example "aes256-sha384-ecp384" and "aes256gcm16-ecp384"; several are
	// separated by commas. Empty means those two.
	IKEProposals, ESPProposals string
	// LocalTS and PeerTS are the Child SA's traffic selectors in
	// swanctl.conf notation: "10.2.0.0/24", "192.0.2.2/32[gre]".
	LocalTS, PeerTS []string
	// Mode is the Child SA's mode, "tunnel" (the default, and the only one
	// kernel-libipsec 5.9.8 supports) or "transport".
	Mode string
	// Initiate makes charon initiate the connection as soon as it is loaded
	// (start_action = start); otherwise it only responds, or initiates when
	// asked by StrongSwan.Initiate.
	Initiate bool
	// AllowPeerTS lets the remote traffic selector equal the peer's
	// address, as GRE-over-IPsec selectors do: kernel-libipsec's
	// allow_peer_ts, with charon's own packets marked 0x42 by
	// socket-default and kernel-netlink's routing rule for the tunnel
	// routes skipping that mark.
	AllowPeerTS bool
	// LocalPort and RemotePort are swanctl.conf's local_port and
	// remote_port, the IKE ports; 0 leaves charon's defaults (500, and
	// 4500 after a NAT). A peer that starts IKE on its ESP-in-UDP port, say
	// 14500, needs LocalPort 4500 and RemotePort 14500.
	LocalPort, RemotePort uint16
	// ExtraLANAddr, if valid, is added to lo in strongSwan's namespace
	// before charon starts: a host address behind strongSwan (for example
	// 10.2.0.1/24) that route-mode traffic can reach. It stays there until
	// the lab is closed.
	ExtraLANAddr netip.Prefix
}

// StrongSwan is a charon-systemd started by Lab.StartStrongSwan. Its methods
// are safe for concurrent use.
type StrongSwan struct {
	// Dir is the directory with the instance's configuration, VICI socket
	// and logs; see Log.
	Dir string

	lab  *Lab
	cmd  *exec.Cmd
	conf string // path of strongswan.conf
	uri  string // VICI URI

	stopOnce sync.Once
	stopErr  error
}

// Default proposals: what the interop tests of issue 3 use.
const (
	defaultIKEProposals = "aes256-sha384-ecp384"
	defaultESPProposals = "aes256gcm16-ecp384"
)

// maxSunPath is the longest path a unix socket address can hold
// (sizeof(sockaddr_un.sun_path) - 1 on Linux).
const maxSunPath = 107

var (
	installMu sync.Mutex

	// swanSafe matches what may appear unquoted in the generated files:
	// proposals, selectors and the like.
	swanSafe = regexp.MustCompile(`^[A-Za-z0-9_.:/\[\]-]+$`)
)

// NeedStrongSwan makes sure charon-systemd, swanctl and the kernel-libipsec
// plugin are installed, installing StrongSwanPackages with apt-get when one
// is missing. Installing needs root and Debian's package index; the error
// says which step failed and how.
func NeedStrongSwan() error {
	installMu.Lock()
	defer installMu.Unlock()
	missing := missingStrongSwan()
	if len(missing) == 0 {
		return nil
	}
	pkgs := strings.Join(StrongSwanPackages, " ")
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab: strongSwan not installed (%s missing); as root: apt-get install %s",
			strings.Join(missing, ", "), pkgs)
	}
	aptGet, err := exec.LookPath("apt-get")
	if err != nil {
		return fmt.Errorf("lab: strongSwan not installed (%s missing) and no apt-get to install %s: %w",
			strings.Join(missing, ", "), pkgs, err)
	}
	run := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, aptGet, args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("lab: apt-get %s: %w\n%s", strings.Join(args, " "), err, lastLines(out, 20))
		}
		return nil
	}
	// Wait for a lock another apt holds rather than failing at once.
	lock := "-oDPkg::Lock::Timeout=300"
	if err := run("update", "-qq", lock); err != nil {
		return err
	}
	if err := run(append([]string{"install", "-y", "-qq", "--no-install-recommends", lock}, StrongSwanPackages...)...); err != nil {
		return err
	}
	if missing := missingStrongSwan(); len(missing) > 0 {
		return fmt.Errorf("lab: apt-get installed %s but %s still missing", pkgs, strings.Join(missing, ", "))
	}
	return nil
}

// missingStrongSwan returns the files of StrongSwanPackages that are not
// there.
func missingStrongSwan() []string {
	var missing []string
	for _, p := range []string{CharonPath, SwanctlPath, libipsecPlugin, opensslPlugin} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	return missing
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartStrongSwan writes strongswan.conf and swanctl.conf for conf into a
// new temporary directory, starts charon-systemd inside h's namespace
// (with Start, so Close stops it), waits until its VICI socket answers and
// loads the connection and the PSK with swanctl --load-all. If conf asks
// for it, charon then initiates by itself; StartStrongSwan does not wait
// for that. The strongSwan packages must be installed (NeedStrongSwan).
//
// On error, what was started is stopped again and the error includes the
// end of charon's log.
func (l *Lab) StartStrongSwan(h *Host, conf StrongSwanConfig) (*StrongSwan, error) {
	if missing := missingStrongSwan(); len(missing) > 0 {
		return nil, fmt.Errorf("lab: strongSwan not installed (%s missing): call NeedStrongSwan", strings.Join(missing, ", "))
	}
	dir, err := os.MkdirTemp("", "greipsec-strongswan-")
	if err != nil {
		return nil, fmt.Errorf("lab: strongSwan: %w", err)
	}
	s, err := l.startStrongSwan(h, conf, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func (l *Lab) startStrongSwan(h *Host, conf StrongSwanConfig, dir string) (*StrongSwan, error) {
	swan, swanctl, err := conf.Files(dir)
	if err != nil {
		return nil, err
	}
	s := &StrongSwan{
		Dir:  dir,
		lab:  l,
		conf: filepath.Join(dir, "strongswan.conf"),
		uri:  "unix://" + filepath.Join(dir, "charon.vici"),
	}
	if err := os.WriteFile(s.conf, swan, 0o600); err != nil {
		return nil, fmt.Errorf("lab: strongSwan: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), swanctl, 0o600); err != nil {
		return nil, fmt.Errorf("lab: strongSwan: %w", err)
	}
	if err := conf.Auth.write(dir); err != nil {
		return nil, err
	}
	if conf.ExtraLANAddr.IsValid() {
		if err := l.AddLoopbackAddr(h, conf.ExtraLANAddr); err != nil {
			return nil, err
		}
	}
	out, err := os.Create(filepath.Join(dir, "charon.out"))
	if err != nil {
		return nil, fmt.Errorf("lab: strongSwan: %w", err)
	}
	defer out.Close() // the child has its own copy
	s.cmd = exec.Command(CharonPath)
	s.cmd.Dir = dir
	s.cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+s.conf)
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := l.Start(h, s.cmd); err != nil {
		return nil, fmt.Errorf("lab: start charon in %s: %w", h.Name, err)
	}

	fail := func(err error) (*StrongSwan, error) {
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, lastLines([]byte(s.Log()), 30))
	}
	socket := filepath.Join(dir, "charon.vici")
	const startTimeout = 15 * time.Second
	ready := WaitFor(startTimeout, func() bool {
		if l.Exited(s.cmd) {
			return true
		}
		c, err := net.Dial("unix", socket)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if l.Exited(s.cmd) {
		return fail(fmt.Errorf("lab: charon in %s exited: %v", h.Name, l.Wait(s.cmd)))
	}
	if !ready {
		return fail(fmt.Errorf("lab: charon in %s: no VICI socket %s within %v", h.Name, socket, startTimeout))
	}
	if _, err := s.swanctl("--load-all", "--noprompt", "--file", filepath.Join(dir, "swanctl.conf")); err != nil {
		return fail(err)
	}
	return s, nil
}

// swanctl runs swanctl with args against s's charon and returns its
// standard output; an error includes what it printed.
func (s *StrongSwan) swanctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, SwanctlPath, append(args, "--uri", s.uri)...)
	// SWANCTL_DIR: the credentials (private/, x509/, ...) are in Dir.
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+s.conf, "SWANCTL_DIR="+s.Dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("lab: swanctl %s: %w\n%s%s", args[0], err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String(), nil
}

// ListSAs returns what swanctl --list-sas prints: the IKE SAs and their
// Child SAs, with state (ESTABLISHED, INSTALLED), algorithms, SPIs and
// byte counters.
func (s *StrongSwan) ListSAs() (string, error) {
	return s.swanctl("--list-sas")
}

// Initiate asks charon to initiate the Child SA named child (normally
// StrongSwanChild), with its IKE SA if there is none yet, and waits for the
// result: an error if it failed, with swanctl's account of the exchange.
func (s *StrongSwan) Initiate(child string) error {
	_, err := s.swanctl("--initiate", "--child", child, "--timeout", "30")
	return err
}

// WaitInstalled waits until charon lists an installed Child SA (state
// INSTALLED in swanctl --list-sas) and returns the --list-sas output then,
// or an error with the last output if there is none within timeout.
func (s *StrongSwan) WaitInstalled(timeout time.Duration) (string, error) {
	var out string
	var err error
	if WaitFor(timeout, func() bool {
		out, err = s.ListSAs()
		return err == nil && strings.Contains(out, ", INSTALLED, ")
	}) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("lab: charon: no Child SA installed within %v: %w", timeout, err)
	}
	return out, fmt.Errorf("lab: charon: no Child SA installed within %v; swanctl --list-sas:\n%s", timeout, out)
}

// bytesRE finds the byte counters of Child SAs in swanctl --list-sas --raw.
var bytesRE = regexp.MustCompile(`\bbytes-(in|out)=([0-9]+)`)

// ChildBytes returns the bytes received (in) and sent (out) by all Child
// SAs charon has, the counters that swanctl --list-sas shows: ESP payload
// bytes of the inner packets, as kernel-libipsec counts them.
func (s *StrongSwan) ChildBytes() (in, out uint64, err error) {
	raw, err := s.swanctl("--list-sas", "--raw")
	if err != nil {
		return 0, 0, err
	}
	in, out, err = parseChildBytes(raw)
	if err != nil {
		return 0, 0, err
	}
	return in, out, nil
}

// parseChildBytes adds up the bytes-in and bytes-out counters of swanctl
// --list-sas --raw output.
func parseChildBytes(raw string) (in, out uint64, err error) {
	for _, m := range bytesRE.FindAllStringSubmatch(raw, -1) {
		n, err := strconv.ParseUint(m[2], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("lab: swanctl --list-sas: bytes-%s=%s: %w", m[1], m[2], err)
		}
		if m[1] == "in" {
			in += n
		} else {
			out += n
		}
	}
	return in, out, nil
}

// Log returns charon's log so far (charon.log, and whatever charon wrote to
// its standard output or error), or a line saying why it cannot be read.
func (s *StrongSwan) Log() string {
	var b strings.Builder
	for _, name := range []string{"charon.out", "charon.log"} {
		data, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) || name == "charon.log" {
				fmt.Fprintf(&b, "lab: %v\n", err)
			}
			continue
		}
		b.Write(data)
	}
	return b.String()
}

// Stop stops charon (SIGTERM, then SIGKILL after 5 s) and waits for it to
// exit. Dir and its logs stay; the caller removes Dir. Stop returns an
// error only if charon had already failed before it was asked to stop; it
// may be called more than once.
func (s *StrongSwan) Stop() error {
	s.stopOnce.Do(func() {
		exited := s.lab.Exited(s.cmd)
		err := s.lab.Stop(s.cmd)
		if exited && err != nil {
			s.stopErr = fmt.Errorf("lab: charon had exited: %w", err)
		}
	})
	return s.stopErr
}

// Files returns the strongswan.conf and swanctl.conf that StartStrongSwan
// writes for c into dir, for example to show them. It checks c first.
func (c StrongSwanConfig) Files(dir string) (strongswanConf, swanctlConf []byte, err error) {
	if err := c.check(); err != nil {
		return nil, nil, err
	}
	if !filepath.IsAbs(dir) || strings.ContainsAny(dir, "\"\n{}#") {
		return nil, nil, fmt.Errorf("lab: strongSwan directory %q: must be an absolute path without quotes, braces or '#'", dir)
	}
	if n := len(filepath.Join(dir, "charon.vici")); n > maxSunPath {
		return nil, nil, fmt.Errorf("lab: strongSwan directory %q: too long for a unix socket in it (%d > %d bytes)", dir, n, maxSunPath)
	}
	data := swanData{
		Dir:          dir,
		Conn:         StrongSwanConn,
		Child:        StrongSwanChild,
		LocalAddr:    c.LocalAddr.String(),
		PeerAddr:     c.PeerAddr.String(),
		LocalID:      c.LocalID,
		PeerID:       c.PeerID,
		PSK:          hex.EncodeToString([]byte(c.PSK)),
		Auth:         c.Auth.swanData(),
		IKEProposals: c.IKEProposals,
		ESPProposals: c.ESPProposals,
		LocalTS:      strings.Join(c.LocalTS, ","),
		PeerTS:       strings.Join(c.PeerTS, ","),
		Mode:         c.Mode,
		StartAction:  "none",
		AllowPeerTS:  c.AllowPeerTS,
		LocalPort:    c.LocalPort,
		RemotePort:   c.RemotePort,
	}
	if data.LocalID == "" {
		data.LocalID = data.LocalAddr
	}
	if data.PeerID == "" {
		data.PeerID = data.PeerAddr
	}
	if data.IKEProposals == "" {
		data.IKEProposals = defaultIKEProposals
	}
	if data.ESPProposals == "" {
		data.ESPProposals = defaultESPProposals
	}
	if data.Mode == "" {
		data.Mode = "tunnel"
	}
	if c.Initiate {
		data.StartAction = "start"
	}
	var a, b bytes.Buffer
	if err := strongswanConfTmpl.Execute(&a, data); err != nil {
		panic(err) // the templates are fixed and data is checked
	}
	if err := swanctlConfTmpl.Execute(&b, data); err != nil {
		panic(err)
	}
	return a.Bytes(), b.Bytes(), nil
}

// check reports what is wrong with c, or nil.
func (c StrongSwanConfig) check() error {
	if !c.LocalAddr.IsValid() || !c.PeerAddr.IsValid() {
		return errors.New("lab: strongSwan: LocalAddr and PeerAddr are required")
	}
	if c.PSK == "" && c.Auth == nil {
		return errors.New("lab: strongSwan: PSK or Auth is required")
	}
	if len(c.LocalTS) == 0 || len(c.PeerTS) == 0 {
		return errors.New("lab: strongSwan: LocalTS and PeerTS are required")
	}
	if c.Mode != "" && c.Mode != "tunnel" && c.Mode != "transport" {
		return fmt.Errorf("lab: strongSwan: mode %q: want tunnel or transport", c.Mode)
	}
	for _, id := range []string{c.LocalID, c.PeerID} {
		if strings.ContainsAny(id, "\"\\\n") {
			return fmt.Errorf("lab: strongSwan: identity %q: quotes, backslashes and newlines are not allowed", id)
		}
	}
	fields := []string{c.IKEProposals, c.ESPProposals}
	fields = append(fields, c.LocalTS...)
	fields = append(fields, c.PeerTS...)
	for _, f := range fields {
		for _, part := range strings.Split(f, ",") {
			if f != "" && !swanSafe.MatchString(part) {
				return fmt.Errorf("lab: strongSwan: %q: not a proposal or traffic selector", f)
			}
		}
	}
	return nil
}

// swanData is what the templates are filled in with.
type swanData struct {
	Dir                        string
	Conn, Child                string
	LocalAddr, PeerAddr        string
	LocalID, PeerID            string
	PSK                        string // hex
	Auth                       *swanAuth
	IKEProposals, ESPProposals string
	LocalTS, PeerTS            string
	Mode, StartAction          string
	AllowPeerTS                bool
	LocalPort, RemotePort      uint16
}

// strongswanConfTmpl is the daemon's configuration. Only the plugins a PSK
// tunnel with kernel-libipsec needs are loaded, kernel-libipsec before
// kernel-netlink so that it handles SAs and policies, and kdf for the
// prf+ of strongSwan 5.9's key derivation. A plugin marked '!' is
// critical: charon exits if it cannot load it. kernel-netlink cannot be
// marked, as its kernel-ipsec feature fails to load by design (that is
// kernel-libipsec's); it still does routes and addresses.
var strongswanConfTmpl = template.Must(template.New("strongswan.conf").Parse(`# strongswan.conf for one charon-systemd instance of the greipsec lab.
# Everything this instance reads or writes is in {{.Dir}}, so that several
# instances (one per network namespace) and the host's own never collide.
charon {
	load = random! nonce! openssl! aes sha1 sha2 hmac gcm kdf! pem pkcs1 x509 pubkey{{if .Auth}} pkcs8 mgf1 revocation constraints{{end}} kernel-libipsec! kernel-netlink socket-default! vici!
	plugins {
		vici {
			socket = unix://{{.Dir}}/charon.vici
		}
{{- if .AllowPeerTS}}
		# The Child SA's remote selector is the IKE peer itself (GRE between
		# the two gateways). charon's own IKE and ESP-in-UDP packets carry
		# mark 0x42 and skip the rule to the tunnel routes (table 220).
		kernel-libipsec {
			allow_peer_ts = yes
		}
		socket-default {
			fwmark = 0x42
		}
		kernel-netlink {
			fwmark = !0x42
		}
{{- end}}
	}
	filelog {
		charon {
			path = {{.Dir}}/charon.log
			append = no
			flush_line = yes
			time_format = %T
			time_add_ms = yes
			default = 1
			ike = 2
			cfg = 2
		}
	}
}

charon-systemd {
	journal {
		default = -1
	}
}

swanctl {
	load = random
	socket = unix://{{.Dir}}/charon.vici
}
`))

// swanctlConfTmpl is the connection: IKEv2 with a PSK, one Child SA.
var swanctlConfTmpl = template.Must(template.New("swanctl.conf").Parse(`# swanctl.conf for one charon-systemd instance of the greipsec lab.
connections {
	{{.Conn}} {
		version = 2
		local_addrs = {{.LocalAddr}}
		remote_addrs = {{.PeerAddr}}
{{- if .LocalPort}}
		local_port = {{.LocalPort}}
{{- end}}
{{- if .RemotePort}}
		remote_port = {{.RemotePort}}
{{- end}}
		proposals = {{.IKEProposals}}
		local {
{{- if .Auth}}
			auth = pubkey
{{- if .Auth.Cert}}
			certs = local.pem
{{- else}}
			pubkeys = local.pub
{{- end}}
{{- else}}
			auth = psk
{{- end}}
			id = "{{.LocalID}}"
		}
		remote {
{{- if .Auth}}
			auth = pubkey
{{- if .Auth.CACert}}
			cacerts = ca.pem
{{- else}}
			pubkeys = peer.pub
{{- end}}
{{- else}}
			auth = psk
{{- end}}
			id = "{{.PeerID}}"
		}
		children {
			{{.Child}} {
				local_ts = {{.LocalTS}}
				remote_ts = {{.PeerTS}}
				esp_proposals = {{.ESPProposals}}
				mode = {{.Mode}}
				start_action = {{.StartAction}}
			}
		}
	}
}
{{- if not .Auth}}

secrets {
	ike-{{.Conn}} {
		id-local = "{{.LocalID}}"
		id-peer = "{{.PeerID}}"
		secret = 0x{{.PSK}}
	}
}
{{- end}}
`))

// AddLoopbackAddr adds p to lo in h's namespace: a host address, or with a
// prefix shorter than the host's a whole local subnet, that stands for a
// LAN behind the gateway in h. It stays until the lab is closed.
func (l *Lab) AddLoopbackAddr(h *Host, p netip.Prefix) error {
	if h.nl == nil {
		return fmt.Errorf("lab: host %q is closed", h.Name)
	}
	lo, err := h.nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lab: %s: %w", h.Name, err)
	}
	if err := h.nl.AddrAdd(lo, &netlink.Addr{IPNet: prefixIPNet(p)}); err != nil {
		return fmt.Errorf("lab: %s: add %s to lo: %w", h.Name, p, err)
	}
	return nil
}

// PingFrom is Ping with the echo requests sent from src, an address of h:
// count ICMP or ICMPv6 echo requests to dst, waiting up to timeout for
// each reply; it returns how many replies came back.
func (l *Lab) PingFrom(h *Host, src, dst netip.Addr, count int, timeout time.Duration) (received int, err error) {
	src, dst = src.Unmap(), dst.Unmap()
	if src.Is6() != dst.Is6() {
		return 0, fmt.Errorf("lab: ping %s from %s: address families differ", dst, src)
	}
	network, proto := "ip4:icmp", protoICMP
	var reqType, repType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	if dst.Is6() {
		network, proto = "ip6:ipv6-icmp", protoICMPv6
		reqType, repType = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
	}
	var c *icmp.PacketConn
	err = l.Do(h, func() (err error) {
		c, err = icmp.ListenPacket(network, src.String())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("lab: ping from %s in %s: %w", src, h.Name, err)
	}
	defer c.Close()

	var token [18]byte
	rand.Read(token[:])
	id := int(token[16])<<8 | int(token[17])
	to := &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	buf := make([]byte, 1500)
	for i := range count {
		seq := (i + 1) & 0xffff
		data := append(token[:16:16], byte(seq>>8), byte(seq))
		b, err := (&icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
		if err != nil {
			return received, fmt.Errorf("lab: ping: %w", err)
		}
		if _, err := c.WriteTo(b, to); err != nil {
			return received, fmt.Errorf("lab: ping %s from %s in %s: %w", dst, src, h.Name, err)
		}
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return received, fmt.Errorf("lab: ping: %w", err)
		}
		for {
			n, from, err := c.ReadFrom(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return received, fmt.Errorf("lab: ping %s from %s in %s: %w", dst, src, h.Name, err)
			}
			if isReply(buf[:n], from, proto, repType, to, id, seq, data) {
				received++
				break
			}
		}
	}
	return received, nil
}
