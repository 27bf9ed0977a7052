package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// tricky is valid TOML with everything that could make the position
// scanner lose count: table syntax inside strings and comments, all four
// kinds of strings, dotted and quoted keys, multi-line arrays and inline
// tables (TOML 1.1), and a second [[tunnel]].
const tricky = `# a comment with [[tunnel]] and key = "x"
title = """
[[tunnel]]
name = "fake" \"""
"""
lit = '''
x = [1
'''
[[tunnel]] # first
name = "a"   # [not.a.table]
"quoted.key" = 'C:\dir\'
sa.out.spi = 0x1001
addresses = [
  "10.0.0.1/32", # ]
  'x[',
]
inl = { a = 1, b = { c = "}" } }
[ tunnel . sa . in ]
spi = 2
[[tunnel]]
name = "b"
t = 1979-05-27 07:32:00Z
z = "x\"y" # y
tricky = """a"""""
ml = {
  k = [1, 2],
}
empty = ""
`

func TestPositions(t *testing.T) {
	for name, doc := range map[string]string{
		"LF":   tricky,
		"CRLF": strings.ReplaceAll(tricky, "\n", "\r\n"),
		"BOM":  "\xef\xbb\xbf" + tricky,
	} {
		t.Run(name, func(t *testing.T) {
			var raw map[string]any
			if _, err := toml.Decode(doc, &raw); err != nil {
				t.Fatalf("test document is not valid TOML: %v", err)
			}
			if got := raw["tunnel"].([]map[string]any)[1]["tricky"]; got != `a""` {
				t.Fatalf("tricky = %q; the test document does not mean what it should", got)
			}
			pos := scanPositions([]byte(doc))
			for _, c := range []struct {
				path []string
				line int
			}{
				{[]string{"title"}, 2},
				{[]string{"lit"}, 6},
				{[]string{"tunnel"}, 9},
				{[]string{"tunnel", "#0"}, 9},
				{[]string{"tunnel", "#0", "name"}, 10},
				{[]string{"tunnel", "#0", "quoted.key"}, 11},
				{[]string{"tunnel", "#0", "sa"}, 12},
				{[]string{"tunnel", "#0", "sa", "out"}, 12},
				{[]string{"tunnel", "#0", "sa", "out", "spi"}, 12},
				{[]string{"tunnel", "#0", "addresses"}, 13},
				{[]string{"tunnel", "#0", "addresses", "#0"}, 14},
				{[]string{"tunnel", "#0", "addresses", "#1"}, 15},
				{[]string{"tunnel", "#0", "inl"}, 17},
				{[]string{"tunnel", "#0", "inl", "b", "c"}, 17},
				{[]string{"tunnel", "#0", "sa", "in"}, 18},
				{[]string{"tunnel", "#0", "sa", "in", "spi"}, 19},
				{[]string{"tunnel", "#1"}, 20},
				{[]string{"tunnel", "#1", "name"}, 21},
				{[]string{"tunnel", "#1", "t"}, 22},
				{[]string{"tunnel", "#1", "z"}, 23},
				{[]string{"tunnel", "#1", "tricky"}, 24},
				{[]string{"tunnel", "#1", "ml"}, 25},
				{[]string{"tunnel", "#1", "ml", "k"}, 26},
				{[]string{"tunnel", "#1", "empty"}, 28},
				// Absent keys fall back to the nearest table.
				{[]string{"tunnel", "#1", "peer"}, 20},
				{[]string{"tunnel", "#0", "sa", "in", "key"}, 18},
				{[]string{"nothing"}, 0},
			} {
				if got := pos.line(c.path); got != c.line {
					t.Errorf("line of %s = %d, want %d", strings.Join(c.path, "."), got, c.line)
				}
			}
			if n := pos.count([]string{"tunnel"}); n != 2 {
				t.Errorf("%d [[tunnel]] tables, want 2", n)
			}
		})
	}
}

// checkPositions checks the scanner against the library on a document the
// library accepts: it must find every key, on a line of the document, and
// count the [[tunnel]] tables as the library does.
func checkPositions(t *testing.T, doc string) {
	var raw map[string]any
	md, err := toml.Decode(doc, &raw)
	if err != nil {
		return
	}
	pos := scanPositions([]byte(doc))
	found := make(map[string]bool) // paths without indices
	lines := strings.Count(doc, "\n") + 1
	for k, l := range pos.lines {
		if l < 1 || l > lines {
			t.Fatalf("key %q on line %d of %d", k, l, lines)
		}
		var parts []string
		for _, p := range strings.Split(k, "\x1f") {
			if !strings.HasPrefix(p, "#") {
				parts = append(parts, p)
			}
		}
		found[strings.Join(parts, "\x1f")] = true
	}
	for _, k := range md.Keys() {
		if !found[strings.Join(k, "\x1f")] {
			t.Fatalf("key %q not found by the scanner in %q", k.String(), doc)
		}
	}
	if list, ok := raw["tunnel"].([]map[string]any); ok {
		if n := pos.count([]string{"tunnel"}); n != len(list) {
			t.Fatalf("scanner counts %d [[tunnel]], the library %d, in %q", n, len(list), doc)
		}
	}
}

func TestPositionsAgainstLibrary(t *testing.T) {
	checkPositions(t, tricky)
	checkPositions(t, base+second)
	checkPositions(t, full)
}

func FuzzPositions(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, doc string) {
		checkPositions(t, doc)
	})
}

// FuzzParse checks that Parse never panics, that every error it returns
// is on lines that start with the file name, and that what it accepts is
// complete.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, doc string) {
		cfg, err := Parse("f.toml", []byte(doc))
		if err != nil {
			if cfg != nil {
				t.Fatal("a Config with an error")
			}
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(l, "f.toml") {
					t.Fatalf("error line %q does not name the file", l)
				}
			}
			return
		}
		if len(cfg.Tunnels) == 0 {
			t.Fatal("no error and no tunnels")
		}
		for _, tn := range cfg.Tunnels {
			d := tn.Dataplane
			if d.Name == "" || (d.Interface == "") != (tn.Inner == InnerNetstack) || !d.Local.IsValid() || !d.Peer.IsValid() ||
				d.PathMTU == 0 || d.UDPPort == 0 || d.PeerUDPPort == 0 {
				t.Fatalf("incomplete tunnel accepted: %+v", d)
			}
			if (tn.Inner == InnerNetstack) != (tn.Netstack != nil) || tn.Netstack != nil && len(tn.Link.Addresses) == 0 {
				t.Fatalf("netstack tunnel accepted without its netstack or addresses: %+v", tn)
			}
			if c := tn.IKE; c != nil {
				// Keyed by IKE: no manual SAs, and what IKE needs.
				if d.Outbound != nil || d.Inbound != nil || len(c.PSK) == 0 || len(c.IKEProposals) == 0 ||
					len(c.ESPProposals) == 0 || len(c.LocalTS) == 0 || len(c.PeerTS) == 0 || c.LocalID.IDType == 0 ||
					c.PeerID.IDType == 0 || c.LocalAddr != d.Local || c.PeerAddr != d.Peer || !d.NATTraversal {
					t.Fatalf("incomplete IKE tunnel accepted: %+v", *c)
				}
				continue
			}
			if d.Outbound == nil || d.Inbound == nil {
				t.Fatalf("tunnel accepted with neither IKE nor manual keys: %+v", d)
			}
			if err := d.Outbound.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := d.Inbound.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func addSeeds(f *testing.F) {
	f.Add(tricky)
	f.Add(base)
	f.Add(base + second)
	f.Add(full)
	f.Add(ikeBase)
	f.Add(routeBase)
	f.Add(fullIKE)
	f.Add(service + base)
	f.Add(base + "\n" + service)
	f.Add(fullNetstack)
	f.Add(nsBase)
	for _, name := range []string{"site-a.toml", "site-b.toml", "manual-a.toml", "manual-b.toml", "strongswan/greipsec.toml", "strongswan/greipsec-gre-tunnel.toml",
		"netstack-a.toml", "netstack-b.toml", "loopback-a.toml", "loopback-b.toml"} {
		b, err := os.ReadFile(filepath.Join(examplesDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}
