package gateway

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/greipsec/greipsec/gateway/config"
)

// TestCheckRoutes: a tunnel route that exists already on the host (up
// would fail to add it), against made-up host routing tables.
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
	lan := hostRoute{dst: pfx("10.2.0.0/24"), dev: "eth1", desc: "via 192.168.1.1 dev eth1"}
	for _, tc := range []struct {
		name   string
		routes string
		host   []hostRoute
		want   []string
	}{
		{"new routes", `"10.2.0.0/24", "10.3.0.0/16"`, []hostRoute{defaultVia, onLink}, nil},
		{"a route that exists", `"10.3.0.0/16", "10.2.0.0/24"`, []hostRoute{defaultVia, onLink, lan},
			[]string{`gw.toml:7: tunnel "gre0": routes[1]: 10.2.0.0/24 already exists on this host (via 192.168.1.1 dev eth1): up would fail to add it`}},
		{"a narrower one is fine", `"10.2.0.0/25"`, []hostRoute{defaultVia, onLink, lan}, nil},
		{"our own routes (greipsec running)", `"10.2.0.0/24"`, []hostRoute{{dst: pfx("10.2.0.0/24"), dev: "gre0"}, defaultVia}, nil},
	} {
		probs := checkRoutes(conf(tc.routes), tc.host)
		if len(probs) != len(tc.want) {
			t.Errorf("%s: %d problems %v, want %d", tc.name, len(probs), probs, len(tc.want))
			continue
		}
		for i, p := range probs {
			if !strings.Contains(p.Err.Error(), tc.want[i]) || p.Fatal {
				t.Errorf("%s: problem %d: %v (fatal %v), want %q", tc.name, i, p.Err, p.Fatal, tc.want[i])
			}
		}
	}
}
