package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// TestAllowed: allowed (route mode) and allowed-sources (GRE modes) set
// Dataplane.Allowed (review H1, N1); a manual route tunnel defaults to what
// the host routes into it; mistakes are one error with file:line.
func TestAllowed(t *testing.T) {
	route := edit(base, `mode = "gre-transport"`, `mode = "route"`)
	pfx := func(s ...string) []netip.Prefix {
		var l []netip.Prefix
		for _, x := range s {
			l = append(l, netip.MustParsePrefix(x))
		}
		return l
	}
	for _, tc := range []struct {
		name string
		doc  string
		want []netip.Prefix
	}{
		{"GRE default: any", base, nil},
		{"GRE allowed-sources", withKey(`allowed-sources = ["10.2.0.0/24", "10.255.0.2/32"]`), pfx("10.2.0.0/24", "10.255.0.2/32")},
		{"manual route default: routes and address prefixes", route, pfx("10.2.0.0/24", "fd00:2::/64", "10.255.0.0/30", "fd00:255::/64")},
		{"manual route allowed", edit(route, `routes = ["10.2.0.0/24", "fd00:2::/64"]`, `routes = ["10.2.0.0/24", "fd00:2::/64"]`+"\n"+`allowed = ["10.2.0.0/25"]`), pfx("10.2.0.0/25")},
		{"empty list: none", withKey(`allowed-sources = []`), []netip.Prefix{}},
	} {
		cfg, err := Parse("test.toml", []byte(tc.doc))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := cfg.Tunnels[0].Dataplane.Allowed; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Allowed = %v, want %v", tc.name, got, tc.want)
		}
	}

	// An IKE route tunnel: the negotiated selectors, no default list.
	cfg, err := Parse("test.toml", []byte(fullIKERoute))
	if err != nil {
		t.Fatal(err)
	}
	ike := edit(fullIKERoute, "allowed = [\"10.2.0.0/24\", \"10.9.0.0/16\", \"fd00:2::/64\"]\n", "")
	cfg2, err := Parse("test.toml", []byte(ike))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Tunnels[0].Dataplane.Allowed) != 3 || cfg2.Tunnels[0].Dataplane.Allowed != nil {
		t.Errorf("IKE route tunnel: Allowed %v with the key, %v without", cfg.Tunnels[0].Dataplane.Allowed, cfg2.Tunnels[0].Dataplane.Allowed)
	}

	for _, tc := range []struct {
		name string
		doc  string
		line int
		want string
	}{
		{"allowed in GRE mode", withKey(`allowed = ["10.2.0.0/24"]`), 9, `tunnel "gre0": allowed: only used with mode "route"; in the GRE modes the key is "allowed-sources"`},
		{"allowed-sources in route mode", edit(withKey(`allowed-sources = ["10.2.0.0/24"]`), `mode = "gre-transport"`, `mode = "route"`), 9, `allowed-sources: only used with mode "gre-transport" or "gre-tunnel"`},
		{"not a prefix", withKey(`allowed-sources = ["10.2.0.1"]`), 9, `allowed-sources[0]: "10.2.0.1" needs a prefix length`},
		{"duplicate", withKey(`allowed-sources = ["10.2.0.0/24", "10.2.0.0/24"]`), 9, `allowed-sources[1]: 10.2.0.0/24 is already allowed-sources[0]`},
	} {
		_, err := Parse("test.toml", []byte(tc.doc))
		var e *Error
		if !errors.As(err, &e) || e.Line != tc.line || !strings.Contains(err.Error(), tc.want) || strings.Count(err.Error(), "\n") > 0 {
			t.Errorf("%s: %v; want one error at line %d with %q", tc.name, err, tc.line, tc.want)
		}
	}
}
