// Package examples holds the example configurations that ship with
// greipsec: the two sides of a site-to-site tunnel, keyed by IKEv2
// (site-a.toml, site-b.toml) and by hand (manual-a.toml, manual-b.toml);
// a side without privileges, with a netstack inner side and its proxies
// and forwards (netstack-a.toml), and its peer (netstack-b.toml); and a
// whole tunnel on one machine without root (loopback-a.toml,
// loopback-b.toml); and one per setup that greipsec takes over, each with
// the peer's configuration it pairs with in its header: iked-ios.toml
// (OpenBSD iked and Cisco IOS, GRE over transport), pubkey-a.toml (OpenIKED
// site-to-site, raw public keys), aws-sec.toml (OpenBSD sec(4) to AWS, two
// tunnels, BGP), setkey-gre.toml (Linux GRE over ESP transport, setkey
// manual keys), openiked-linux.toml (OpenIKED on Linux, CBC+HMAC Child SA),
// rfc3884.toml (OpenBSD ipsecctl manual keys, RFC 3884). They are embedded in the binary for "greipsec demo".
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
