package config

import "github.com/greipsec/greipsec/dataplane"

// readPathMTU reads pmtud and fragmentation: whether the tunnel follows
// the outer path's real MTU, and what becomes of IPv4 packets without DF
// that do not fit it (dataplane/pathmtu.go).
func (ti *tunnelInfo) readPathMTU() {
	t, dp := ti.t, &ti.cfg.Dataplane
	if b, ok := t.boolean("pmtud"); ok {
		dp.NoPathMTUDiscovery = !b
	}
	if s, ok := t.str("fragmentation"); ok {
		f, err := dataplane.ParseFragmentation(s)
		if err != nil {
			t.errorf("fragmentation", "%s", trimPkg(err))
		}
		dp.Fragmentation = f
	}
}
