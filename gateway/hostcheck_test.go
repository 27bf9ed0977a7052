package gateway

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/greipsec/greipsec/gateway/config"
)

// TestCheckRoutes: a tunnel route that exists already, and one that covers
// the peer with no more specific route to it (the tunnel would carry its
// own ESP: fatal), against made-up host routing tables.
func TestCheckRoutes(t *testing.T) {
	conf := func(routes string) *config.Config {
		cfg, err := config.Parse("gw.toml", []byte(`[[tunnel]]
name = "gre0"
mode = "gre-transport"
local = "198.51.100.1"
peer = "203.0.113.7"
addresses = ["10.255.0.1/30"]
routes = [`+routes+`]
[tunnel.ike]
psk = "check-routes-test-key-0123456789"
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	pfx := netip.MustParsePrefix
	defaultVia := hostRoute{dst: pfx("0.0.0.0/0"), dev: "eth0", desc: "via 198.51.100.254 dev eth0"}
	onLink := hostRoute{dst: pfx("198.51.100.0/24"), dev: "eth0", desc: "dev eth0"}
	peerHost := hostRoute{dst: pfx("203.0.113.7/32"), dev: "eth0", desc: "via 198.51.100.254 dev eth0"}
	for _, tc := range []struct {
		name   string
		routes string
		host   []hostRoute
		want   []string // one per problem, fatal ones start with "!"
	}{
		{"narrow routes", `"10.2.0.0/24"`, []hostRoute{defaultVia, onLink}, nil},
		{"default route exists", `"0.0.0.0/0"`, []hostRoute{defaultVia, onLink},
			[]string{`gw.toml:7: tunnel "gre0": routes[0]: 0.0.0.0/0 already exists on this host (via 198.51.100.254 dev eth0)`,
				`!gw.toml:7: tunnel "gre0": routes[0]: 0.0.0.0/0 covers the tunnel's peer 203.0.113.7, and this host has no more specific route to it`}},
		{"default route, peer pinned", `"0.0.0.0/0"`, []hostRoute{onLink, peerHost}, nil},
		{"two halves over the default", `"10.2.0.0/24", "0.0.0.0/1", "128.0.0.0/1"`, []hostRoute{defaultVia, onLink},
			[]string{`!gw.toml:7: tunnel "gre0": routes[2]: 128.0.0.0/1 covers the tunnel's peer`}},
		{"the peer's own prefix", `"203.0.113.0/24"`, []hostRoute{defaultVia, onLink},
			[]string{`!routes[0]: 203.0.113.0/24 covers the tunnel's peer 203.0.113.7`}},
		{"our own routes (greipsec running)", `"0.0.0.0/1"`, []hostRoute{{dst: pfx("0.0.0.0/1"), dev: "gre0"}, peerHost}, nil},
	} {
		probs := checkRoutes(conf(tc.routes), tc.host)
		if len(probs) != len(tc.want) {
			t.Errorf("%s: %d problems %v, want %d", tc.name, len(probs), probs, len(tc.want))
			continue
		}
		for i, p := range probs {
			want, fatal := strings.CutPrefix(tc.want[i], "!")
			if !strings.Contains(p.Err.Error(), want) || p.Fatal != fatal {
				t.Errorf("%s: problem %d: %v (fatal %v), want %q (fatal %v)", tc.name, i, p.Err, p.Fatal, want, fatal)
			}
		}
	}
}
