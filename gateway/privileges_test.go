package gateway

import (
	"strings"
	"testing"

	"github.com/greipsec/greipsec/gateway/config"
)

// TestMissingPrivileges: what each kind of tunnel needs, against a process
// with no capability at all (an unprivileged container, --cap-drop ALL)
// and against root.
func TestMissingPrivileges(t *testing.T) {
	none := privileges{lowestFree: 1024, tunDevice: true}
	root := privileges{rawSockets: true, netAdmin: true, lowPorts: true, lowestFree: 1024, tunDevice: true}
	for _, tc := range []struct {
		name string
		conf string
		p    privileges
		want []string // one substring per missing privilege, in order
	}{
		{"site-a as nobody", ikeConf(1, 2, "active", ""), none, []string{
			`tunnel "gre0": transport = "esp" (raw ESP) needs CAP_NET_RAW`, `or use transport = "udp"`,
			`inner = "tun" needs CAP_NET_ADMIN`,
			`IKE on UDP port 500 needs CAP_NET_BIND_SERVICE`,
		}},
		{"site-a as root", ikeConf(1, 2, "active", ""), root, nil},
		{"no /dev/net/tun", ikeConf(1, 2, "active", ""), privileges{rawSockets: true, netAdmin: true, lowPorts: true, lowestFree: 1024}, []string{
			"needs /dev/net/tun",
		}},
		{"netstack, udp, no port 500, high ports", nsConf("a", "[tunnel.socks5]\nlisten = \"127.0.0.1:1080\"", ""), none, nil},
		{"netstack with low ports", strings.Replace(nsConf("a", "[tunnel.socks5]\nlisten = \"127.0.0.1:80\"", ""), "udp-port = 14500", "udp-port = 450", 1), none, []string{
			"udp-port 450 is below 1024", "socks5 listens on 127.0.0.1:80",
		}},
		{"netstack with low ports allowed to all (ip_unprivileged_port_start 0)", strings.Replace(nsConf("a", "[tunnel.socks5]\nlisten = \"127.0.0.1:80\"", ""), "udp-port = 14500", "udp-port = 450", 1),
			privileges{lowestFree: 0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("test.toml", []byte(tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			got := missingPrivileges(cfg, tc.p)
			var lines []string
			for _, e := range got {
				lines = append(lines, e.Error())
			}
			text := strings.Join(lines, "\n")
			if len(tc.want) == 0 && len(got) != 0 {
				t.Errorf("missing:\n%s\nwant nothing", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing:\n%s\nwant %q", text, w)
				}
			}
		})
	}
}
