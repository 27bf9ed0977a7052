// Package examples holds the example configurations that ship with
// greipsec: the two sides of a site-to-site tunnel, keyed by IKEv2
// (site-a.toml, site-b.toml) and by hand (manual-a.toml, manual-b.toml).
// They are embedded in the binary for "greipsec demo". The strongswan
// folder, not embedded, holds the interoperability test with strongSwan.
package examples

import "embed"

// FS holds site-a.toml, site-b.toml, manual-a.toml and manual-b.toml.
//
//go:embed *.toml
var FS embed.FS
