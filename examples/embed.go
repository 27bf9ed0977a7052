// Package examples holds the example configurations that ship with
// greipsec: the two sides of a site-to-site tunnel. They are embedded in
// the binary for "greipsec demo".
package examples

import "embed"

// FS holds site-a.toml and site-b.toml.
//
//go:embed *.toml
var FS embed.FS
