// Package examples holds the example configurations that ship with
// greipsec: the two sides of a site-to-site tunnel, keyed by IKEv2
// (site-a.toml, site-b.toml) and by hand (manual-a.toml, manual-b.toml);
// a side without privileges, with a netstack inner side and its proxies
// and forwards (netstack-a.toml), and its peer (netstack-b.toml); and a
// whole tunnel on one machine without root (loopback-a.toml,
// loopback-b.toml). They are embedded in the binary for "greipsec demo".
// Not embedded: the strongswan folder (the interoperability test with
// strongSwan), embed (a Go program that embeds a gateway and reaches the
// far site through its netstack), kubernetes and docker (running greipsec
// unprivileged in a container).
package examples

import "embed"

// FS holds the *.toml files of this folder.
//
//go:embed *.toml
var FS embed.FS
