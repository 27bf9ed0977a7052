package config

import (
	"path/filepath"
	"strings"
)

// stateFile reads the top-level state-file, where the sequence numbers of
// manual SAs are kept across restarts: a path, relative to the
// configuration file's directory unless absolute. Default: the
// configuration file's path with ".state" appended, beside it.
func (p *parser) stateFile(top *table) string {
	s, ok := top.str("state-file")
	if !ok {
		s = filepath.Base(p.file) + ".state"
	} else if s == "" {
		top.errorf("state-file", "is empty (expected the path of the file that keeps the sequence numbers of manual SAs)")
		return ""
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(filepath.Dir(p.file), s)
	}
	if abs, err := filepath.Abs(s); err == nil {
		s = abs
	}
	return s
}

// readUser reads the top-level user ("name", "name:group", or IDs),
// which "up" resolves and changes to after start-up. Root is refused.
func (p *parser) readUser(top *table) string {
	s, ok := top.str("user")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(s, ":")
	switch {
	case name == "":
		top.errorf("user", "is empty (expected an unprivileged user to run as after start-up, e.g. \"greipsec\" or \"greipsec:greipsec\")")
		return ""
	case name == "root" || name == "0":
		top.errorf("user", "%q is root; name an unprivileged user (greipsec keeps only CAP_NET_ADMIN, CAP_NET_RAW and CAP_NET_BIND_SERVICE)", s)
		return ""
	}
	return s
}
